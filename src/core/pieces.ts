/**
 * Piece hashes: reading a few KiB of a stored chunk without reading and hashing the whole MiB.
 *
 * A chunk's name verifies it only whole (SHA3-256 of every stored byte), so a cold 4 KiB read used to cost a
 * 1 MiB read and a SHA3 pass over it. For a chunk stored raw (its brotli stream is one uncompressed
 * meta-block, so plaintext byte p is stream byte plainAt + p), the writer also tags the stored bytes in
 * pieces of PIECE_SIZE, and the file's metadata entry keeps those tags beside the DataMap: as trusted as the
 * DataMap itself. A reader then reads only the pieces covering its range, checks them, and decrypts only
 * the AES blocks it needs (CBC decrypts any block from the one before it; the pad XOR depends on the stored
 * offset only). The DataMap, the chunk bytes and their names stay the reference algorithm's.
 *
 * Piece k covers stored bytes [k * PIECE_SIZE, (k + 1) * PIECE_SIZE), and its tag also covers the 16 bytes
 * before it (the block a decryption of its first block needs), PIECE_HASH_SIZE bytes each, of one of two kinds:
 *  - keyed (entries of kind 5, written since the eighteenth session): a GMAC (AES-256-GCM over no plaintext,
 *    the piece as its additional data) under a key of the chunk, HMAC-SHA256(file's piece key, name | own |
 *    n1 | n2 | u32 BE plaintext size: what a reader decrypts it as, TagSubject), with the piece index as its
 *    nonce. Binding the keys' hashes and the size lets a reader that checked every piece skip the hash of the
 *    plaintext: the bytes are the writer's and so are the keys it decrypts them with. The file's piece key is random and lives in its entry only, so a tag
 *    can be made only by whoever can read that entry (a store cannot, nor someone who merely knows the
 *    content). GMAC costs a sixth of SHA-256 here (0.08 against 0.53 ms per MiB): the write's largest cost
 *    after its two SHA3 passes (native-notes/benchmarking.md, eighteenth session). Each chunk has its own key,
 *    so no key sees a nonce twice over different bytes (the name fixes the bytes).
 *  - unkeyed (kind 4, entries written before): SHA-256, truncated (a second preimage still costs 2^128).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ChunkRef } from './chunk-ref.js';
import type { ChunkKeys } from './keys.js';
import { xorInto } from './chunk.js';

export const PIECE_SIZE = 128 * 1024;
export const PIECE_HASH_SIZE = 16;
const BLOCK = 16;

/** Bytes of a file's piece key. */
export const PIECE_KEY_SIZE = 32;

/** Where a raw chunk's plaintext sits in its stored bytes, and the tag of each of its pieces. */
export interface PieceHashes {
  /** Offset of the plaintext in the brotli stream (the uncompressed meta-block's header length). */
  plainAt: number;
  /** PIECE_HASH_SIZE bytes per piece, in order. */
  hashes: Buffer;
  /** The file's piece key when the tags are keyed; none: SHA-256 (see the file comment). */
  key?: Buffer;
}

/** A new file's piece key. */
export function newPieceKey(): Buffer {
  return randomBytes(PIECE_KEY_SIZE);
}

/** Stored length of a raw chunk: the stream (header, plaintext, one closing byte) padded by PKCS#7. */
export function rawStoredLength(plainAt: number, size: number): number {
  const stream = plainAt + size + 1;
  return stream - (stream % BLOCK) + BLOCK;
}

export function pieceCount(storedLength: number): number {
  return Math.ceil(storedLength / PIECE_SIZE);
}

/** Whether piece hashes are worth keeping for a chunk of this stored length (one piece is the whole chunk). */
export function worthPieces(storedLength: number): boolean {
  return storedLength > PIECE_SIZE;
}

/** How a chunk's pieces are tagged: with the chunk's own GMAC key, or (none) by SHA-256. */
type ChunkTagKey = Buffer | undefined;

/** What keyed tags vouch for besides the stored bytes: the chunk's name, its keys' hashes and its plaintext size. */
export type TagSubject = { [K in 'dst' | 'own' | 'n1' | 'n2']: Uint8Array } & Pick<ChunkRef, 'size'>;

function chunkTagKey(fileKey: Buffer | undefined, chunk: TagSubject): ChunkTagKey {
  if (!fileKey) return undefined;
  const size = Buffer.alloc(4);
  size.writeUInt32BE(chunk.size);
  return createHmac('sha256', fileKey).update(chunk.dst).update(chunk.own).update(chunk.n1).update(chunk.n2).update(size).digest();
}

/** Piece k of a whole chunk's stored bytes, with the 16 bytes before it (what its tag covers). */
function pieceBytes(stored: Uint8Array, k: number): Uint8Array {
  return stored.subarray(Math.max(0, k * PIECE_SIZE - BLOCK), Math.min(stored.length, (k + 1) * PIECE_SIZE));
}

/** The tag of piece k, whose bytes (with the 16 before it) are `bytes`. */
function pieceTag(bytes: Uint8Array, k: number, key: ChunkTagKey): Buffer {
  if (!key) return createHash('sha256').update(bytes).digest().subarray(0, PIECE_HASH_SIZE);
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(k, 8);
  const gmac = createCipheriv('aes-256-gcm', key, nonce);
  gmac.setAAD(bytes);
  gmac.final();
  return gmac.getAuthTag();
}

/**
 * The piece tags of a raw chunk's stored bytes: keyed by the file's piece key `fileKey` for `chunk` (its name
 * the SHA3-256 of `stored`, its keys' hashes and size those it was encrypted with), or without a key SHA-256
 * (entries of kind 4).
 */
export function hashPieces(stored: Uint8Array, plainAt: number, fileKey?: Buffer, chunk?: TagSubject): PieceHashes {
  if (fileKey && !chunk) throw new Error('keyed piece tags need the chunk they are for');
  const key = chunkTagKey(fileKey, chunk!);
  const count = pieceCount(stored.length);
  const hashes = Buffer.allocUnsafeSlow(count * PIECE_HASH_SIZE); // its own memory: it crosses to other threads
  for (let k = 0; k < count; k++) pieceTag(pieceBytes(stored, k), k, key).copy(hashes, k * PIECE_HASH_SIZE);
  return fileKey ? { plainAt, hashes, key: fileKey } : { plainAt, hashes };
}

/** The stored bytes to read for plaintext [from, to) of a raw chunk of `size` bytes: [start, end). */
export function pieceSpan(pieces: PieceHashes, size: number, from: number, to: number): { start: number; end: number } {
  const storedLength = rawStoredLength(pieces.plainAt, size);
  const first = Math.floor((pieces.plainAt + from) / PIECE_SIZE);
  const last = Math.floor((pieces.plainAt + to - 1) / PIECE_SIZE);
  return { start: Math.max(0, first * PIECE_SIZE - BLOCK), end: Math.min(storedLength, (last + 1) * PIECE_SIZE) };
}

/**
 * Check a whole raw chunk's stored bytes against its keyed tags (a reader then needs no SHA3 pass over its
 * plaintext: the tags, made by the writer under a key only its entry holds, vouch for every stored byte, and
 * the entry for the keys): throws PieceMismatch at the first piece that differs, or when the length does not
 * fit the tags. Unkeyed (SHA-256) hashes are not worth it: they cost as much as the SHA3 pass they would save.
 */
export function checkAllPieces(stored: Uint8Array, pieces: PieceHashes, chunk: TagSubject): void {
  if (!pieces.key) throw new Error('checkAllPieces: only keyed tags');
  const covered = rawStoredLength(pieces.plainAt, chunk.size);
  if (stored.length !== covered || pieces.hashes.length !== pieceCount(stored.length) * PIECE_HASH_SIZE) {
    throw new PieceMismatch(-1, `the chunk holds ${stored.length} bytes, its tags cover ${covered}`);
  }
  const key = chunkTagKey(pieces.key, chunk);
  const hashes = pieces.hashes;
  for (let k = 0; k < pieceCount(stored.length); k++) {
    const got = pieceTag(pieceBytes(stored, k), k, key);
    if (!timingSafeEqual(got, hashes.subarray(k * PIECE_HASH_SIZE, (k + 1) * PIECE_HASH_SIZE))) throw new PieceMismatch(k);
  }
}

/** A piece that does not match its hash: the stored chunk is damaged there. */
export class PieceMismatch extends Error {
  constructor(
    readonly piece: number,
    why = `piece ${piece} (bytes ${piece * PIECE_SIZE}-${(piece + 1) * PIECE_SIZE - 1}) does not match its hash in the entry`,
  ) {
    super(why);
  }
}

/**
 * Plaintext [from, to) of raw chunk `chunk` from `bytes`, the stored bytes pieceSpan named (read from
 * `start`). Every piece they cover is checked against its tag first: a mismatch throws PieceMismatch, never bytes.
 */
export function openPieces(bytes: Uint8Array, start: number, pieces: PieceHashes, chunk: TagSubject, keys: ChunkKeys, from: number, to: number): Buffer {
  const { size } = chunk;
  const span = pieceSpan(pieces, size, from, to);
  if (start !== span.start || bytes.length !== span.end - span.start) throw new Error(`piece read of ${bytes.length} bytes at ${start}, expected ${span.end - span.start} at ${span.start}`);
  if (pieces.hashes.length !== pieceCount(rawStoredLength(pieces.plainAt, size)) * PIECE_HASH_SIZE) throw new Error('piece hashes do not fit the chunk');
  const first = span.start === 0 ? 0 : (span.start + BLOCK) / PIECE_SIZE;
  const last = Math.ceil(span.end / PIECE_SIZE) - 1;
  const key = chunkTagKey(pieces.key, chunk);
  for (let k = first; k <= last; k++) {
    const lo = Math.max(0, k * PIECE_SIZE - BLOCK) - start;
    const hi = Math.min(span.end, (k + 1) * PIECE_SIZE) - start;
    const got = pieceTag(bytes.subarray(lo, hi), k, key);
    // In constant time: a keyed tag is a MAC.
    if (!timingSafeEqual(got, pieces.hashes.subarray(k * PIECE_HASH_SIZE, (k + 1) * PIECE_HASH_SIZE))) throw new PieceMismatch(k);
  }
  // Only the AES blocks holding [from, to), each decrypted from the (unmasked) block before it.
  const blockStart = Math.floor((pieces.plainAt + from) / BLOCK) * BLOCK;
  const blockEnd = Math.ceil((pieces.plainAt + to) / BLOCK) * BLOCK;
  const iv = blockStart === 0 ? keys.iv : unmask(bytes.subarray(blockStart - BLOCK - start, blockStart - start), blockStart - BLOCK, keys.pad);
  const masked = unmask(bytes.subarray(blockStart - start, blockEnd - start), blockStart, keys.pad);
  const plain = createDecipheriv('aes-128-cbc', keys.key, iv).setAutoPadding(false).update(masked);
  const skip = pieces.plainAt + from - blockStart;
  return plain.subarray(skip, skip + (to - from));
}

/** Stored bytes at stored offset `at` with the pad's XOR undone (the pad repeats every 64 bytes of the chunk). */
function unmask(bytes: Uint8Array, at: number, pad: Uint8Array): Buffer {
  const phase = at % pad.length;
  const rotated = Buffer.concat([pad.subarray(phase), pad.subarray(0, phase)]);
  const out = Buffer.allocUnsafe(bytes.length);
  xorInto(out, 0, bytes, rotated);
  return out;
}
