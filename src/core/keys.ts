/**
 * Key, IV and pad derivation from neighbouring chunks' plaintext hashes, as the reference crate does it.
 */
import { IV_SIZE, KEY_SIZE } from './constants.js';

export interface ChunkKeys {
  key: Buffer; // 16 bytes: first half of src[n1]
  iv: Buffer; // 16 bytes: second half of src[n1]
  pad: Buffer; // 64 bytes: src[i] || src[n2]
}

/** The two neighbours whose hashes key chunk `index` of `count`: 0 -> (n-1, n-2), 1 -> (0, n-1), i -> (i-1, i-2). */
export function neighbours(index: number, count: number): [number, number] {
  if (index === 0) return [count - 1, count - 2];
  if (index === 1) return [0, count - 1];
  return [index - 1, index - 2];
}

/** Keys of chunk `index` given the src hashes of all chunks (only i and its two neighbours are read). */
export function chunkKeys(index: number, srcHashes: readonly Uint8Array[]): ChunkKeys {
  const [n1, n2] = neighbours(index, srcHashes.length);
  return keysFromHashes(srcHashes[index]!, srcHashes[n1]!, srcHashes[n2]!);
}

/** Keys from the chunk's own src hash and its neighbours' (n1 keys AES, n2 completes the pad). */
export function keysFromHashes(own: Uint8Array, n1: Uint8Array, n2: Uint8Array): ChunkKeys {
  const n1b = Buffer.from(n1.buffer, n1.byteOffset, n1.byteLength);
  return {
    key: Buffer.from(n1b.subarray(0, KEY_SIZE)),
    iv: Buffer.from(n1b.subarray(KEY_SIZE, KEY_SIZE + IV_SIZE)),
    pad: Buffer.concat([own, n2]),
  };
}
