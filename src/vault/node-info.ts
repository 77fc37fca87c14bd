/**
 * What an entry (meta-entry.ts, version 2) says of its node besides its content, as tagged fields:
 *   u8 tag | u32 LE length | bytes
 *   1 ino:    u64 LE, the inode number the mount shows (inode-numbers.ts)
 *   2 type:   u32 LE S_IFMT bits of a FIFO, socket or device, u64 LE rdev (a regular file has no such field)
 *   3 xattr:  u8 name length | name (bytes) | value; one field per attribute, in the order they were set
 *   4 link:   u64 LE, the hard-link record this name is a stub for (hard-links.ts); no other field beside it
 * An unknown tag is damage (a field this version cannot honour must not be dropped by the next commit).
 */
import { constants } from 'node:fs';
import { InvalidDataMap } from '../core/errors.js';

export interface NodeInfo {
  ino?: number;
  /** S_IFMT of a special node; absent for a regular file. */
  type?: number;
  rdev?: number;
  /** Extended attributes by name (xattrs.ts has the rules). */
  xattrs?: Map<string, Buffer>;
  /** A stub: the node's content and fields are in hard-link record `link`. */
  link?: number;
}

const TAG_INO = 1;
const TAG_TYPE = 2;
const TAG_XATTR = 3;
const TAG_LINK = 4;

/** The node types stored as entries: never as real FIFOs or devices in the vault (threat-model.md). */
export const SPECIAL_TYPES = [constants.S_IFIFO, constants.S_IFSOCK, constants.S_IFCHR, constants.S_IFBLK];

export const hasNodeFields = (node: NodeInfo | undefined): boolean =>
  node !== undefined && (node.ino !== undefined || node.type !== undefined || node.link !== undefined || (node.xattrs?.size ?? 0) > 0);

function field(tag: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(tag, 0);
  head.writeUInt32LE(body.length, 1);
  return Buffer.concat([head, body]);
}

const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

export function encodeNode(node: NodeInfo): Buffer {
  const parts: Buffer[] = [];
  if (node.ino !== undefined) parts.push(field(TAG_INO, u64(node.ino)));
  if (node.type !== undefined) {
    const b = Buffer.alloc(12);
    b.writeUInt32LE(node.type, 0);
    b.writeBigUInt64LE(BigInt(node.rdev ?? 0), 4);
    parts.push(field(TAG_TYPE, b));
  }
  for (const [name, value] of node.xattrs ?? []) {
    const n = Buffer.from(name, 'utf8');
    parts.push(field(TAG_XATTR, Buffer.concat([Buffer.from([n.length]), n, value])));
  }
  if (node.link !== undefined) parts.push(field(TAG_LINK, u64(node.link)));
  return Buffer.concat(parts);
}

function readU64(body: Buffer, what: string): number {
  if (body.length < 8) throw new InvalidDataMap(`entry ${what} field truncated`);
  const n = body.readBigUInt64LE(0);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidDataMap(`entry ${what} out of range`);
  return Number(n);
}

export function decodeNode(bytes: Buffer): NodeInfo {
  const node: NodeInfo = {};
  for (let at = 0; at < bytes.length; ) {
    if (at + 5 > bytes.length) throw new InvalidDataMap('entry node field truncated');
    const tag = bytes.readUInt8(at);
    const length = bytes.readUInt32LE(at + 1);
    const body = bytes.subarray(at + 5, at + 5 + length);
    if (body.length !== length) throw new InvalidDataMap('entry node field truncated');
    at += 5 + length;
    if (tag === TAG_INO) node.ino = readU64(body, 'inode number');
    else if (tag === TAG_LINK) node.link = readU64(body, 'link');
    else if (tag === TAG_TYPE) {
      if (body.length !== 12 || !SPECIAL_TYPES.includes(body.readUInt32LE(0))) throw new InvalidDataMap('entry node type damaged');
      node.type = body.readUInt32LE(0);
      node.rdev = readU64(body.subarray(4), 'rdev');
    } else if (tag === TAG_XATTR) {
      const n = body.length > 0 ? body[0]! : 0;
      if (n === 0 || 1 + n > body.length) throw new InvalidDataMap('entry xattr field damaged');
      (node.xattrs ??= new Map()).set(body.subarray(1, 1 + n).toString('utf8'), Buffer.from(body.subarray(1 + n)));
    } else throw new InvalidDataMap(`unknown entry node field ${tag}`);
  }
  return node;
}
