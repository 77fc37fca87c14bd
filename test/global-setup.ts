/**
 * Once per test run: at its end, stop the S3 server if the S3 tests started it (test/helpers/s3.ts), so a
 * run leaves the machine as it found it. A server that was already running stays.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

export default function setup(): () => void {
  // This run's mark on a server it starts (scripts/s3-server.sh ensure): another run's end leaves it running.
  process.env.SEFS_S3_RUN ??= `${process.pid}-${Date.now()}`;
  return () => {
    execFileSync('bash', [join(ROOT, 'scripts/s3-server.sh'), 'stop-if-started'], { stdio: 'inherit' });
  };
}
