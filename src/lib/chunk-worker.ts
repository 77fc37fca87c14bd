/**
 * Worker thread entry: runs chunk jobs and sends results back, moving (not copying) result buffers.
 * Jobs that arrive while the worker is busy wait in a queue and then run as one batch, so their SHA3 passes
 * share the four-way hash (chunk-jobs.ts); a batch is capped to keep the first job's answer prompt.
 */
import { parentPort } from 'node:worker_threads';
import { SefsError } from '../core/errors.js';
import { type Job, type JobResult, runJobs, useSlab } from './chunk-jobs.js';

const MAX_BATCH = 8;

/**
 * A buffer that is most of its ArrayBuffer is moved with it (a decrypted chunk is the cipher's output less a
 * few header bytes); a small view into a larger buffer, or shared memory, is copied.
 */
function ownedBuffer(b: Buffer): Buffer {
  if (!(b.buffer instanceof SharedArrayBuffer) && 2 * b.byteLength >= b.buffer.byteLength) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

function reply(id: number, result: JobResult | Error): void {
  if (result instanceof Error) {
    const e = result as Error & { chunkName?: string; which?: string; errno?: number; code?: string };
    // A system error (ENOSPC writing a chunk file) keeps its errno, so the mount answers with it.
    const sys = typeof e.errno === 'number' ? { errno: e.errno, sysCode: e.code } : {};
    parentPort!.postMessage({
      id,
      error: { code: e instanceof SefsError ? e.code : 'Error', message: e.message, chunkName: e.chunkName, which: e.which, ...sys },
    });
    return;
  }
  const transfer: ArrayBuffer[] = [];
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result) as [string, unknown][]) {
    if (!(v instanceof Uint8Array) || v.length <= 4096) {
      out[k] = v;
      continue;
    }
    const moved = ownedBuffer(v as Buffer);
    out[k] = moved;
    transfer.push(moved.buffer as ArrayBuffer);
  }
  parentPort!.postMessage({ id, result: out }, transfer);
}

const queue: { id: number; job: Job }[] = [];
let scheduled = false;

function runQueued(): void {
  scheduled = false;
  const batch = queue.splice(0, MAX_BATCH);
  const results = runJobs(batch.map((m) => m.job));
  batch.forEach((m, i) => reply(m.id, results[i]!));
  if (queue.length > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  // After the messages already waiting on the port have been queued.
  setImmediate(runQueued);
}

// Each message is a batch of jobs from the pool (one job or several), or the slab of decryptSlot jobs.
parentPort!.on('message', (msg: { id: number; job: Job }[] | { slab: number; buffer: SharedArrayBuffer; slotSize: number; base: number }) => {
  if (!Array.isArray(msg)) return useSlab(msg.slab, msg.buffer, msg.slotSize, msg.base);
  queue.push(...msg);
  schedule();
});
