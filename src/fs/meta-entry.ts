/**
 * The content of a regular file's metadata file: its logical size and either its bytes inline
 * (files under 3 bytes cannot be self-encrypted) or its root DataMap in the reference serialisation.
 *   "SEFS" | u8 format version | u8 kind (0 inline, 1 datamap) | u64 LE size | payload
 */
import { type DataMap, dataMapSize, deserializeDataMap, serializeDataMap } from '../core/data-map.js';
import { InvalidDataMap } from '../core/errors.js';

const MAGIC = Buffer.from('SEFS');
const FORMAT_VERSION = 1;
const HEADER_SIZE = 14;

export type MetaEntry = { kind: 'inline'; size: number; data: Buffer } | { kind: 'map'; size: number; dataMap: DataMap };

export const EMPTY_ENTRY: MetaEntry = { kind: 'inline', size: 0, data: Buffer.alloc(0) };

export function encodeEntry(entry: MetaEntry): Buffer {
  const payload = entry.kind === 'inline' ? entry.data : serializeDataMap(entry.dataMap);
  const head = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(head, 0);
  head.writeUInt8(FORMAT_VERSION, 4);
  head.writeUInt8(entry.kind === 'inline' ? 0 : 1, 5);
  head.writeBigUInt64LE(BigInt(entry.size), 6);
  return Buffer.concat([head, payload]);
}

/** Parse a metadata file; anything inconsistent is an InvalidDataMap naming what is wrong. */
export function decodeEntry(bytes: Buffer): MetaEntry {
  if (bytes.length < HEADER_SIZE || !bytes.subarray(0, 4).equals(MAGIC)) throw new InvalidDataMap('not a sefs metadata file');
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
