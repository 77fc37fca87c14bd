/**
 * `sefs gc` of a mounted vault: the command cannot see what the mount holds for writes not yet committed,
 * so it asks the daemon to sweep instead. The command writes VAULT/gc-request.json ({id, dryRun}) and sends
 * SIGUSR2; the daemon sweeps and writes VAULT/gc-report.json with the same id (both replaced atomically).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.js';

export const GC_SIGNAL = 'SIGUSR2';

export interface GcRequest {
  id: string;
  dryRun: boolean;
}

export interface GcAnswer {
  id: string;
  error?: string;
  report?: { chunks: number; referenced: number; held: number; heldBytes: number; swept: number; freedBytes: number; seconds: number };
}

const requestPath = (root: string): string => join(root, 'gc-request.json');
const answerPath = (root: string): string => join(root, 'gc-report.json');

export async function writeGcRequest(root: string, dryRun: boolean): Promise<GcRequest> {
  const request = { id: randomBytes(8).toString('hex'), dryRun };
  await writeFileAtomic(requestPath(root), Buffer.from(JSON.stringify(request)), 0o600);
  return request;
}

export async function readGcRequest(root: string): Promise<GcRequest> {
  const parsed = JSON.parse(await readFile(requestPath(root), 'utf8')) as Partial<GcRequest>;
  if (typeof parsed.id !== 'string') throw new Error('gc request without an id');
  return { id: parsed.id, dryRun: parsed.dryRun === true };
}

export async function writeGcAnswer(root: string, answer: GcAnswer): Promise<void> {
  await writeFileAtomic(answerPath(root), Buffer.from(JSON.stringify(answer)), 0o600);
}

/** The daemon's answer to request `id`, waiting for it up to `timeoutMs`; the request and answer are removed. */
export async function awaitGcAnswer(root: string, id: string, timeoutMs: number, alive: () => boolean): Promise<GcAnswer> {
  const until = Date.now() + timeoutMs;
  try {
    while (Date.now() < until) {
      const answer = await readFile(answerPath(root), 'utf8')
        .then((text) => JSON.parse(text) as GcAnswer)
        .catch(() => undefined);
      if (answer?.id === id) return answer;
      if (!alive()) throw new Error('the mount daemon exited before answering');
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the mount daemon did not answer within ${timeoutMs / 1000} s`);
  } finally {
    await rm(requestPath(root), { force: true });
    await rm(answerPath(root), { force: true });
  }
}
