/**
 * Where decryption gets chunks from: a ChunkStore, or a plain function as in the reference API
 * (`decrypt(dataMap, getChunk)`), sync or async. A function returning nothing means the chunk is missing.
 */
import { ChunkNotFound } from '../core/errors.js';
import type { ChunkStore } from '../store/chunk-store.js';

export type GetChunk = (name: Buffer) => Uint8Array | null | undefined | Promise<Uint8Array | null | undefined>;
export type ChunkSource = GetChunk | Pick<ChunkStore, 'get'>;

/** A uniform async fetch over any source; a missing chunk is a ChunkNotFound naming it. */
export function fetcherOf(source: ChunkSource): (name: Buffer) => Promise<Uint8Array> {
  const get: GetChunk = typeof source === 'function' ? source : (name) => source.get(name);
  return async (name) => {
    const bytes = await get(name);
    if (bytes === null || bytes === undefined) throw ChunkNotFound.of(name);
    return bytes;
  };
}
