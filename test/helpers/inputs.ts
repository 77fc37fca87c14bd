/**
 * Test inputs, made from a description in words (as vectors.json gives them), so fixtures never need to
 * carry their plaintext. Seeded generators make "random" and "text-like" inputs reproducible.
 */
import { createCipheriv, createHash } from 'node:crypto';

const MiB = 1024 * 1024;

/** Seeded pseudo-random bytes: AES-128-CTR over zeros, keyed by the seed (fast and reproducible). */
export function seededBytes(size: number, seed: number): Buffer {
  const key = createHash('sha256').update(`sefs-test-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** A small seeded PRNG (mulberry32) for choices: offsets, words. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an ' +
  'they you were her she there been one all we their has would when if so no will more can out up into do ' +
  'time only about other could some these two may first then any like such over new also made after should ' +
  'chunk file data map store encrypt decrypt key hash stream vault mount block offset length size buffer ' +
  'network storage cipher random window layout reference compression profile worker thread pool cache read write ' +
  'system process memory kernel directory metadata content value number string function return error result'
).split(' ');

/** Text-like bytes: words drawn by a seeded PRNG (with a Zipf-ish bias), punctuation and line breaks. */
export function textLike(size: number, seed: number): Buffer {
  const rand = prng(seed);
  const words = WORDS.map((w) => Buffer.from(w));
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  let line = 0;
  while (pos < size) {
    const r = rand();
    const word = words[Math.floor(r * r * words.length)]!; // favour the common words
    pos += word.copy(out, pos);
    line += word.length + 1;
    const p = rand();
    const sep = line > 72 ? 10 : p < 0.06 ? 44 : p < 0.09 ? 46 : 32; // newline, comma, full stop, space
    if (sep === 10) line = 0;
    if (pos < size) out[pos++] = sep;
  }
  return out;
}

/** "3072", "5 MiB + 17", "3 MiB - 1", "10 MiB" -> bytes. */
export function parseSize(text: string): number {
  const m = /^(?:(\d+) MiB)?\s*(?:([+-])?\s*(\d+))?$/.exec(text.trim());
  if (!m || (m[1] === undefined && m[3] === undefined)) throw new Error(`cannot read size '${text}'`);
  const mib = m[1] ? Number(m[1]) * MiB : 0;
  const rest = m[3] ? Number(m[3]) * (m[2] === '-' ? -1 : 1) : 0;
  return mib + rest;
}

const FORMULAS: Record<string, (i: number) => number> = {
  'i % 256': (i) => i % 256,
  'i % 251': (i) => i % 251,
  'i % 16': (i) => i % 16,
  '(i*31 + (i>>8)) & 255': (i) => (i * 31 + (i >> 8)) & 255,
};

/**
 * The bytes an input description names:
 *   the N ASCII bytes "abc" | byte i = FORMULA, SIZE bytes | text-like, seed S, SIZE bytes | random, seed S, SIZE bytes
 */
export function inputFromWords(description: string): Buffer {
  let m = /^the (\d+) ASCII bytes "(.*)"$/.exec(description);
  if (m) {
    const bytes = Buffer.from(m[2]!, 'ascii');
    if (bytes.length !== Number(m[1])) throw new Error(`'${description}': length mismatch`);
    return bytes;
  }
  m = /^byte i = (.+), (.+) bytes$/.exec(description);
  if (m) {
    const f = FORMULAS[m[1]!];
    if (!f) throw new Error(`no generator for formula '${m[1]}' (add it to test/helpers/inputs.ts)`);
    const out = Buffer.allocUnsafe(parseSize(m[2]!));
    for (let i = 0; i < out.length; i++) out[i] = f(i);
    return out;
  }
  m = /^(text-like|random), seed (\d+), (.+) bytes$/.exec(description);
  if (m) return (m[1] === 'random' ? seededBytes : textLike)(parseSize(m[3]!), Number(m[2]));
  throw new Error(`cannot make an input from '${description}'`);
}

export const sha3hex = (data: Uint8Array): string => createHash('sha3-256').update(data).digest('hex');
