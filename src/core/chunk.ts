/**
 * One chunk's transformation: plaintext -> brotli -> AES-128-CBC-PKCS7 -> XOR pad, and back.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { compress, decompress, type Profile } from './compression.js';
import { ChunkDecryptFailed, ChunkHashMismatch } from './errors.js';
import { sha3 } from './hash.js';
import type { ChunkKeys } from './keys.js';

/** XOR `data` in place with `pad` repeated (pad is 64 bytes). */
export function xorPad(data: Buffer, pad: Buffer): void {
  const n = data.length;
  let done = 0;
  if (data.byteOffset % 4 === 0 && pad.length === 64) {
    // 16 words at a time with the pad's words in locals: several times faster than a byte loop with modulo.
    const w = new Uint32Array(data.buffer, data.byteOffset, n >>> 2);
    const p = new Uint32Array(16);
    new Uint8Array(p.buffer).set(pad);
    const [p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15] = p as unknown as number[];
    const full = w.length - (w.length % 16);
    for (let i = 0; i < full; i += 16) {
      w[i] ^= p0!; w[i + 1] ^= p1!; w[i + 2] ^= p2!; w[i + 3] ^= p3!;
      w[i + 4] ^= p4!; w[i + 5] ^= p5!; w[i + 6] ^= p6!; w[i + 7] ^= p7!;
      w[i + 8] ^= p8!; w[i + 9] ^= p9!; w[i + 10] ^= p10!; w[i + 11] ^= p11!;
      w[i + 12] ^= p12!; w[i + 13] ^= p13!; w[i + 14] ^= p14!; w[i + 15] ^= p15!;
    }
    done = full * 4;
  }
  for (let i = done; i < n; i++) data[i]! ^= pad[i % pad.length]!;
}

/** Encrypt one chunk's plaintext; the result is what is stored, named by its SHA3-256. */
export function encryptChunk(plain: Uint8Array, keys: ChunkKeys, profile: Profile): Buffer {
  const packed = compress(plain, profile);
  const cipher = createCipheriv('aes-128-cbc', keys.key, keys.iv);
  // One output buffer, aligned for the word-wise XOR.
  const out = Buffer.allocUnsafeSlow(packed.length + 16 - (packed.length % 16));
  let n = cipher.update(packed).copy(out, 0);
  n += cipher.final().copy(out, n);
  const stored = out.subarray(0, n);
  xorPad(stored, keys.pad);
  return stored;
}

/** Check that stored bytes hash to the chunk's name. */
export function verifyStored(stored: Uint8Array, dst: Uint8Array): void {
  if (!sha3(stored).equals(dst)) throw new ChunkHashMismatch(Buffer.from(dst).toString('hex'), 'dst');
}

/**
 * Decrypt stored chunk bytes. Verifies the stored bytes against `dst` first and the plaintext against
 * the keys' own src hash after (the reference verifies neither; we never return wrong bytes).
 * `verifySrc: false` skips the second hash, for callers whose DataMap is itself authenticated (the mount's
 * metadata entries carry a checksum): verified bytes decrypted with authentic keys can only give the plaintext.
 */
export function decryptChunk(stored: Uint8Array, keys: ChunkKeys, dst: Uint8Array, expectedSize: number, verifySrc = true): Buffer {
  verifyStored(stored, dst);
  const name = Buffer.from(dst).toString('hex');
  const masked = Buffer.allocUnsafeSlow(stored.length);
  masked.set(stored);
  xorPad(masked, keys.pad);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-128-cbc', keys.key, keys.iv);
    const packed = Buffer.concat([decipher.update(masked), decipher.final()]);
    plain = decompress(packed, expectedSize);
  } catch (err) {
    throw new ChunkDecryptFailed(name, (err as Error).message);
  }
  const src = keys.pad.subarray(0, 32);
  if (plain.length !== expectedSize || (verifySrc && !sha3(plain).equals(src))) throw new ChunkHashMismatch(name, 'src');
  return plain;
}
