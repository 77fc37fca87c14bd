/**
 * The content of a regular file's metadata file: its logical size and either its bytes inline
 * (files under 3 bytes cannot be self-encrypted) or its root DataMap in the reference serialisation.
 *   "SEFS" | u8 format version | u8 kind (0 inline, 1 datamap) | u64 LE size | payload | SHA3-256 of all before
 * The checksum makes a damaged entry a clear error (not chunks decrypted under damaged keys).
 */
import { type DataMap, dataMapSize, deserializeDataMap, serializeDataMap } from '../core/data-map.js';
import { InvalidDataMap } from '../core/errors.js';
import { sha3 } from '../core/hash.js';
import type { MetaCodec } from './meta-codec.js';

const MAGIC = Buffer.from('SEFS');
const FORMAT_VERSION = 1;
const HEADER_SIZE = 14;
const CHECKSUM_SIZE = 32;

export type MetaEntry = { kind: 'inline'; size: number; data: Buffer } | { kind: 'map'; size: number; dataMap: DataMap };

export const EMPTY_ENTRY: MetaEntry = { kind: 'inline', size: 0, data: Buffer.alloc(0) };

export function encodeEntry(entry: MetaEntry): Buffer {
  const payload = entry.kind === 'inline' ? entry.data : serializeDataMap(entry.dataMap);
  return frameEntry(entry.kind === 'inline' ? 0 : 1, entry.size, payload);
}

/** Header + payload + checksum; exported for tests that need well-framed entries around damaged payloads. */
export function frameEntry(kind: number, size: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(head, 0);
  head.writeUInt8(FORMAT_VERSION, 4);
  head.writeUInt8(kind, 5);
  head.writeBigUInt64LE(BigInt(size), 6);
  const body = Buffer.concat([head, payload]);
  return Buffer.concat([body, sha3(body)]);
}

/**
 * A metadata file as stored (sealed or not) to its entry. Zero length is an empty file: a new file's entry is
 * renamed into meta/ unsynced (a create costs no fsync), and a power loss once its name is on disk (the
 * application's fsync of the directory, or the journal's own commit) but before its bytes are leaves it
 * zero-length (ext4 in its default data=ordered mode and xfs grow the size on disk only with the data).
 * Every entry with content is fsynced before its rename, so zero length means "created, never committed".
 */
export function decodeStoredEntry(stored: Buffer, codec: Pick<MetaCodec, 'openEntry'>): MetaEntry {
  return stored.length === 0 ? EMPTY_ENTRY : decodeEntry(codec.openEntry(stored));
}

/** Parse a metadata file; anything inconsistent is an InvalidDataMap naming what is wrong. */
export function decodeEntry(file: Buffer): MetaEntry {
  if (file.length < HEADER_SIZE + CHECKSUM_SIZE || !file.subarray(0, 4).equals(MAGIC)) throw new InvalidDataMap('not a sefs metadata file');
  const bytes = file.subarray(0, file.length - CHECKSUM_SIZE);
  if (!sha3(bytes).equals(file.subarray(file.length - CHECKSUM_SIZE))) throw new InvalidDataMap('metadata checksum mismatch (the entry is damaged)');
  const version = bytes.readUInt8(4);
  if (version !== FORMAT_VERSION) throw new InvalidDataMap(`unknown metadata format version ${version}`);
  const kind = bytes.readUInt8(5);
  const size64 = bytes.readBigUInt64LE(6);
  if (size64 > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidDataMap('size out of range');
  const size = Number(size64);
  const payload = bytes.subarray(HEADER_SIZE);
  if (kind === 0) {
    if (payload.length !== size || size >= 3) throw new InvalidDataMap(`inline entry of ${payload.length} bytes claims size ${size}`);
    return { kind: 'inline', size, data: Buffer.from(payload) };
  }
  if (kind !== 1) throw new InvalidDataMap(`unknown entry kind ${kind}`);
  const dataMap = deserializeDataMap(payload);
  if (dataMap.child !== undefined) throw new InvalidDataMap('metadata holds a shrunk DataMap');
  if (dataMapSize(dataMap) !== size) throw new InvalidDataMap(`DataMap holds ${dataMapSize(dataMap)} bytes, entry says ${size}`);
  return { kind: 'map', size, dataMap };
}
