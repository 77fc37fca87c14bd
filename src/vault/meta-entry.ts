/**
 * The content of a regular file's metadata file: its logical size and either its bytes inline
 * (files under 3 bytes cannot be self-encrypted) or its root DataMap in the reference serialisation.
 *   version 1: "SEFS" | u8 1 | u8 kind | u64 LE size | payload | SHA3-256 of all before
 *   version 2: "SEFS" | u8 2 | u8 kind | u64 LE size | u32 LE n | n bytes of node fields | payload | SHA3-256
 * Version 2 is written only for an entry with node fields (node-info.ts: inode number, special node type and
 * rdev, extended attributes, hard-link stub); one without is written as version 1, byte for byte as before.
 * kind 0: inline bytes; kind 1: the DataMap; kind 2 (maps over 64 KiB, files of about 800 MiB and more):
 * u64 LE bytes not in holes, then the DataMap compressed with brotli (a 1 TiB sparse file's million equal
 * hole chunks take a few KiB instead of 80 MiB, so a stat of it reads a small file);
 * kind 3 (files up to PACK_LIMIT, "packed"): u32 LE length of the DataMap, the DataMap, then each chunk's
 * encrypted bytes as u32 LE length + bytes: a small file is one file in the vault, not one plus three
 * chunk files, and its DataMap, chunk names and bytes are still exactly the reference algorithm's;
 * kind 4 (a map whose raw-stored chunks have piece hashes, core/pieces.ts): u8 kind of the map (1 or 2), u32 LE
 * length of that kind's payload, the payload, then u32 LE n and n records of u32 LE chunk index (increasing,
 * below MAX_PIECED_CHUNKS), u8 plainAt and the chunk's piece hashes (their count follows from plainAt and the
 * chunk's size). Written only for entries with piece hashes; without them an entry is kind 1 or 2 as before.
 * kind 5 (keyed piece tags, since the eighteenth session): as kind 4, with the file's piece key (PIECE_KEY_SIZE
 * bytes) between the payload and the table; the records are then GMAC tags under it (core/pieces.ts).
 * The checksum makes a damaged entry a clear error (not chunks decrypted under damaged keys).
 */
import { type ChunkRef, chunkRefOf } from '../core/chunk-ref.js';
import { type DataMap, dataMapSize, deserializeDataMap, serializeDataMap } from '../core/data-map.js';
import { InvalidDataMap } from '../core/errors.js';
import { sha3 } from '../core/hash.js';
import { zeroSrc } from '../core/zeros.js';
import { PIECE_HASH_SIZE, PIECE_KEY_SIZE, type PieceHashes, newPieceKey, pieceCount, rawStoredLength, worthPieces } from '../core/pieces.js';
import { brotliCompressSync, brotliDecompressSync, constants as zc } from 'node:zlib';
import { type NodeInfo, decodeNode, encodeNode, hasNodeFields } from './node-info.js';

/** How a stored entry is opened: the codec, bound to the entry's place (meta-tree.ts). */
export interface EntryOpener {
  openEntry(stored: Buffer): Buffer;
}

const MAGIC = Buffer.from('SEFS');
/** The newest entry version written (1 is still written for entries without node fields, and read). */
export const META_FORMAT_VERSION = 2;
const HEADER_SIZE = 14;
const CHECKSUM_SIZE = 32;

/**
 * A map entry's chunks are in the chunk store, or, `packed`, inside the entry itself (stored bytes by chunk
 * index): packed chunks are not in the store and no space reclamation counts them.
 */
export type MetaEntry = ({ kind: 'inline'; size: number; data: Buffer } | { kind: 'map'; size: number; dataMap: DataMap; packed?: Buffer[]; pieces?: (PieceHashes | undefined)[] }) & {
  /** What the entry says of its node besides content (node-info.ts); absent in version-1 entries. */
  node?: NodeInfo;
};

/** Files up to this size keep their encrypted chunks inside their entry (see native-notes/small-files.md). */
export const PACK_LIMIT = 256 * 1024;

export const EMPTY_ENTRY: MetaEntry = { kind: 'inline', size: 0, data: Buffer.alloc(0) };

/**
 * Piece hashes are kept for the first 16,384 chunks of a file (16 GiB) at most: about 2.3 MiB of hashes, so a
 * larger file's entry does not grow by 140 bytes per MiB without end. Chunks past it are read whole.
 */
export const MAX_PIECED_CHUNKS = 16_384;
/** The largest plainAt a piece record may claim (an uncompressed meta-block's header is 3 or 4 bytes). */
const MAX_PLAIN_AT = 8;

/** Serialised maps larger than this are stored compressed (kind 2). */
const COMPRESS_OVER = 64 * 1024;
/** The largest serialised map a vault file can have (1 TiB of 1 MiB chunks): bounds decompression. */
const MAX_SERIALIZED_MAP = 10 + 80 * (2 ** 20 + 1) + 9;
/**
 * The largest metadata file read at all (checked before reading): the largest map, with room for the frame,
 * brotli's worst-case growth and a seal. A planted huge (or sparse) file is refused, not read.
 */
export const MAX_STORED_ENTRY = MAX_SERIALIZED_MAP + MAX_PIECED_CHUNKS * (5 + 9 * PIECE_HASH_SIZE) + 1024 * 1024;

export function encodeEntry(entry: MetaEntry): Buffer {
  const node = hasNodeFields(entry.node) ? encodeNode(entry.node!) : undefined;
  if (entry.kind === 'inline') return frameEntry(0, entry.size, entry.data, node);
  const map = serializeDataMap(entry.dataMap);
  if (entry.packed) return frameEntry(3, entry.size, Buffer.concat([u32(map.length), map, ...entry.packed.flatMap((c) => [u32(c.length), c])]), node);
  const [kind, payload] = mapPayload(entry, map);
  // One kind of tags per entry: those of the first chunk that has any (pieceKeyFor keeps a file's chunks so).
  const key = entry.pieces?.find((p) => p !== undefined)?.key;
  const table = entry.pieces && pieceTable(entry.pieces, key);
  if (!table) return frameEntry(kind, entry.size, payload, node);
  return frameEntry(key ? 5 : 4, entry.size, Buffer.concat([Buffer.of(kind), u32(payload.length), payload, ...(key ? [key] : []), table]), node);
}

/** A map's kind-1 or kind-2 payload. */
function mapPayload(entry: MetaEntry & { kind: 'map' }, map: Buffer): [1 | 2, Buffer] {
  if (map.length <= COMPRESS_OVER) return [1, map];
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(storedBytesOf(entry)));
  const packed = brotliCompressSync(map, { params: { [zc.BROTLI_PARAM_QUALITY]: 1, [zc.BROTLI_PARAM_SIZE_HINT]: map.length } });
  return [2, Buffer.concat([head, packed])];
}

/** A kind-4 or kind-5 entry's table of the piece tags made with `key` (none: SHA-256); undefined when no chunk has any. */
function pieceTable(pieces: (PieceHashes | undefined)[], key: Buffer | undefined): Buffer | undefined {
  const records: Buffer[] = [];
  pieces.forEach((p, i) => {
    if (!p || i >= MAX_PIECED_CHUNKS || !(key ? p.key?.equals(key) : !p.key)) return;
    const head = Buffer.alloc(5);
    head.writeUInt32LE(i);
    head.writeUInt8(p.plainAt, 4);
    records.push(head, p.hashes);
  });
  if (records.length === 0) return undefined;
  return Buffer.concat([u32(records.length / 2), ...records]);
}

/** The same content with other node fields (a commit keeps the node of the entry it replaces). */
export function withNode(entry: MetaEntry, node: NodeInfo | undefined): MetaEntry {
  if (entry.node === node) return entry;
  const copy = { ...entry, node };
  if (!node) delete copy.node;
  return copy;
}

/** Bytes copied into memory of their own (not Node's shared pool for small Buffers). */
function copyOwn(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** What a stat needs of an entry: its size, the bytes it holds outside holes (st_blocks), its node fields. */
export interface EntryFacts {
  size: number;
  storedBytes: number;
  node?: NodeInfo;
}

const storedBytesMemo = new WeakMap<MetaEntry, number>();

/** Bytes of a file's content that are not holes (chunks of zeros count as holes). */
export function storedBytesOf(entry: MetaEntry): number {
  if (entry.kind === 'inline') return entry.size;
  let n = storedBytesMemo.get(entry);
  if (n === undefined) {
    n = 0;
    for (const c of entry.dataMap.chunks) {
      const zero = zeroSrc(c.srcSize);
      if (c.srcHash !== zero && !c.srcHash.equals(zero)) n += c.srcSize;
    }
    storedBytesMemo.set(entry, n);
  }
  return n;
}

/**
 * Header + payload + checksum (version 2 with node fields, version 1 without); exported for tests that need
 * well-framed entries around damaged payloads.
 */
export function frameEntry(kind: number, size: number, payload: Uint8Array, node?: Buffer): Buffer {
  const head = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(head, 0);
  head.writeUInt8(node ? 2 : 1, 4);
  head.writeUInt8(kind, 5);
  head.writeBigUInt64LE(BigInt(size), 6);
  const body = node ? Buffer.concat([head, u32(node.length), node, payload]) : Buffer.concat([head, payload]);
  return Buffer.concat([body, sha3(body)]);
}

/**
 * A metadata file as stored (sealed or not) to its entry. Zero length is an empty file: a new file's entry is
 * renamed into meta/ unsynced (a create costs no fsync), and a power loss once its name is on disk (the
 * application's fsync of the directory, or the journal's own commit) but before its bytes are leaves it
 * zero-length (ext4 in its default data=ordered mode and xfs grow the size on disk only with the data).
 * Every entry with content is fsynced before its rename, so zero length means "created, never committed".
 */
export function decodeStoredEntry(stored: Buffer, codec: EntryOpener): MetaEntry {
  return neverWritten(stored) ? EMPTY_ENTRY : decodeEntry(codec.openEntry(stored));
}

/**
 * Zero-length, or all zeros: a file system that made the size durable before the data (a power loss at the
 * wrong moment) leaves the new entry's bytes as zeros. No real entry starts with a zero byte unsealed
 * ("SEFS") and none is all zeros sealed (its authentication tag), so either means "created, never committed".
 */
export function neverWritten(stored: Buffer): boolean {
  return stored.length === 0 || (stored[0] === 0 && stored.every((b) => b === 0));
}

/**
 * A metadata file as stored to its facts, without decoding a compressed DataMap; with the entry itself when
 * finding the facts decoded it anyway (every kind but a compressed map), for the caller to keep.
 */
export function decodeStoredFacts(stored: Buffer, codec: EntryOpener): EntryFacts & { entry?: MetaEntry } {
  if (neverWritten(stored)) return { size: 0, storedBytes: 0, entry: EMPTY_ENTRY };
  const framed = unframe(codec.openEntry(stored));
  const { size, node } = framed;
  const content = unwrapPieces(framed.kind, framed.payload);
  if (content.kind === 2 && content.payload.length >= 8) return { size, storedBytes: Math.min(size, Number(content.payload.readBigUInt64LE(0))), node };
  const entry = entryOf(content, size, node);
  return { size, storedBytes: storedBytesOf(entry), node, entry };
}

/** Check a metadata file's frame and checksum; its kind, size, node fields and payload. */
function unframe(file: Buffer): { kind: number; size: number; payload: Buffer; node?: NodeInfo } {
  if (file.length < HEADER_SIZE + CHECKSUM_SIZE || !file.subarray(0, 4).equals(MAGIC)) throw new InvalidDataMap('not a sefs metadata file');
  const bytes = file.subarray(0, file.length - CHECKSUM_SIZE);
  if (!sha3(bytes).equals(file.subarray(file.length - CHECKSUM_SIZE))) throw new InvalidDataMap('metadata checksum mismatch (the entry is damaged)');
  const version = bytes.readUInt8(4);
  if (version !== 1 && version !== 2) throw new InvalidDataMap(`unknown metadata format version ${version}`);
  const size64 = bytes.readBigUInt64LE(6);
  if (size64 > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidDataMap('size out of range');
  const kind = bytes.readUInt8(5);
  const size = Number(size64);
  if (version === 1) return { kind, size, payload: bytes.subarray(HEADER_SIZE) };
  if (bytes.length < HEADER_SIZE + 4) throw new InvalidDataMap('entry node fields truncated');
  const n = bytes.readUInt32LE(HEADER_SIZE);
  const start = HEADER_SIZE + 4;
  if (start + n > bytes.length) throw new InvalidDataMap('entry node fields truncated');
  return { kind, size, node: decodeNode(bytes.subarray(start, start + n)), payload: bytes.subarray(start + n) };
}

/** Parse a metadata file; anything inconsistent is an InvalidDataMap naming what is wrong. */
export function decodeEntry(file: Buffer): MetaEntry {
  const { kind, size, payload, node } = unframe(file);
  return entryOf(unwrapPieces(kind, payload), size, node);
}

function entryOf({ kind, payload, table, key }: EntryContent, size: number, node: NodeInfo | undefined): MetaEntry {
  const entry = contentOf(kind, size, payload);
  if (table) {
    if (entry.kind !== 'map' || entry.packed) throw new InvalidDataMap('piece hashes on an entry without chunks in the store');
    entry.pieces = readPieceTable(table, entry.dataMap, key);
  }
  if (node) entry.node = node;
  return entry;
}

/** An entry's content kind and payload, and a kind-4 or kind-5 entry's piece table (and key). */
interface EntryContent {
  kind: number;
  payload: Buffer;
  table?: Buffer;
  key?: Buffer;
}

/** A kind-4 or kind-5 payload's map kind and payload, and its piece table (and key); any other kind as it is. */
function unwrapPieces(kind: number, payload: Buffer): EntryContent {
  if (kind !== 4 && kind !== 5) return { kind, payload };
  if (payload.length < 5) throw new InvalidDataMap('entry with piece hashes truncated');
  const inner = payload.readUInt8(0);
  const length = payload.readUInt32LE(1);
  const keySize = kind === 5 ? PIECE_KEY_SIZE : 0;
  if ((inner !== 1 && inner !== 2) || 5 + length + keySize > payload.length) throw new InvalidDataMap('entry with piece hashes is malformed');
  const content: EntryContent = { kind: inner, payload: payload.subarray(5, 5 + length), table: payload.subarray(5 + length + keySize) };
  // A copy in memory of its own: the entry file's buffer is not kept alive by its key, and a worker job
  // carrying it copies 32 bytes, not the shared 8 KiB pool block small Buffers live in.
  if (keySize > 0) content.key = copyOwn(payload.subarray(5 + length, 5 + length + keySize));
  return content;
}

/** The piece records of a kind-4 or kind-5 entry, each checked against its chunk's size (increasing indices, exact lengths). */
function readPieceTable(table: Buffer, map: DataMap, key: Buffer | undefined): (PieceHashes | undefined)[] {
  if (table.length < 4) throw new InvalidDataMap('piece table truncated');
  const n = table.readUInt32LE(0);
  const pieces: (PieceHashes | undefined)[] = [];
  let at = 4;
  let previous = -1;
  for (let r = 0; r < n; r++) {
    if (at + 5 > table.length) throw new InvalidDataMap('piece table truncated');
    const index = table.readUInt32LE(at);
    const plainAt = table.readUInt8(at + 4);
    const chunk = map.chunks[index];
    if (index <= previous || index >= MAX_PIECED_CHUNKS || !chunk || plainAt > MAX_PLAIN_AT) throw new InvalidDataMap(`piece record for chunk ${index} is out of place`);
    const storedLength = rawStoredLength(plainAt, chunk.srcSize);
    if (!worthPieces(storedLength)) throw new InvalidDataMap(`piece record for chunk ${index}, which is one piece`);
    const length = pieceCount(storedLength) * PIECE_HASH_SIZE;
    if (at + 5 + length > table.length) throw new InvalidDataMap('piece table truncated');
    // A copy: the entry file's buffer is not kept alive by its hashes.
    const hashes = copyOwn(table.subarray(at + 5, at + 5 + length));
    pieces[index] = key ? { plainAt, hashes, key } : { plainAt, hashes };
    at += 5 + length;
    previous = index;
  }
  if (at !== table.length) throw new InvalidDataMap('piece table has trailing bytes');
  return pieces;
}

function contentOf(kind: number, size: number, payload: Buffer): MetaEntry {
  if (kind === 0) {
    if (payload.length !== size || size >= 3) throw new InvalidDataMap(`inline entry of ${payload.length} bytes claims size ${size}`);
    return { kind: 'inline', size, data: Buffer.from(payload) };
  }
  if (kind === 3) return unpackChunks(size, payload);
  if (kind !== 1 && kind !== 2) throw new InvalidDataMap(`unknown entry kind ${kind}`);
  return { kind: 'map', size, dataMap: checkedMap(kind === 1 ? payload : unpack(payload), size) };
}

function checkedMap(bytes: Buffer, size: number): DataMap {
  const dataMap = deserializeDataMap(bytes);
  if (dataMap.child !== undefined) throw new InvalidDataMap('metadata holds a shrunk DataMap');
  if (dataMapSize(dataMap) !== size) throw new InvalidDataMap(`DataMap holds ${dataMapSize(dataMap)} bytes, entry says ${size}`);
  return dataMap;
}

/** A kind-3 payload: the DataMap and one stored chunk per entry of it, every length within the payload. */
function unpackChunks(size: number, payload: Buffer): MetaEntry {
  if (size > PACK_LIMIT) throw new InvalidDataMap(`packed entry claims size ${size}`);
  let at = 0;
  const take = (): Buffer => {
    if (at + 4 > payload.length) throw new InvalidDataMap('packed entry truncated');
    const length = payload.readUInt32LE(at);
    if (at + 4 + length > payload.length) throw new InvalidDataMap('packed entry truncated');
    at += 4 + length;
    return payload.subarray(at - length, at);
  };
  const dataMap = checkedMap(take(), size);
  // Copies: the entry file's buffer is not kept alive by its chunks, and each may move to a worker.
  const packed = dataMap.chunks.map(() => Buffer.from(take()));
  if (at !== payload.length) throw new InvalidDataMap('packed entry has trailing bytes');
  return { kind: 'map', size, dataMap, packed };
}

/** A kind-2 payload's DataMap bytes; bounded, so a hostile entry cannot inflate without limit. */
function unpack(payload: Buffer): Buffer {
  if (payload.length < 8) throw new InvalidDataMap('compressed entry too short');
  try {
    return brotliDecompressSync(payload.subarray(8), { maxOutputLength: MAX_SERIALIZED_MAP });
  } catch (err) {
    throw new InvalidDataMap(`compressed DataMap does not decompress: ${(err as Error).message}`);
  }
}

/**
 * The piece key a file's new chunks are tagged with (core/pieces.ts): its entry's; a new one when its entry
 * has no piece tags; none (SHA-256) when they are unkeyed (kind 4), so that an entry's tags stay of one kind.
 */
export function pieceKeyFor(entry: MetaEntry): Buffer | undefined {
  const first = entry.kind === 'map' ? entry.pieces?.find((p) => p !== undefined) : undefined;
  return first ? first.key : newPieceKey();
}

/** How to decrypt chunk i of a map entry, with its stored bytes when the entry holds them (packed). */
export function entryChunkRef(entry: MetaEntry & { kind: 'map' }, i: number): ChunkRef {
  const ref = chunkRefOf(entry.dataMap, i);
  const stored = entry.packed?.[i];
  // A copy: decryption moves the bytes to a worker, and the entry keeps its own.
  if (stored) return { ...ref, stored: Buffer.from(stored) };
  const pieces = entry.pieces?.[i];
  return pieces ? { ...ref, pieces } : ref;
}

/** The chunk names of the store an entry holds, once each: hex -> name (none for a packed entry). */
export function entryChunkNames(entry: MetaEntry): Map<string, Buffer> {
  const seen = new Map<string, Buffer>();
  if (entry.kind !== 'map' || entry.packed) return seen;
  let previous: Buffer | undefined;
  for (const c of entry.dataMap.chunks) {
    // Runs of holes share one name object: skip the hex of each repeat.
    if (c.dstHash === previous) continue;
    previous = c.dstHash;
    const hex = c.dstHash.toString('hex');
    if (!seen.has(hex)) seen.set(hex, c.dstHash);
  }
  return seen;
}
