/**
 * The real S3 server of the S3 tests (Ceph radosgw, scripts/s3-server.sh): `s3-server.sh ensure` starts it when
 * none answers (as root; the packages come from scripts/setup.sh, or are installed then), and the run's global
 * teardown (test/global-setup.ts) stops it if the tests started it. Its AWS_* settings (`env`) go into this
 * process's environment, and so into every sefs the tests run. A server that cannot be started fails the
 * tests loudly, with the script's own error.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { S3Store } from '../../src/store/s3-store.js';
import { ROOT } from './build.js';

const SCRIPT = join(ROOT, 'scripts/s3-server.sh');
export const TEST_BUCKET = 'sefs-tests';

/** How long a beforeAll calling requireS3 may take: a first start installs and bootstraps Ceph (about 1-2 min). */
export const S3_START_TIMEOUT_MS = 600_000;

export function requireS3(): void {
  let out: string;
  try {
    execFileSync('bash', [SCRIPT, 'ensure'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: S3_START_TIMEOUT_MS - 10_000 });
    out = execFileSync('bash', [SCRIPT, 'env'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`The S3 tests need the Ceph radosgw of scripts/s3-server.sh: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
  for (const m of out.matchAll(/^export (AWS_[A-Z_]+)=(.*)$/gm)) process.env[m[1]!] = m[2]!;
}

/** Run s3-server.sh with a command (start, stop-gateway). */
export function s3Server(command: 'start' | 'stop-gateway'): void {
  execFileSync('bash', [SCRIPT, command], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 180_000 });
}

/** A fresh prefix in the test bucket: one vault per prefix. */
export const freshPrefix = (name: string): string => `${name}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** Objects and bytes under s3://TEST_BUCKET/prefix. */
export async function bucketUsage(prefix: string): Promise<{ objects: number; bytes: number }> {
  const store = new S3Store({ bucket: TEST_BUCKET, prefix: `${prefix}/` });
  let objects = 0;
  let bytes = 0;
  for await (const o of store.objects()) {
    objects++;
    bytes += o.size;
  }
  return { objects, bytes };
}

/** Remove whatever a test left under its prefix. */
export async function clearPrefix(prefix: string): Promise<void> {
  const store = new S3Store({ bucket: TEST_BUCKET, prefix: `${prefix}/` });
  const hexes: string[] = [];
  for await (const o of store.objects()) hexes.push(o.hex);
  await store.deleteMany(hexes);
}
