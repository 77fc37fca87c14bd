/**
 * What each profile stores: selective compresses only what shrinks to a third or less, fast whatever it can,
 * and every profile writes a standard brotli stream of exactly its input.
 */
import { brotliDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressParts, PROFILES, type Profile } from '../src/core/compression.js';
import { seededBytes, textLike } from './helpers/inputs.js';

const MiB = 1 << 20;

/** Log lines: a timestamp and a counter in a fixed frame, as a service writes them (compresses to ~10%). */
function logLines(size: number): Buffer {
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const line = `2026-12-03T16:${String(i % 60).padStart(2, '0')}:00.${String(i % 1000).padStart(3, '0')}Z INFO request ${i} served in ${i % 97} ms\n`;
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

/** A 16-byte pattern repeated: a flat byte histogram, yet very compressible. */
function pattern(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 17) & 0xff;
  return out;
}

/** 1 MiB of zeros with `middle` in its middle: one sample slice alone would call it incompressible. */
function zerosAround(middle: Buffer): Buffer {
  const out = Buffer.alloc(MiB);
  middle.copy(out, (MiB - middle.length) >> 1);
  return out;
}

function stored(data: Uint8Array, profile: Profile) {
  const { parts, plainAt } = compressParts(data, profile);
  const stream = Buffer.concat(parts);
  return { stream, raw: plainAt !== undefined, ratio: stream.length / data.length };
}

describe('compression profiles', () => {
  it.each([
    { name: 'text (about 40% compressed)', data: textLike(MiB, 5), raw: true },
    { name: 'a small text file', data: textLike(3000, 5), raw: true },
    { name: 'random bytes', data: seededBytes(MiB, 5), raw: true },
    { name: 'log lines', data: logLines(MiB), raw: false },
    { name: 'a repeated pattern', data: pattern(MiB), raw: false },
    { name: 'zeros', data: Buffer.alloc(MiB), raw: false },
    { name: 'a small log', data: logLines(6000), raw: false },
    { name: 'zeros around 12 KB of random bytes', data: zerosAround(seededBytes(12_000, 8)), raw: false },
    ...[16383, 16384, 16385].flatMap((n) => [
      { name: `text of ${n} bytes`, data: textLike(n, 9), raw: true },
      { name: `a log of ${n} bytes`, data: logLines(n), raw: false },
    ]),
  ])('selective: $name, stored raw: $raw', ({ data, raw }) => {
    const s = stored(data, 'selective');
    expect(s.raw).toBe(raw);
    if (!raw) expect(s.ratio).toBeLessThanOrEqual(1 / 3);
  });

  it('selective and fast write the same stream for a chunk that compresses to a third or less', () => {
    for (const data of [logLines(MiB), pattern(MiB), Buffer.alloc(MiB)]) expect(stored(data, 'selective').stream.equals(stored(data, 'fast').stream)).toBe(true);
  });

  it('fast compresses text and stores random bytes raw', () => {
    const text = stored(textLike(MiB, 6), 'fast');
    expect(text.raw).toBe(false);
    expect(text.ratio).toBeLessThan(0.6);
    expect(stored(seededBytes(MiB, 6), 'fast').raw).toBe(true);
  });

  it.each(PROFILES)('%s writes a standard brotli stream of its input', (profile) => {
    for (const data of [textLike(MiB, 7), seededBytes(200_000, 7), logLines(MiB), Buffer.of(1), textLike(20, 7)]) {
      expect(brotliDecompressSync(stored(data, profile).stream).equals(data)).toBe(true);
    }
  });
});
