/**
 * Writes test/fixtures/own: sefs-made fixtures in the layout of the reference vectors, for the `fast` and
 * `selective` profiles (the reference vectors cover `compat`). Run once, deliberately (`npx tsx scripts/make-fixtures.ts`), and
 * commit the result: the tests then catch any change to what the fast profile writes (which would end dedup
 * against existing vaults) and keep old chunks decryptable.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../src/core/compression.js';
import { serializeDataMap } from '../src/core/data-map.js';
import { encryptBytes, shrinkDataMap } from '../src/core/encrypt.js';
import { chunkSpans } from '../src/core/layout.js';
import { inputFromWords, sha3hex } from '../test/helpers/inputs.js';

const OUT = new URL('../test/fixtures/own/', import.meta.url).pathname;
const CASES: Record<string, { input: string; profile: Profile }> = {
  // This text compresses to about 40%: compressed by fast, stored raw by selective.
  'fast-text-48KiB': { input: 'text-like, seed 7, 49152 bytes', profile: 'fast' },
  'selective-text-48KiB': { input: 'text-like, seed 7, 49152 bytes', profile: 'selective' },
  // Chunks of 100 KiB, past selective's 16 KiB sample: random bytes stored raw on the sample alone; text whose
  // sample passes (42%) but whose chunk compresses to 40%, over a third: raw; a byte pattern: compressed.
  'selective-random-300KiB': { input: 'random, seed 12, 307200 bytes', profile: 'selective' },
  'selective-text-300KiB': { input: 'text-like, seed 13, 307200 bytes', profile: 'selective' },
  'selective-mod16-300KiB': { input: 'byte i = i % 16, 307200 bytes', profile: 'selective' },
  'fast-random-60KiB': { input: 'random, seed 11, 61440 bytes', profile: 'fast' },
  // More than 3 chunks, so the map is shrunk (with the fast profile too); low entropy, so the chunks are small.
  'fast-mod16-4MiB+5': { input: 'byte i = i % 16, 4 MiB + 5 bytes', profile: 'fast' },
};

rmSync(OUT, { recursive: true, force: true });
const vectors: Record<string, unknown> = {};
for (const [name, c] of Object.entries(CASES)) {
  const input = inputFromWords(c.input);
  const dir = join(OUT, name);
  mkdirSync(join(dir, 'chunks'), { recursive: true });
  const root = encryptBytes(input, c.profile);
  const shrunk = shrinkDataMap(root.dataMap, c.profile);
  for (const ch of [...root.chunks, ...shrunk.chunks]) writeFileSync(join(dir, 'chunks', ch.name.toString('hex')), ch.content);
  const rootBytes = serializeDataMap(root.dataMap);
  writeFileSync(join(dir, 'datamap.bin'), rootBytes);
  if (shrunk.dataMap.child !== undefined) writeFileSync(join(dir, 'datamap-shrunk.bin'), serializeDataMap(shrunk.dataMap));
  vectors[name] = {
    input: c.input,
    input_sha3: sha3hex(input),
    file_size: input.length,
    profile: c.profile,
    chunks: chunkSpans(input.length).map((s, i) => ({
      index: i,
      start: s.start,
      size: s.size,
      src: root.dataMap.chunks[i]!.srcHash.toString('hex'),
      dst: root.dataMap.chunks[i]!.dstHash.toString('hex'),
    })),
    datamap_sha3: sha3hex(rootBytes),
    shrunk_level1_chunks:
      shrunk.dataMap.child === 1
        ? shrunk.dataMap.chunks.map((ch) => ({ index: ch.index, dst: ch.dstHash.toString('hex'), src: ch.srcHash.toString('hex'), size: ch.srcSize }))
        : null,
  };
}
writeFileSync(join(OUT, 'vectors.json'), JSON.stringify(vectors, null, 1) + '\n');
console.log(`wrote ${Object.keys(vectors).length} cases to ${OUT}`);
