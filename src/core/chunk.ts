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
  if (data.byteOffset % 4 === 0 && pad.length % 4 === 0) {
    // Word at a time: four times fewer steps on the hot path.
    const words = new Uint32Array(data.buffer, data.byteOffset, n >>> 2);
    const padWords = new Uint32Array(pad.buffer.slice(pad.byteOffset, pad.byteOffset + pad.length));
    const pw = padWords.length;
    for (let i = 0; i < words.length; i++) words[i]! ^= padWords[i % pw]!;
    for (let i = words.length * 4; i < n; i++) data[i]! ^= pad[i % pad.length]!;
    return;
  }
  for (let i = 0; i < n; i++) data[i]! ^= pad[i % pad.length]!;
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
 */
export function decryptChunk(stored: Uint8Array, keys: ChunkKeys, dst: Uint8Array, expectedSize: number): Buffer {
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
  if (plain.length !== expectedSize || !sha3(plain).equals(src)) throw new ChunkHashMismatch(name, 'src');
  return plain;
}
