/**
 * Round trips through the library at the sizes where the layout changes (3 chunks of thirds below 3 MiB,
 * 1 MiB chunks from 3 MiB, shrunk maps above 3 chunks), random and compressible, in both profiles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../src/core/compression.js';
import { deserializeDataMap, serializeDataMap } from '../src/core/data-map.js';
import { chunkSpans, chunksCovering } from '../src/core/layout.js';
import { MemoryStore } from '../src/store/memory-store.js';
import {
  WorkerPool,
  decrypt,
  decryptRange,
  encrypt,
  inlineCrypto,
  parallelDecrypt,
  parallelEncrypt,
  rootDataMap,
} from '../src/lib/index.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';

const MiB = 1024 * 1024;
const SIZES = [3, 4, 1023, 3072, 3 * MiB - 1, 3 * MiB, 3 * MiB + 1, 10 * MiB + 7];
const KINDS = { random: seededBytes, compressible: textLike } as const;
const PROFILES: Profile[] = ['compat', 'fast', 'selective'];

/** A store that records what is fetched. */
class CountingStore extends MemoryStore {
  fetched: string[] = [];
  override async get(name: Buffer): Promise<Buffer> {
    this.fetched.push(name.toString('hex'));
    return super.get(name);
  }
}

function storeOf(chunks: { name: Buffer; content: Buffer }[]): CountingStore {
  const store = new CountingStore();
  for (const c of chunks) store.chunks.set(c.name.toString('hex'), c.content);
  return store;
}

/** Ranges to try on a file of `size` bytes: random ones, ones across every chunk border, the first and last bytes. */
function rangesFor(size: number, seed: number): [number, number][] {
  const rand = prng(seed);
  const ranges: [number, number][] = [
    [0, 1],
    [size - 1, 1],
    [0, size],
    [size - 2, 10], // runs past the end: clipped
    [size, 5], // at the end: empty
  ];
  for (let i = 0; i < 6; i++) {
    const offset = Math.floor(rand() * size);
    ranges.push([offset, 1 + Math.floor(rand() * Math.min(size - offset, 2 * MiB))]);
  }
  for (const span of chunkSpans(size).slice(1)) ranges.push([Math.max(0, span.start - 3), 7]);
  return ranges;
}

let pool: WorkerPool;
beforeAll(() => {
  pool = new WorkerPool(2);
});
afterAll(async () => {
  await pool.close();
});

describe.each(PROFILES)('profile %s', (profile) => {
  describe.each(Object.keys(KINDS) as (keyof typeof KINDS)[])('%s data', (kind) => {
    it.each(SIZES)('%i bytes: encrypt, decrypt, decryptRange', async (size) => {
      const input = KINDS[kind](size, size);
      const { dataMap, chunks } = encrypt(input, { profile });
      const n = chunkSpans(size).length;
      expect(dataMap.chunks.length).toBeLessThanOrEqual(3);
      expect(dataMap.child).toBe(n > 3 ? 1 : undefined);

      // decrypt() takes the store or a plain function, sync or async, and needs no profile.
      const store = storeOf(chunks);
      expect((await decrypt(dataMap, store)).equals(input)).toBe(true);
      expect((await decrypt(dataMap, (name) => store.chunks.get(name.toString('hex')))).equals(input)).toBe(true);
      // The DataMap survives its file form (3 MiB - 1 has a last chunk of MAX + 1 bytes: the reference's layout).
      const fromFile = deserializeDataMap(serializeDataMap(dataMap));
      expect(fromFile).toEqual(dataMap);
      const root0 = await rootDataMap(fromFile, store);
      expect(deserializeDataMap(serializeDataMap(root0))).toEqual(root0);

      // Ranges fetch only the chunks that cover them (a root map needs no other fetch).
      const root = await rootDataMap(dataMap, store);
      expect(root.chunks.length).toBe(n);
      for (const [offset, length] of rangesFor(size, size + 1)) {
        store.fetched = [];
        const got = await decryptRange(root, store, offset, length);
        expect(got.equals(input.subarray(offset, offset + length)), `range ${offset}+${length}`).toBe(true);
        const cover = chunksCovering(size, offset, length);
        const expected = cover ? root.chunks.slice(cover.first, cover.last + 1).map((c) => c.dstHash.toString('hex')) : [];
        expect(store.fetched.sort()).toEqual(expected.sort());
      }
      // A shrunk map works for ranges too (expanding it first).
      const last = await decryptRange(dataMap, store, size - 1, 1);
      expect(last.equals(input.subarray(size - 1))).toBe(true);
    });
  });

  it('the two profiles make different chunks that one decrypt path reads', async () => {
    const input = textLike(3 * MiB + 1, 5);
    const other: Profile = profile === 'compat' ? 'fast' : 'compat';
    const a = encrypt(input, { profile });
    const b = encrypt(input, { profile: other });
    expect(a.dataMap.chunks[0]!.dstHash.equals(b.dataMap.chunks[0]!.dstHash)).toBe(false);
    expect((await decrypt(a.dataMap, storeOf([...a.chunks, ...b.chunks]))).equals(input)).toBe(true);
  });

  it.each([3 * MiB + 1, 10 * MiB + 7, 4096])('parallelEncrypt equals encrypt (%i bytes) and parallelDecrypt reads it', async (size) => {
    for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
      const input = KINDS[kind](size, size + 3);
      const expected = encrypt(input, { profile });
      const store = new MemoryStore();
      const dataMap = await parallelEncrypt(input, store, { pool, profile });
      expect(serializeDataMap(dataMap).equals(serializeDataMap(expected.dataMap))).toBe(true);
      expect([...store.chunks.keys()].sort()).toEqual([...new Set(expected.chunks.map((c) => c.name.toString('hex')))].sort());
      for (const c of expected.chunks) expect(store.chunks.get(c.name.toString('hex'))!.equals(c.content)).toBe(true);
      expect((await parallelDecrypt(dataMap, store, { pool })).equals(input)).toBe(true);
      expect((await parallelDecrypt(dataMap, store, { pool: inlineCrypto })).equals(input)).toBe(true);
    }
  });
});

it('parallelEncrypt with its own threads closes them and gives the same map', async () => {
  const input = seededBytes(5 * MiB + 3, 99);
  const store = new MemoryStore();
  const dataMap = await parallelEncrypt(input, store, { threads: 2, profile: 'fast' });
  expect(dataMap).toEqual(encrypt(input, { profile: 'fast' }).dataMap);
  expect((await parallelDecrypt(dataMap, store, { threads: 1 })).equals(input)).toBe(true);
});
