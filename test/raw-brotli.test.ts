/**
 * Stored brotli streams: what storeAsBrotli writes decodes with a real brotli decoder, and the header-only
 * reader (readStoredBrotli, the fast path of decryption) never disagrees with one: on encoder-made streams,
 * compressed streams and damaged streams it either declines or gives exactly the decoder's bytes.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompress } from '../src/core/compression.js';
import { readStoredBrotli, storeAsBrotli } from '../src/core/raw-brotli.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';

const decoded = (stream: Uint8Array): Buffer | 'error' => {
  try {
    return brotliDecompressSync(stream, { maxOutputLength: 1 << 25 });
  } catch {
    return 'error';
  }
};

describe('stored brotli streams', () => {
  it.each([1, 1000, 65_536, 1 << 20, (1 << 24) + 5])('%i bytes: written by storeAsBrotli, read back in place', (size) => {
    const data = seededBytes(size, size);
    const stream = Buffer.concat(storeAsBrotli(data).parts);
    expect((decoded(stream) as Buffer).equals(data)).toBe(true);
    const read = readStoredBrotli(stream)!;
    expect(Buffer.from(read).equals(data)).toBe(true);
    if (size < 1 << 24) expect(read.buffer).toBe(stream.buffer); // one meta-block: a view, no copy
  });

  it('reads what a brotli encoder stores for incompressible data, declines what it compresses', () => {
    for (const quality of [0, 5, 11]) {
      const params = { [constants.BROTLI_PARAM_QUALITY]: quality };
      const random = seededBytes(300_000, quality);
      const stream = brotliCompressSync(random, { params });
      const read = readStoredBrotli(stream);
      if (read) expect(Buffer.from(read).equals(random)).toBe(true);
      expect(readStoredBrotli(brotliCompressSync(textLike(300_000, quality), { params }))).toBeUndefined();
    }
  });

  it('never disagrees with a real decoder on damaged streams', () => {
    const rand = prng(9);
    const original = Buffer.concat(storeAsBrotli(seededBytes(5000, 1)).parts);
    let read = 0;
    for (let round = 0; round < 3000; round++) {
      const stream = Buffer.from(original);
      const kind = round % 3;
      if (kind === 0) stream[Math.floor(rand() * 8)] ^= 1 << Math.floor(rand() * 8); // header bits
      if (kind === 1) stream[stream.length - 1 - Math.floor(rand() * 2)] ^= 1 << Math.floor(rand() * 8); // trailer bits
      const damaged = kind === 2 ? stream.subarray(0, Math.floor(rand() * stream.length)) : stream;
      const mine = readStoredBrotli(damaged);
      if (mine === undefined) continue;
      read++;
      const theirs = decoded(damaged);
      expect(theirs !== 'error' && theirs.equals(mine), `round ${round}: the decoder gives ${theirs === 'error' ? 'an error' : 'other bytes'}`).toBe(true);
    }
    expect(read).toBeGreaterThan(0); // some damage (in the stored bytes' length or padding) still reads
  });

  it('decompress refuses more than the expected size on the fast path too', () => {
    const stream = Buffer.concat(storeAsBrotli(seededBytes(2000, 3)).parts);
    expect(() => decompress(stream, 1999)).toThrow();
    expect(decompress(stream, 2000)).toHaveLength(2000);
  });
});
