/**
 * All offset arithmetic of the chunk layout lives here (as gocryptfs keeps its block maths in one file):
 * how many chunks a size gives, where each starts, how large it is, and which chunks cover a byte range.
 * Sizes below 2^53 are exact in JS numbers, far beyond any file we handle.
 */
import { MAX_CHUNK_SIZE, MIN_ENCRYPTABLE_BYTES } from './constants.js';

/** Number of chunks for a file of `size` bytes (0 when it is too small to self-encrypt). */
export function numChunks(size: number): number {
  if (size < MIN_ENCRYPTABLE_BYTES) return 0;
  if (size < 3 * MAX_CHUNK_SIZE) return 3;
  return Math.ceil(size / MAX_CHUNK_SIZE);
}

/** Plaintext size of chunk `index` of a file of `size` bytes. */
export function chunkSize(size: number, index: number): number {
  const n = numChunks(size);
  if (index < 0 || index >= n) return 0;
  if (size < 3 * MAX_CHUNK_SIZE) {
    const third = Math.floor(size / 3);
    return index < 2 ? third : size - 2 * third;
  }
  if (index < n - 1) return MAX_CHUNK_SIZE;
  const rest = size % MAX_CHUNK_SIZE;
  return rest === 0 ? MAX_CHUNK_SIZE : rest;
}

/** The byte offset where chunk `index` starts. */
export function chunkStart(size: number, index: number): number {
  if (size < 3 * MAX_CHUNK_SIZE) return index * Math.floor(size / 3);
  return index * MAX_CHUNK_SIZE;
}

/** Index of the chunk holding byte `pos` (pos < size). */
export function chunkIndexAt(size: number, pos: number): number {
  if (size < 3 * MAX_CHUNK_SIZE) {
    const third = Math.floor(size / 3);
    return Math.min(Math.floor(pos / third), 2);
  }
  return Math.floor(pos / MAX_CHUNK_SIZE);
}

/** A chunk's place in the file. */
export interface ChunkSpan {
  index: number;
  start: number;
  size: number;
}

/** Every chunk of a file of `size` bytes, in order. */
export function chunkSpans(size: number): ChunkSpan[] {
  const spans: ChunkSpan[] = [];
  for (let i = 0; i < numChunks(size); i++) spans.push({ index: i, start: chunkStart(size, i), size: chunkSize(size, i) });
  return spans;
}

/**
 * First and last chunk indices covering [offset, offset + length) of a file of `size` bytes,
 * clamped to the file; null when the range is empty or starts at or past the end.
 */
export function chunksCovering(size: number, offset: number, length: number): { first: number; last: number } | null {
  if (numChunks(size) === 0 || length <= 0 || offset >= size || offset < 0) return null;
  const end = Math.min(size, offset + length);
  return { first: chunkIndexAt(size, offset), last: chunkIndexAt(size, end - 1) };
}
