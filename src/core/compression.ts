/**
 * Compression profiles. Every profile writes a standard brotli stream, so decryption never needs
 * to know which one made a chunk.
 *  - compat: brotli quality 6 exactly as the reference crate's Rust encoder writes it (brotli-wasm
 *    is that encoder compiled to WASM), so chunk names equal the reference's.
 *  - selective (the filesystem's default since the seventeenth session): a chunk is compressed (native
 *    brotli, quality 0) only when that shrinks it to a third or less; every other chunk is stored raw
 *    (uncompressed brotli meta-blocks). Why: brotli decodes about 8 ms per MiB of compressed stream on this
 *    class of CPU, so a chunk of ordinary text (about half its size compressed) reads 2.5x slower than raw,
 *    while one compressed to a third reads at most about twice as slow as raw (native-notes/benchmarking.md,
 *    seventeenth session).
 *  - fast (the default before): native brotli at quality 0 wherever it saves anything; only chunks that look
 *    incompressible are stored raw. The smallest vault short of compat's slow writes.
 * A profile's rule never changes once vaults use it: its chunk names are what dedup inside a vault relies on
 * (test/fixtures/own pins them).
 */
import { createRequire } from 'node:module';
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from 'node:zlib';
import { native } from './native.js';
import { type BrotliParts, readStoredBrotli, storeAsBrotli } from './raw-brotli.js';
import { MAX_CHUNK_SIZE } from './constants.js';

export type Profile = 'compat' | 'fast' | 'selective';
export const PROFILES: readonly Profile[] = ['compat', 'fast', 'selective'];

export function isProfile(value: string): value is Profile {
  return (PROFILES as readonly string[]).includes(value);
}

/** The reference crate's COMPRESSION_QUALITY. */
const COMPAT_QUALITY = 6;
/** fast and selective: quality 0 compresses text-like data at about 190 MB/s per core to 48% (quality 1: 150 MB/s, 41%). */
const FAST_QUALITY = 0;
/** fast: a sample whose byte entropy is at least this (bits per byte) is treated as incompressible. */
const INCOMPRESSIBLE_ENTROPY = 7.5;
const SAMPLE_BYTES = 16 * 1024;
/** selective: the largest share of its size a chunk may compress to and still be stored compressed. */
const SELECTIVE_KEEP_RATIO = 1 / 3;
/**
 * selective: a chunk whose spread sample (16 slices of 1 KiB side by side) compresses to more than this share
 * will not reach SELECTIVE_KEEP_RATIO: the sample compresses 5 to 17 points worse than its 1 MiB chunk (text 53-54%
 * against 48%, code 33-41% against 18-30%, JSON 40-46% against 29%).
 */
const SELECTIVE_SAMPLE_RATIO = 0.5;

type BrotliWasm = { compress(buf: Uint8Array, options?: { quality?: number }): Uint8Array };
let brotliWasm: BrotliWasm | undefined;
function wasm(): BrotliWasm {
  // The package's ESM entry is the browser build; its CommonJS entry loads the WASM synchronously in Node.
  brotliWasm ??= createRequire(import.meta.url)('brotli-wasm') as BrotliWasm;
  return brotliWasm;
}

/** Evenly spaced slices of `data`, about SAMPLE_BYTES in all ([start, end) pairs; all of it when shorter). */
function sampleSlices(data: Uint8Array): Array<[number, number]> {
  if (data.length <= SAMPLE_BYTES) return [[0, data.length]];
  const slices = 16;
  const sliceLen = SAMPLE_BYTES / slices;
  const stride = Math.floor((data.length - sliceLen) / (slices - 1));
  return Array.from({ length: slices }, (_, s) => [s * stride, s * stride + sliceLen]);
}

/** Scratch of this thread for the sample and its brotli stream: a chunk's sample leaves no garbage behind. */
let sampleScratch: { sample: Buffer; packed: Buffer } | undefined;

/**
 * The length of the brotli stream of the sample slices of `data` side by side: what selective judges a chunk
 * by before compressing it (only for `data` longer than SAMPLE_BYTES).
 */
function spreadSampleCompressedLength(data: Uint8Array): number {
  sampleScratch ??= { sample: Buffer.allocUnsafe(SAMPLE_BYTES), packed: Buffer.allocUnsafe(maxBrotliSize(SAMPLE_BYTES)) };
  const { sample, packed } = sampleScratch;
  let at = 0;
  for (const [start, end] of sampleSlices(data)) {
    sample.set(data.subarray(start, end), at);
    at += end - start;
  }
  return brotliFast(sample.subarray(0, at), packed).length;
}

/**
 * Shannon entropy (bits per byte) of evenly spaced slices of `data`, about SAMPLE_BYTES in all.
 * Cheap enough to run on every chunk; random or already compressed data scores close to 8.
 */
export function sampledEntropy(data: Uint8Array): number {
  const counts = new Uint32Array(256);
  let total = 0;
  for (const [start, end] of sampleSlices(data)) {
    for (let i = start; i < end; i++) counts[data[i]!]!++;
    total += end - start;
  }
  let h = 0;
  for (let b = 0; b < 256; b++) {
    const c = counts[b]!;
    if (c > 0) {
      const p = c / total;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/** BrotliEncoderMaxCompressedSize: the most a brotli stream of `n` bytes can take (raw meta-blocks and framing). */
export function maxBrotliSize(n: number): number {
  return n === 0 ? 2 : n + 6 + 4 * (n >> 14);
}

/** Quality-0 brotli of `data`: a view of `into` when given (at least maxBrotliSize(data.length) bytes) and the addon is there. */
function brotliFast(data: Uint8Array, into?: Buffer): Buffer {
  // The addon's one-shot encoder writes the same stream as node:zlib (test/native.test.ts) without a stream
  // object per call, which costs more than compressing a small file's chunk. Not for an empty input (the two
  // write different, equally valid, one-byte streams: a chunk is never empty, but names must not move).
  if (native?.brotliEncodeInto && data.length > 0) {
    const out = into ?? Buffer.allocUnsafe(maxBrotliSize(data.length));
    const n = native.brotliEncodeInto(data, out, FAST_QUALITY);
    if (n > 0) return out.subarray(0, n);
  }
  return brotliCompressSync(data, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: FAST_QUALITY,
      [zlib.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
}

/**
 * Incompressible: the byte histogram of a sample is flat AND a contiguous window of it does not compress.
 * The histogram alone is fooled by evenly spread but structured data (a counter, a repeating pattern);
 * compressing one 16 KiB window costs about 1% of compressing the chunk.
 */
function looksIncompressible(data: Uint8Array): boolean {
  if (data.length < SAMPLE_BYTES || sampledEntropy(data) < INCOMPRESSIBLE_ENTROPY) return false;
  return brotliFast(middleWindow(data)).length > SAMPLE_BYTES * 0.95;
}

/** The middle SAMPLE_BYTES of `data` (all of it when shorter). */
function middleWindow(data: Uint8Array): Uint8Array {
  if (data.length <= SAMPLE_BYTES) return data;
  const start = Math.floor((data.length - SAMPLE_BYTES) / 2);
  return data.subarray(start, start + SAMPLE_BYTES);
}

function compressSelective(data: Uint8Array): BrotliParts {
  // A sample first, so that a chunk that will not compress well enough costs 1% of compressing it. Spread
  // over the chunk, so that a mostly compressible chunk is not judged by one incompressible stretch.
  if (data.length > SAMPLE_BYTES && spreadSampleCompressedLength(data) > SAMPLE_BYTES * SELECTIVE_SAMPLE_RATIO) return storeAsBrotli(data);
  const packed = brotliFast(data);
  return packed.length <= data.length * SELECTIVE_KEEP_RATIO ? { parts: [packed] } : storeAsBrotli(data);
}

function compressFast(data: Uint8Array): BrotliParts {
  if (looksIncompressible(data)) return storeAsBrotli(data);
  const packed = brotliFast(data);
  return packed.length < data.length ? { parts: [packed] } : storeAsBrotli(data);
}

function compressCompat(data: Uint8Array): BrotliParts {
  return { parts: [wasm().compress(data, { quality: COMPAT_QUALITY })] };
}

/**
 * The brotli stream of `data`, in pieces to be read in order (raw storage avoids copying the chunk), and
 * where the plaintext sits in it when the profile stored it raw.
 */
export function compressParts(data: Uint8Array, profile: Profile): BrotliParts {
  if (profile === 'compat') return compressCompat(data);
  return profile === 'selective' ? compressSelective(data) : compressFast(data);
}

export function compress(data: Uint8Array, profile: Profile): Buffer {
  return Buffer.concat(compressParts(data, profile).parts);
}

/** Decompress any brotli stream; refuses to produce more than `maxSize` bytes (a damaged or hostile chunk). */
export function decompress(data: Uint8Array, maxSize: number): Buffer {
  // Chunks stored raw need no decoder: their bytes are read in place.
  const stored = readStoredBrotli(data);
  if (stored && stored.length <= maxSize) return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  // The addon's one-shot decoder: node:zlib makes a stream object and its buffers for every call, which cost
  // more than decoding a small chunk (a small file's open: native-notes/small-files.md, fourteenth session).
  if (native?.brotliDecodeInto && maxSize <= MAX_CHUNK_SIZE) return decompressInto(data, Buffer.allocUnsafe(maxSize));
  return brotliDecompressSync(data, { maxOutputLength: Math.max(1, maxSize) });
}

/**
 * Decode a brotli stream into `out` (the addon's one-shot decoder, else node:zlib and a copy); the plaintext,
 * a view of `out`. A stream that decodes to more than `out` holds fails.
 */
export function decompressInto(data: Uint8Array, out: Buffer): Buffer {
  if (native?.brotliDecodeInto) {
    const n = native.brotliDecodeInto(data, out);
    if (n < 0) throw new Error('invalid brotli stream, or more than the chunk size');
    return out.subarray(0, n);
  }
  const plain = brotliDecompressSync(data, { maxOutputLength: Math.max(1, out.length) });
  plain.copy(out);
  return out.subarray(0, plain.length);
}
