/** Worker thread entry: runs chunk jobs and sends results back, moving (not copying) result buffers. */
import { parentPort } from 'node:worker_threads';
import { SefsError } from '../core/errors.js';
import { type Job, runJob } from './chunk-jobs.js';

/** A buffer that owns its whole ArrayBuffer can be transferred; a view into a shared pool must be copied. */
function ownedBuffer(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer)) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

parentPort!.on('message', ({ id, job }: { id: number; job: Job }) => {
  try {
    const result = runJob(job);
    const transfer: ArrayBuffer[] = [];
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(result) as [string, Buffer][]) {
      out[k] = v.length > 4096 ? ownedBuffer(v) : v;
      if (out[k]!.length > 4096) transfer.push(out[k]!.buffer as ArrayBuffer);
    }
    parentPort!.postMessage({ id, result: out }, transfer);
  } catch (err) {
    const e = err as Error & { chunkName?: string; which?: string };
    parentPort!.postMessage({
      id,
      error: { code: err instanceof SefsError ? err.code : 'Error', message: e.message, chunkName: e.chunkName, which: e.which },
    });
  }
});
