/**
 * Whole-buffer self-encryption and the DataMap's shrink/expand, in pure functions.
 * The library runs the same steps across worker threads; these are the single-threaded reference path.
 */
import { MAX_ROOT_CHUNKS, MIN_ENCRYPTABLE_BYTES } from './constants.js';
import { type Profile } from './compression.js';
import { decryptChunk, encryptChunk } from './chunk.js';
import { type ChunkInfo, type DataMap, MAX_CHILD_LEVEL, dataMapSize, deserializeDataMap, serializeDataMap } from './data-map.js';
import { InvalidDataMap, TooSmall } from './errors.js';
import { sha3 } from './hash.js';
import { chunkKeys } from './keys.js';
import { chunkSpans } from './layout.js';

export interface EncryptedChunk {
  /** SHA3-256 of content: the name the chunk is stored under. */
  name: Buffer;
  content: Buffer;
}

/** Encrypt chunk `index` of a file whose chunk src hashes are all known. */
export function encryptChunkAt(index: number, plain: Uint8Array, srcHashes: readonly Buffer[], profile: Profile): EncryptedChunk {
  const content = encryptChunk(plain, chunkKeys(index, srcHashes), profile);
  return { name: sha3(content), content };
}

/** Self-encrypt `data` into its root DataMap (not shrunk) and chunks. */
export function encryptBytes(data: Uint8Array, profile: Profile): { dataMap: DataMap; chunks: EncryptedChunk[] } {
  if (data.length < MIN_ENCRYPTABLE_BYTES) throw new TooSmall(data.length);
  const spans = chunkSpans(data.length);
  const plains = spans.map((s) => data.subarray(s.start, s.start + s.size));
  const srcHashes = plains.map((p) => sha3(p));
  const chunks = plains.map((p, i) => encryptChunkAt(i, p, srcHashes, profile));
  const infos: ChunkInfo[] = spans.map((s, i) => ({
    index: i,
    dstHash: chunks[i]!.name,
    srcHash: srcHashes[i]!,
    srcSize: s.size,
  }));
  return { dataMap: { chunks: infos }, chunks };
}

/**
 * Shrink a map of more than three chunks as the reference does: serialise it, self-encrypt those bytes,
 * keep the small map of that with child level + 1, until at most three chunks remain.
 */
export function shrinkDataMap(map: DataMap, profile: Profile): { dataMap: DataMap; chunks: EncryptedChunk[] } {
  const chunks: EncryptedChunk[] = [];
  let current = map;
  while (current.chunks.length > MAX_ROOT_CHUNKS) {
    const level = (current.child ?? 0) + 1;
    const inner = encryptBytes(serializeDataMap(current), profile);
    chunks.push(...inner.chunks);
    current = { chunks: inner.dataMap.chunks, child: level };
  }
  return { dataMap: current, chunks };
}

/** Decrypt chunk `index` of `map` from its stored bytes, verifying both hashes. */
export function decryptChunkOf(map: DataMap, index: number, stored: Uint8Array): Buffer {
  const info = map.chunks[index]!;
  const keys = chunkKeys(index, map.chunks.map((c) => c.srcHash));
  return decryptChunk(stored, keys, info.dstHash, info.srcSize);
}

export type FetchChunk = (name: Buffer) => Promise<Uint8Array> | Uint8Array;

/** Decrypt every chunk of a map into one buffer, fetching chunks through `fetch`. */
export async function decryptAll(map: DataMap, fetch: FetchChunk): Promise<Buffer> {
  const parts = await Promise.all(map.chunks.map(async (c, i) => decryptChunkOf(map, i, await fetch(c.dstHash))));
  return Buffer.concat(parts, dataMapSize(map));
}

/** Expand a shrunk map back to the root map of the file; each level must be exactly one lower than its parent. */
export async function expandDataMap(map: DataMap, fetch: FetchChunk): Promise<DataMap> {
  let current = map;
  while (current.child !== undefined) {
    if (current.child > MAX_CHILD_LEVEL) throw new InvalidDataMap(`child level ${current.child} is out of range`);
    const inner = deserializeDataMap(await decryptAll(current, fetch));
    const expected = current.child - 1;
    if ((inner.child ?? 0) !== expected) {
      throw new InvalidDataMap(`level ${current.child} holds a map of level ${inner.child ?? 0}, expected ${expected}`);
    }
    current = inner;
  }
  return current;
}
