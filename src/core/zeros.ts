/**
 * Holes: chunks that are all zeros. Their src hash depends only on their size, so it is computed once per
 * size and process (one object, so runs of holes compare by identity); their plaintext is one shared zero
 * buffer, never written to. A sparse file's holes then cost no memory per block.
 */
import { MAX_CHUNK_SIZE } from './constants.js';
import { sha3 } from './hash.js';

/** Read-only: callers take subarrays as the plaintext of holes. */
export const ZEROS = Buffer.alloc(MAX_CHUNK_SIZE + 2);

const srcBySize = new Map<number, Buffer>();

/** SHA3-256 of `size` zero bytes. */
export function zeroSrc(size: number): Buffer {
  let src = srcBySize.get(size);
  if (!src) {
    src = sha3(ZEROS.subarray(0, size));
    srcBySize.set(size, src);
  }
  return src;
}
