/**
 * Piece tags (core/pieces.ts), keyed and SHA-256 alike: any plaintext range of a raw-stored chunk, read from
 * its covering pieces only, equals the whole chunk's decryption; a damaged byte fails exactly the reads whose
 * pieces cover it; keyed tags verify only under their file's key and chunk; and the metadata entry keeps
 * them (kind 5 keyed, kind 4 SHA-256), refusing tables that do not fit their map.
 */
import { createHash } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { decryptChunk, encryptChunkBytes } from '../src/core/chunk.js';
import type { DataMap } from '../src/core/data-map.js';
import { serializeDataMap } from '../src/core/data-map.js';
import { sha3 } from '../src/core/hash.js';
import { keysFromHashes } from '../src/core/keys.js';
import { PIECE_KEY_SIZE, PIECE_SIZE, PieceMismatch, checkAllPieces, hashPieces, newPieceKey, openPieces, pieceSpan, rawStoredLength, type TagSubject } from '../src/core/pieces.js';
import { EMPTY_ENTRY, decodeEntry, encodeEntry, entryChunkRef, frameEntry, type MetaEntry, pieceKeyFor } from '../src/vault/meta-entry.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';

/** SHA-256 (first 8 bytes) of the tags of the fixed chunk and key in the test below. */
const PINNED_TAGS = '1c9c3af3b35a4953';

const KINDS = [
  ['keyed', newPieceKey()],
  ['SHA-256', undefined],
] as const;

function rawChunk(size: number, seed: number, key: Buffer | undefined = undefined) {
  const plain = seededBytes(size, seed);
  const own = sha3(plain);
  const n1 = sha3(Buffer.from(`n1-${seed}`));
  const n2 = sha3(Buffer.from(`n2-${seed}`));
  const keys = keysFromHashes(own, n1, n2);
  const enc = encryptChunkBytes(plain, keys, 'selective');
  expect(enc.plainAt).toBeDefined();
  expect(enc.content.length).toBe(rawStoredLength(enc.plainAt!, size));
  const name = sha3(enc.content);
  const chunk: TagSubject = { dst: name, own, n1, n2, size };
  return { plain, keys, stored: enc.content, pieces: hashPieces(enc.content, enc.plainAt!, key, chunk), name, own, chunk };
}

function readRange(c: ReturnType<typeof rawChunk>, stored: Buffer, from: number, to: number): Buffer {
  const { start, end } = pieceSpan(c.pieces, c.plain.length, from, to);
  return openPieces(stored.subarray(start, end), start, c.pieces, c.chunk, c.keys, from, to);
}

describe.each(KINDS)('piece reads of a raw chunk, %s tags', (_kind, key) => {
  it.each([1 << 20, 400_001, 3 * PIECE_SIZE - 7])('%i bytes: every range read from its pieces equals the plaintext', (size) => {
    const c = rawChunk(size, size, key);
    // The whole decryption agrees with the plaintext: the fixture is a real chunk.
    expect(decryptChunk(c.stored, c.keys, c.name, size).equals(c.plain)).toBe(true);
    const edges = [0, 1, 15, 16, 17, PIECE_SIZE - 5, PIECE_SIZE - 4, PIECE_SIZE, PIECE_SIZE + 12, 2 * PIECE_SIZE - 4, size - 4096, size - 1];
    const ranges: [number, number][] = [];
    for (const a of edges) for (const len of [1, 16, 4096, 65_536]) if (a >= 0 && a + len <= size) ranges.push([a, a + len]);
    const rand = prng(size);
    for (let k = 0; k < 200; k++) {
      const a = Math.floor(rand() * size);
      ranges.push([a, Math.min(size, a + 1 + Math.floor(rand() * 70_000))]);
    }
    for (const [a, b] of ranges) expect(readRange(c, c.stored, a, b).equals(c.plain.subarray(a, b)), `[${a}, ${b})`).toBe(true);
  });

  it('a damaged byte fails the reads whose pieces cover it, and only those', () => {
    const size = 1 << 20;
    const c = rawChunk(size, 7, key);
    // The last byte of piece 2: its own hash and piece 3's (which covers the 16 bytes before it) both see it.
    const at = 3 * PIECE_SIZE - 1;
    const damaged = Buffer.from(c.stored);
    damaged[at]! ^= 0x40;
    const pieceOf = (plainOffset: number) => Math.floor((c.pieces.plainAt + plainOffset) / PIECE_SIZE);
    let failed = 0;
    for (let a = 0; a + 4096 <= size; a += 4096 * 3 + 1) {
      const b = a + 4096;
      const covers = [pieceOf(a), pieceOf(b - 1)].some((k) => k === 2 || k === 3);
      if (covers) {
        expect(() => readRange(c, damaged, a, b), `[${a}, ${b})`).toThrow(PieceMismatch);
        failed++;
      } else expect(readRange(c, damaged, a, b).equals(c.plain.subarray(a, b))).toBe(true);
    }
    expect(failed).toBeGreaterThan(10);
  });

  it('bytes from the wrong place, or too few, are refused', () => {
    const c = rawChunk(1 << 20, 9, key);
    const { start, end } = pieceSpan(c.pieces, 1 << 20, 500_000, 504_096);
    expect(() => openPieces(c.stored.subarray(start, end - 1), start, c.pieces, c.chunk, c.keys, 500_000, 504_096)).toThrow();
    expect(() => openPieces(c.stored.subarray(start + 16, end + 16), start + 16, c.pieces, c.chunk, c.keys, 500_000, 504_096)).toThrow();
  });
});

describe('keyed piece tags', () => {
  it('are GMACs as the file comment defines them: checked with another implementation (noble) and pinned', () => {
    // A fixed chunk and key: the tags of every stored kind-5 entry depend on this definition never moving.
    const fileKey = Buffer.alloc(PIECE_KEY_SIZE, 7);
    const c = rawChunk(300_001, 17);
    const tagged = hashPieces(c.stored, c.pieces.plainAt, fileKey, c.chunk);
    const size = new Uint8Array(4);
    new DataView(size.buffer).setUint32(0, 300_001);
    const chunkKey = hmac(nobleSha256, fileKey, Buffer.concat([c.name, c.chunk.own, c.chunk.n1, c.chunk.n2, size]));
    for (let k = 0; k * PIECE_SIZE < c.stored.length; k++) {
      const nonce = new Uint8Array(12);
      new DataView(nonce.buffer).setUint32(8, k);
      const piece = c.stored.subarray(Math.max(0, k * PIECE_SIZE - 16), Math.min(c.stored.length, (k + 1) * PIECE_SIZE));
      const tag = gcm(chunkKey, nonce, piece).encrypt(new Uint8Array(0));
      expect(Buffer.from(tag).equals(tagged.hashes.subarray(16 * k, 16 * k + 16)), `piece ${k}`).toBe(true);
    }
    expect(createHash('sha256').update(tagged.hashes).digest('hex').slice(0, 16)).toBe(PINNED_TAGS);
  });

  it('vouch for a whole chunk (checkAllPieces): a damaged byte in any piece, a byte short or long, another name, keys or size fails', () => {
    const size = 1 << 20;
    const c = rawChunk(size, 16, newPieceKey());
    checkAllPieces(c.stored, c.pieces, c.chunk);
    for (const at of [0, 15, PIECE_SIZE - 1, PIECE_SIZE, 4 * PIECE_SIZE + 77, c.stored.length - 1]) {
      const damaged = Buffer.from(c.stored);
      damaged[at]! ^= 0x01;
      expect(() => checkAllPieces(damaged, c.pieces, c.chunk), `byte ${at}`).toThrow(PieceMismatch);
    }
    expect(() => checkAllPieces(c.stored.subarray(0, c.stored.length - 16), c.pieces, c.chunk)).toThrow(PieceMismatch);
    expect(() => checkAllPieces(Buffer.concat([c.stored, Buffer.alloc(16)]), c.pieces, c.chunk)).toThrow(PieceMismatch);
    // Every field the tags vouch for: a size within the same AES padding too, and each of the keys' hashes (a wrong
    // n2 alone decrypts the first block right, and at some lengths the last, so only the tags can tell).
    for (const other of [{ size: size - 64 }, { size: size - 1 }, { dst: sha3(c.name) }, { own: sha3(c.chunk.own) }, { n1: sha3(c.chunk.n1) }, { n2: sha3(c.chunk.n2) }]) {
      expect(() => checkAllPieces(c.stored, c.pieces, { ...c.chunk, ...other }), JSON.stringify(Object.keys(other))).toThrow(PieceMismatch);
    }
    expect(() => checkAllPieces(c.stored, hashPieces(c.stored, c.pieces.plainAt), c.chunk)).toThrow(/only keyed/);
  });

  it('verify only under their file key and for their chunk: another key, another name or SHA-256 hashes fail', () => {
    const key = newPieceKey();
    const c = rawChunk(1 << 20, 11, key);
    expect(c.pieces.key!.length).toBe(PIECE_KEY_SIZE);
    const { start, end } = pieceSpan(c.pieces, 1 << 20, 300_000, 304_096);
    const bytes = c.stored.subarray(start, end);
    const open = (pieces: typeof c.pieces, name: Buffer) => openPieces(bytes, start, pieces, { ...c.chunk, dst: name }, c.keys, 300_000, 304_096);
    expect(open(c.pieces, c.name).equals(c.plain.subarray(300_000, 304_096))).toBe(true);
    expect(() => open({ ...c.pieces, key: newPieceKey() }, c.name)).toThrow(PieceMismatch);
    expect(() => open(c.pieces, sha3(c.name))).toThrow(PieceMismatch);
    // The same bytes' SHA-256 hashes, read as keyed tags, and keyed tags read as SHA-256 hashes.
    const unkeyed = hashPieces(c.stored, c.pieces.plainAt);
    expect(() => open({ ...unkeyed, key }, c.name)).toThrow(PieceMismatch);
    expect(() => open({ plainAt: c.pieces.plainAt, hashes: c.pieces.hashes }, c.name)).toThrow(PieceMismatch);
    // Tags differ between files (keys) for the same chunk.
    expect(rawChunk(1 << 20, 11, newPieceKey()).pieces.hashes.equals(c.pieces.hashes)).toBe(false);
  });

  it('compressed chunks have no piece hashes; selective stores text raw, fast compresses it', () => {
    const plain = textLike(1 << 20, 3);
    const keys = keysFromHashes(sha3(plain), sha3(Buffer.of(1)), sha3(Buffer.of(2)));
    expect(encryptChunkBytes(plain, keys, 'selective').plainAt).toBeDefined();
    expect(encryptChunkBytes(plain, keys, 'fast').plainAt).toBeUndefined();
    const compat = encryptChunkBytes(seededBytes(1 << 20, 4), keys, 'compat');
    expect(compat.plainAt).toBeUndefined();
  });
});

describe.each([
  ['keyed tags (kind 5)', 5, newPieceKey()],
  ['SHA-256 hashes (kind 4)', 4, undefined],
] as const)('piece %s in a metadata entry', (_name, entryKind, key) => {
  function mapOf(count: number, seed: number): DataMap {
    const rand = prng(seed);
    const hash = () => sha3(Buffer.from(String(rand())));
    return { chunks: Array.from({ length: count }, (_, i) => ({ index: i, dstHash: hash(), srcHash: hash(), srcSize: 1 << 20 })) };
  }
  const piecesFor = (seed: number) => rawChunk(1 << 20, seed, key).pieces;

  it.each([5, 2000])('a map of %i chunks keeps its piece hashes through encode and decode', (count) => {
    const dataMap = mapOf(count, count);
    const pieces = [];
    const p = piecesFor(1);
    pieces[1] = p;
    pieces[count - 1] = p;
    const entry: MetaEntry = { kind: 'map', size: count << 20, dataMap, pieces };
    const bytes = encodeEntry(entry);
    expect(bytes.readUInt8(5)).toBe(entryKind);
    const back = decodeEntry(bytes) as MetaEntry & { kind: 'map' };
    expect(back.dataMap.chunks.map((c) => c.dstHash.toString('hex'))).toEqual(dataMap.chunks.map((c) => c.dstHash.toString('hex')));
    expect(back.pieces!.length).toBe(count);
    expect(back.pieces![0]).toBeUndefined();
    expect(back.pieces![1]!.hashes.equals(p.hashes)).toBe(true);
    expect(back.pieces![count - 1]!.plainAt).toBe(p.plainAt);
    expect(entryChunkRef(back, 1).pieces!.hashes.equals(p.hashes)).toBe(true);
    expect(entryChunkRef(back, 0).pieces).toBeUndefined();
    expect(back.pieces![1]!.key?.toString('hex')).toBe(key?.toString('hex'));
    // The next writer of the file tags its chunks the same way.
    expect(pieceKeyFor(back)?.toString('hex')).toBe(key?.toString('hex'));
  });

  it('an entry without piece hashes is written as before (kind 1)', () => {
    expect(encodeEntry({ kind: 'map', size: 5 << 20, dataMap: mapOf(5, 1) }).readUInt8(5)).toBe(1);
    expect(encodeEntry({ kind: 'map', size: 5 << 20, dataMap: mapOf(5, 1), pieces: [] }).readUInt8(5)).toBe(1);
  });

  it('refuses piece tables that do not fit their map', () => {
    const dataMap = mapOf(5, 2);
    const map = serializeDataMap(dataMap);
    const p = piecesFor(2);
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b;
    };
    const record = (index: number, plainAt: number, hashes: Buffer) => Buffer.concat([u32(index), Buffer.of(plainAt), hashes]);
    const entryWith = (table: Buffer) => frameEntry(entryKind, 5 << 20, Buffer.concat([Buffer.of(1), u32(map.length), map, ...(key ? [key] : []), table]));
    // The well-formed one decodes: the others differ from it in one thing each.
    expect((decodeEntry(entryWith(Buffer.concat([u32(1), record(2, p.plainAt, p.hashes)]))) as { pieces: unknown[] }).pieces[2]).toBeDefined();
    const bad = [
      Buffer.concat([u32(1), record(5, p.plainAt, p.hashes)]), // no chunk 5
      Buffer.concat([u32(2), record(2, p.plainAt, p.hashes), record(1, p.plainAt, p.hashes)]), // out of order
      Buffer.concat([u32(1), record(2, p.plainAt, p.hashes.subarray(16))]), // a hash short
      Buffer.concat([u32(1), record(2, p.plainAt, p.hashes), Buffer.of(0)]), // trailing byte
      Buffer.concat([u32(2), record(2, p.plainAt, p.hashes)]), // a record missing
      Buffer.concat([u32(1), record(2, 200, p.hashes)]), // plainAt out of range
    ];
    for (const table of bad) expect(() => decodeEntry(entryWith(table))).toThrow(/piece/);
    if (key) expect(() => decodeEntry(frameEntry(5, 5 << 20, Buffer.concat([Buffer.of(1), u32(map.length), map, key.subarray(0, 20)])))).toThrow(/piece/);
  });
});

describe('which tags a file writes (pieceKeyFor)', () => {
  it('a file without piece tags gets a new key of its own; one with SHA-256 hashes keeps writing those', () => {
    const a = pieceKeyFor(EMPTY_ENTRY)!;
    expect(a.length).toBe(PIECE_KEY_SIZE);
    expect(pieceKeyFor(EMPTY_ENTRY)!.equals(a)).toBe(false);
    const c = rawChunk(1 << 20, 12);
    const map: DataMap = { chunks: [0, 1, 2].map((index) => ({ index, dstHash: c.name, srcHash: c.own, srcSize: 1 << 20 })) };
    expect(pieceKeyFor({ kind: 'map', size: 3 << 20, dataMap: map, pieces: [undefined, c.pieces] })).toBeUndefined();
    expect(pieceKeyFor({ kind: 'map', size: 3 << 20, dataMap: map })!.length).toBe(PIECE_KEY_SIZE);
  });

  it('an entry keeps one kind of tags: those of its first chunk with any', () => {
    const key = newPieceKey();
    const keyed = rawChunk(1 << 20, 13, key);
    const other = rawChunk(1 << 20, 14, newPieceKey());
    const unkeyed = rawChunk(1 << 20, 15);
    const map: DataMap = { chunks: [keyed, other, unkeyed].map((c, index) => ({ index, dstHash: c.name, srcHash: c.own, srcSize: 1 << 20 })) };
    const back = decodeEntry(encodeEntry({ kind: 'map', size: 3 << 20, dataMap: map, pieces: [keyed.pieces, other.pieces, unkeyed.pieces] })) as MetaEntry & { kind: 'map' };
    expect(back.pieces![0]!.key!.equals(key)).toBe(true);
    expect(back.pieces![1]).toBeUndefined();
    expect(back.pieces![2]).toBeUndefined();
  });
});
