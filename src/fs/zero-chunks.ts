/**
 * Holes: chunks that are all zeros. Their src hash depends only on their size, so it is computed once per
 * size and process; their plaintext is one shared zero buffer (never written to). A sparse file's holes
 * then cost no memory per block, and its commit encrypts each distinct (size, neighbours) context once.
 */
import { MAX_CHUNK_SIZE } from '../core/constants.js';
import type { WorkerPool } from '../lib/pool.js';

/** Read-only: callers take subarrays as the plaintext of holes. */
export const ZEROS = Buffer.alloc(MAX_CHUNK_SIZE + 2);

const srcBySize = new Map<number, Promise<Buffer>>();

/** SHA3-256 of `size` zero bytes (a failed hash is forgotten, not cached). */
export function zeroSrc(pool: WorkerPool, size: number): Promise<Buffer> {
  let src = srcBySize.get(size);
  if (!src) {
    src = pool.hash(ZEROS.subarray(0, size));
    srcBySize.set(size, src);
    src.catch(() => srcBySize.delete(size));
  }
  return src;
}
