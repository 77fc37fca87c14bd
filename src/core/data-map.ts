/**
 * The DataMap: the ordered chunk list that is the secret needed to read a file, and its reference
 * serialisation (bincode 1, little-endian fixed-width integers):
 *   u8 version (1), u64 count, count x (u64 index, [32] dst, [32] src, u64 size), child: u8 0 | u8 1 + u64 level
 */
import { HASH_SIZE, MAX_CHUNK_SIZE } from './constants.js';
import { InvalidDataMap } from './errors.js';
import { chunkSize, numChunks } from './layout.js';

export interface ChunkInfo {
  index: number;
  /** SHA3-256 of the stored (encrypted) bytes: the chunk's name. */
  dstHash: Buffer;
  /** SHA3-256 of the plaintext. */
  srcHash: Buffer;
  /** Plaintext size. */
  srcSize: number;
}

export interface DataMap {
  chunks: ChunkInfo[];
  /** Undefined for a map of the file itself; k >= 1 when its chunks hold the serialised map of level k-1. */
  child?: number;
}

export const DATA_MAP_VERSION = 1;
const ENTRY_SIZE = 8 + HASH_SIZE + HASH_SIZE + 8;
/** No real map nests deeper: each level shrinks the map about 27,000-fold. */
export const MAX_CHILD_LEVEL = 16;

/** Total plaintext bytes the map's chunks hold (the file size for a root map). */
export function dataMapSize(map: DataMap): number {
  return map.chunks.reduce((sum, c) => sum + c.srcSize, 0);
}

export function serializeDataMap(map: DataMap): Buffer {
  const n = map.chunks.length;
  const out = Buffer.alloc(1 + 8 + n * ENTRY_SIZE + (map.child === undefined ? 1 : 9));
  let p = out.writeUInt8(DATA_MAP_VERSION, 0);
  p = out.writeBigUInt64LE(BigInt(n), p);
  for (const c of map.chunks) {
    p = out.writeBigUInt64LE(BigInt(c.index), p);
    p += c.dstHash.copy(out, p);
    p += c.srcHash.copy(out, p);
    p = out.writeBigUInt64LE(BigInt(c.srcSize), p);
  }
  if (map.child === undefined) out.writeUInt8(0, p);
  else out.writeBigUInt64LE(BigInt(map.child), out.writeUInt8(1, p));
  return out;
}

function readU64(buf: Buffer, pos: number, what: string): number {
  const v = buf.readBigUInt64LE(pos);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidDataMap(`${what} ${v} is out of range`);
  return Number(v);
}

/** Parse and validate serialised DataMap bytes; any inconsistency is an InvalidDataMap. */
export function deserializeDataMap(bytes: Uint8Array): DataMap {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10) throw new InvalidDataMap(`${buf.length} bytes is too short`);
  const version = buf.readUInt8(0);
  if (version !== DATA_MAP_VERSION) throw new InvalidDataMap(`unknown version ${version}`);
  const count = readU64(buf, 1, 'chunk count');
  const bodyEnd = 9 + count * ENTRY_SIZE;
  if (count > (buf.length - 10) / ENTRY_SIZE) throw new InvalidDataMap(`claims ${count} chunks but holds ${buf.length} bytes`);
  const chunks: ChunkInfo[] = [];
  for (let i = 0, p = 9; i < count; i++, p += ENTRY_SIZE) {
    const index = readU64(buf, p, 'chunk index');
    if (index !== i) throw new InvalidDataMap(`chunk ${i} has index ${index}`);
    const srcSize = readU64(buf, p + 8 + 2 * HASH_SIZE, 'chunk size');
    // The last of three chunks of a file just under 3 MiB holds up to MAX + 2 bytes (the reference's layout).
    if (srcSize < 1 || srcSize > MAX_CHUNK_SIZE + 2) throw new InvalidDataMap(`chunk ${i} has size ${srcSize}`);
    const dst = buf.subarray(p + 8, p + 8 + HASH_SIZE);
    const src = buf.subarray(p + 8 + HASH_SIZE, p + 8 + 2 * HASH_SIZE);
    // A run of equal chunks (a sparse file's holes) shares one hash object each: a 1 TiB hole is a million.
    const prev = chunks[i - 1];
    chunks.push({
      index,
      dstHash: prev?.dstHash.equals(dst) ? prev.dstHash : Buffer.from(dst),
      srcHash: prev?.srcHash.equals(src) ? prev.srcHash : Buffer.from(src),
      srcSize,
    });
  }
  const tag = buf.readUInt8(bodyEnd);
  let child: number | undefined;
  let end = bodyEnd + 1;
  if (tag === 1) {
    if (buf.length < bodyEnd + 9) throw new InvalidDataMap('truncated child level');
    child = readU64(buf, bodyEnd + 1, 'child level');
    if (child < 1 || child > MAX_CHILD_LEVEL) throw new InvalidDataMap(`child level ${child} is out of range`);
    end += 8;
  } else if (tag !== 0) throw new InvalidDataMap(`bad child tag ${tag}`);
  if (end !== buf.length) throw new InvalidDataMap(`${buf.length - end} trailing bytes`);
  const map: DataMap = child === undefined ? { chunks } : { chunks, child };
  validateLayout(map);
  return map;
}

/** A map's chunk sizes must be exactly the layout of their total: offsets then come from the layout alone. */
export function validateLayout(map: DataMap): void {
  const total = dataMapSize(map);
  const n = numChunks(total);
  if (n !== map.chunks.length) throw new InvalidDataMap(`${map.chunks.length} chunks for ${total} bytes (expected ${n})`);
  map.chunks.forEach((c, i) => {
    if (c.srcSize !== chunkSize(total, i)) throw new InvalidDataMap(`chunk ${i} has size ${c.srcSize}, layout says ${chunkSize(total, i)}`);
  });
}

/** The JSON form the CLI prints: {file_size, child, chunks:[{index, dst, src, size}]} with hex hashes. */
export function dataMapToJson(map: DataMap, fileSize: number): object {
  return {
    file_size: fileSize,
    child: map.child ?? null,
    chunks: map.chunks.map((c) => ({
      index: c.index,
      dst: c.dstHash.toString('hex'),
      src: c.srcHash.toString('hex'),
      size: c.srcSize,
    })),
  };
}
