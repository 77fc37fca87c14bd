/**
 * One chunk's transformation: plaintext -> brotli -> AES-128-CBC-PKCS7 -> XOR pad, and back.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { compressParts, decompress, decompressInto, type Profile } from './compression.js';
import { copyBytes } from './copy-bytes.js';
import { readStoredBrotli } from './raw-brotli.js';
import { ChunkDecryptFailed, ChunkHashMismatch } from './errors.js';
import { sha3 } from './hash.js';
import type { ChunkKeys } from './keys.js';
import { native } from './native.js';

/** Below this many bytes the call into the addon costs more than the JavaScript loop. */
const NATIVE_XOR_MIN = 4096;

/**
 * target[at + i] = source[i] ^ pad[(at + i) % 64]: XOR with the pad repeated over the whole stored chunk,
 * fused with the copy. `at` places `source` in the chunk, so the pad's phase follows it.
 */
export function xorInto(target: Uint8Array, at: number, source: Uint8Array, pad: Uint8Array): void {
  if (native && source.length >= NATIVE_XOR_MIN && pad.length === 64) native.xorPad(target, at, source, pad);
  else xorIntoPortable(target, at, source, pad);
}

/** xorInto in JavaScript (without the addon, and for short pieces). */
export function xorIntoPortable(target: Uint8Array, at: number, source: Uint8Array, pad: Uint8Array): void {
  const n = source.length;
  let done = 0;
  if (pad.length === 64 && at % 4 === 0 && (target.byteOffset + at) % 4 === 0 && source.byteOffset % 4 === 0) {
    // 16 words at a time with the pad's words (rotated to the phase) in locals: several times faster than
    // a byte loop with a modulo.
    const t = new Uint32Array(target.buffer, target.byteOffset + at, n >>> 2);
    const s = new Uint32Array(source.buffer, source.byteOffset, n >>> 2);
    const words = new Uint32Array(pad.buffer.slice(pad.byteOffset, pad.byteOffset + 64));
    const phase = (at >>> 2) & 15;
    const p = Array.from({ length: 16 }, (_, k) => words[(phase + k) & 15]!);
    const [p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15] = p as [number, ...number[]];
    const full = s.length - (s.length % 16);
    for (let i = 0; i < full; i += 16) {
      t[i] = s[i]! ^ p0; t[i + 1] = s[i + 1]! ^ p1!; t[i + 2] = s[i + 2]! ^ p2!; t[i + 3] = s[i + 3]! ^ p3!;
      t[i + 4] = s[i + 4]! ^ p4!; t[i + 5] = s[i + 5]! ^ p5!; t[i + 6] = s[i + 6]! ^ p6!; t[i + 7] = s[i + 7]! ^ p7!;
      t[i + 8] = s[i + 8]! ^ p8!; t[i + 9] = s[i + 9]! ^ p9!; t[i + 10] = s[i + 10]! ^ p10!; t[i + 11] = s[i + 11]! ^ p11!;
      t[i + 12] = s[i + 12]! ^ p12!; t[i + 13] = s[i + 13]! ^ p13!; t[i + 14] = s[i + 14]! ^ p14!; t[i + 15] = s[i + 15]! ^ p15!;
    }
    done = full * 4;
  }
  for (let i = done; i < n; i++) target[at + i] = source[i]! ^ pad[(at + i) % pad.length]!;
}

/** A chunk's stored bytes, and where its plaintext sits in its brotli stream when it was stored raw (core/pieces.ts). */
export interface EncryptedBytes {
  content: Buffer;
  plainAt?: number;
}

/** Encrypt one chunk's plaintext; the result is what is stored, named by its SHA3-256. */
export function encryptChunk(plain: Uint8Array, keys: ChunkKeys, profile: Profile): Buffer {
  return encryptChunkBytes(plain, keys, profile).content;
}

/** encryptChunk, saying where the plaintext sits when it was stored raw. */
export function encryptChunkBytes(plain: Uint8Array, keys: ChunkKeys, profile: Profile): EncryptedBytes {
  const { parts, plainAt } = compressParts(plain, profile);
  const packedLength = parts.reduce((n, p) => n + p.length, 0);
  const cipher = createCipheriv('aes-128-cbc', keys.key, keys.iv);
  // One output buffer (aligned for the word-wise XOR); each cipher output is XORed straight into it.
  const out = Buffer.allocUnsafeSlow(packedLength + 16 - (packedLength % 16));
  let n = 0;
  for (const part of parts) {
    const enc = cipher.update(part);
    xorInto(out, n, enc, keys.pad);
    n += enc.length;
  }
  const last = cipher.final();
  xorInto(out, n, last, keys.pad);
  return { content: out.subarray(0, n + last.length), plainAt };
}

/**
 * encryptChunkBytes for several chunks. CBC encryption is sequential within a chunk, so one chunk cannot be
 * encrypted faster than one AES latency per block; the addon encrypts four side by side.
 * Each chunk is packed into its output buffer, padded (PKCS#7), encrypted there and XORed there.
 */
export function encryptChunks(plains: Uint8Array[], keys: ChunkKeys[], profile: Profile): EncryptedBytes[] {
  const aes = native?.aesCbcEncryptMany;
  if (!aes || plains.length < 2) return plains.map((plain, i) => encryptChunkBytes(plain, keys[i]!, profile));
  const outs = plains.map((plain) => {
    const { parts, plainAt } = compressParts(plain, profile);
    const packed = parts.reduce((n, p) => n + p.length, 0);
    const padding = 16 - (packed % 16);
    const content = Buffer.allocUnsafeSlow(packed + padding);
    let at = 0;
    for (const part of parts) {
      // A part may be a view of shared memory (the mount's written blocks), which V8 copies slowly: copyBytes.
      at += copyBytes(Buffer.from(part.buffer, part.byteOffset, part.byteLength), content, at, 0, part.length);
    }
    content.fill(padding, packed);
    return { content, plainAt };
  });
  aes(
    outs.map((o) => o.content),
    keys.map((k) => k.key),
    keys.map((k) => k.iv),
  );
  outs.forEach((out, i) => xorInto(out.content, 0, out.content, keys[i]!.pad));
  return outs;
}

/** Check that stored bytes hash to the chunk's name. */
export function verifyStored(stored: Uint8Array, dst: Uint8Array): void {
  if (!sha3(stored).equals(dst)) throw new ChunkHashMismatch(Buffer.from(dst).toString('hex'), 'dst');
}

/** Which hashes decryption checks: both (the default), or only the plaintext's. */
export type ChunkChecks = 'both' | 'src';

/** Length of the PKCS#7 padding at the end of decrypted bytes; throws when it is not valid padding. */
function pkcs7PadLength(padded: Uint8Array): number {
  const n = padded[padded.length - 1]!;
  if (n < 1 || n > 16) throw new Error('bad decrypt (padding)');
  for (let i = padded.length - n; i < padded.length; i++) if (padded[i] !== n) throw new Error('bad decrypt (padding)');
  return n;
}

/**
 * Undo the XOR pad and AES of stored chunk bytes where they are (`buf` is overwritten): the brotli stream, a
 * view of `buf` without the PKCS#7 padding. The addon unmasks and decrypts in place in one pass; OpenSSL's
 * output is copied back.
 */
function unmaskInPlace(buf: Buffer, keys: ChunkKeys): Buffer {
  if (buf.length === 0 || buf.length % 16 !== 0) throw new Error('not a whole number of AES blocks');
  if (native?.aesCbcDecrypt) native.aesCbcDecrypt(buf, keys.key, keys.iv, keys.pad);
  else {
    xorInto(buf, 0, buf, keys.pad);
    createDecipheriv('aes-128-cbc', keys.key, keys.iv).setAutoPadding(false).update(buf).copy(buf);
  }
  return buf.subarray(0, buf.length - pkcs7PadLength(buf));
}

/**
 * Undo the XOR pad, AES and compression of stored chunk bytes, without any hash check: callers check the
 * result (`decryptChunk` one chunk at a time, the worker jobs several chunks' hashes at once).
 */
export function openChunk(stored: Uint8Array, keys: ChunkKeys, dst: Uint8Array, expectedSize: number): Buffer {
  try {
    return decompress(unmaskInPlace(Buffer.from(stored), keys), expectedSize);
  } catch (err) {
    throw new ChunkDecryptFailed(Buffer.from(dst).toString('hex'), (err as Error).message);
  }
}

/**
 * openChunk in `buf`, which holds the stored bytes and has room for `expectedSize` bytes: the plaintext is a
 * view of `buf` (a chunk stored raw is read where it was decrypted; a compressed one is decoded into `buf`
 * from a copy of its stream in `scratch`, which must be as long as the stored bytes). No allocation per chunk
 * with the addon: the mount's read path (lib/slab.ts).
 */
export function openChunkInPlace(buf: Buffer, storedLength: number, keys: ChunkKeys, dst: Uint8Array, expectedSize: number, scratch: Buffer): Buffer {
  try {
    const stream = unmaskInPlace(buf.subarray(0, storedLength), keys);
    const raw = readStoredBrotli(stream);
    if (raw && raw.length <= expectedSize) {
      // One meta-block (what sefs writes): a view; several: joined at the front of `buf`.
      if (raw.buffer === buf.buffer) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      buf.set(raw);
      return buf.subarray(0, raw.length);
    }
    stream.copy(scratch);
    return decompressInto(scratch.subarray(0, stream.length), buf.subarray(0, expectedSize));
  } catch (err) {
    throw new ChunkDecryptFailed(Buffer.from(dst).toString('hex'), (err as Error).message);
  }
}

/** Throw unless `plain` (whose SHA3-256 is `srcOfPlain`) is the plaintext the keys were derived from. */
export function checkPlain(plain: Uint8Array, srcOfPlain: Uint8Array, keys: ChunkKeys, dst: Uint8Array, expectedSize: number): void {
  const src = keys.pad.subarray(0, 32);
  if (plain.length !== expectedSize || !Buffer.from(srcOfPlain).equals(src)) throw new ChunkHashMismatch(Buffer.from(dst).toString('hex'), 'src');
}

/**
 * Decrypt stored chunk bytes. Verifies the stored bytes against `dst` first and the plaintext against
 * the keys' own src hash after (the reference verifies neither; we never return wrong bytes).
 * `checks: 'src'` skips the first hash: the plaintext check alone already rejects damaged or swapped stored
 * bytes and wrong keys (the mount's read path, where each SHA3 pass costs a third of the throughput).
 */
export function decryptChunk(stored: Uint8Array, keys: ChunkKeys, dst: Uint8Array, expectedSize: number, checks: ChunkChecks = 'both'): Buffer {
  if (checks === 'both') verifyStored(stored, dst);
  const plain = openChunk(stored, keys, dst, expectedSize);
  checkPlain(plain, sha3(plain), keys, dst, expectedSize);
  return plain;
}
