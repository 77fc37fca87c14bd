/**
 * The decrypt side's building blocks: the root map of any DataMap, one chunk's decryption, and an ordered
 * stream of decrypted slices with a bounded look-ahead. decrypt, decryptRange, parallelDecrypt,
 * decryptToFile, the SelfEncryptor and the CLI's cat are all made of these.
 */
import { type DataMap, dataMapSize, validateLayout } from '../core/data-map.js';
import { expandDataMap } from '../core/encrypt.js';
import { InvalidDataMap, OutOfRange } from '../core/errors.js';
import { chunkRefOf } from '../core/chunk-ref.js';
import { chunkStart, chunksCovering } from '../core/layout.js';
import { type ChunkCrypto, inlineCrypto } from './crypto.js';
import { type ChunkSource, fetcherOf } from './source.js';

export type Fetch = (name: Buffer) => Promise<Uint8Array>;

/**
 * The root map of the file (expanding a shrunk map by fetching its few map chunks), checked so that
 * offsets can come from the layout alone. A root map is returned as is, without any fetch.
 */
export async function rootDataMap(map: DataMap, source: ChunkSource): Promise<DataMap> {
  const root = map.child === undefined ? map : await expandDataMap(map, fetcherOf(source));
  root.chunks.forEach((c, i) => {
    if (c.index !== i) throw new InvalidDataMap(`chunk ${i} has index ${c.index}`);
  });
  validateLayout(root);
  return root;
}

/** Fetch, verify and decrypt chunk `index` of a root map. */
export async function decryptChunkAt(root: DataMap, index: number, fetch: Fetch, pool: ChunkCrypto = inlineCrypto): Promise<Buffer> {
  const ref = chunkRefOf(root, index);
  const stored = await fetch(ref.dst);
  return pool.decrypt(stored, ref.own, ref.n1, ref.n2, ref.dst, ref.size);
}

/** Check a byte range against a file of `size` bytes; the end is clipped to the file, as a read is. */
export function clipRange(size: number, offset: number, length: number): { offset: number; length: number } {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OutOfRange(`offset ${offset} is not a valid byte offset`);
  if (offset > size) throw new OutOfRange(`offset ${offset} is past the end of the file (${size} bytes)`);
  if (!Number.isSafeInteger(length) || length < 0) throw new OutOfRange(`length ${length} is not a valid byte count`);
  return { offset, length: Math.min(length, size - offset) };
}

export interface SliceOptions {
  pool?: ChunkCrypto;
  /** How many chunks to fetch and decrypt ahead of the consumer (default 2). */
  ahead?: number;
}

/**
 * The bytes of [offset, offset + length) of a root map's file, as one slice per chunk, in order. Only the
 * chunks covering the range are fetched (found from the layout), at most `ahead` + 1 at a time.
 */
export async function* decryptSlices(root: DataMap, fetch: Fetch, offset: number, length: number, options: SliceOptions = {}): AsyncGenerator<Buffer> {
  const size = dataMapSize(root);
  const range = clipRange(size, offset, length);
  const cover = chunksCovering(size, range.offset, range.length);
  if (!cover) return;
  const end = range.offset + range.length;
  const ahead = Math.max(1, options.ahead ?? 2);
  const queue: Promise<Buffer>[] = [];
  let next = cover.first;
  const fill = (): void => {
    while (next <= cover.last && queue.length < ahead) {
      const p = decryptChunkAt(root, next++, fetch, options.pool);
      p.catch(() => {}); // awaited below in order; a consumer that stops early must not leave an unhandled rejection
      queue.push(p);
    }
  };
  fill();
  for (let index = cover.first; index <= cover.last; index++) {
    const pending = queue.shift()!;
    fill();
    const plain = await pending;
    const start = chunkStart(size, index);
    yield plain.subarray(Math.max(0, range.offset - start), Math.min(plain.length, end - start));
  }
}

export interface RangeOptions {
  pool?: ChunkCrypto;
}

/**
 * Decrypt [offset, offset + length) of a file (clipped at its end), fetching and decrypting only the chunks
 * covering it, all in parallel. Pass a root map (see rootDataMap) to avoid re-expanding a shrunk one per call.
 */
export async function decryptRange(dataMap: DataMap, source: ChunkSource, offset: number, length: number, options: RangeOptions = {}): Promise<Buffer> {
  const root = await rootDataMap(dataMap, source);
  const size = dataMapSize(root);
  const range = clipRange(size, offset, length);
  const parts: Buffer[] = [];
  // Every covering chunk at once.
  for await (const slice of decryptSlices(root, fetcherOf(source), range.offset, range.length, { pool: options.pool, ahead: Infinity })) {
    parts.push(slice);
  }
  return Buffer.concat(parts, range.length);
}
