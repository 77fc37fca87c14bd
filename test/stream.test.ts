/**
 * Streaming file encryption and decryption: a 1 GiB file goes through with memory bounded by a few chunks,
 * and the streaming path gives exactly the DataMap and chunks of the in-memory path.
 */
import { mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../src/core/compression.js';
import { serializeDataMap } from '../src/core/data-map.js';
import { DiskStore } from '../src/store/disk-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { WorkerPool, decryptToFile, encrypt, encryptFile, readDataMapFile, rootDataMap, writeDataMapFile } from '../src/lib/index.js';
import { seededBytes, textLike } from './helpers/inputs.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The bar: a 1 GiB file must not raise RSS by more than this (the data alone would be 1024 MiB). */
const RSS_LIMIT = 200 * MiB;

let dir: string;
let pool: WorkerPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sefs-stream-'));
  pool = new WorkerPool(2);
  await Promise.all([pool.hash(Buffer.alloc(16)), pool.hash(Buffer.alloc(16))]); // workers up before the baseline
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

/** Samples RSS while `work` runs; returns its result and the peak rise above the RSS at the start. */
async function peakRssRise<T>(work: () => Promise<T>): Promise<{ result: T; rise: number }> {
  globalThis.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, rise: peak - baseline };
  } finally {
    clearInterval(timer);
  }
}

/** Compare two files block by block (never both whole in memory). */
async function sameFile(a: string, b: string): Promise<boolean> {
  if ((await stat(a)).size !== (await stat(b)).size) return false;
  const [fa, fb] = [await open(a), await open(b)];
  try {
    const [ba, bb] = [Buffer.alloc(4 * MiB), Buffer.alloc(4 * MiB)];
    for (let pos = 0; ; ) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, pos), fb.read(bb, 0, bb.length, pos)]);
      if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      if (ra.bytesRead === 0) return true;
      pos += ra.bytesRead;
    }
  } finally {
    await fa.close();
    await fb.close();
  }
}

describe('1 GiB file (fast profile)', () => {
  const input = () => join(dir, 'big.bin');

  it('encrypts and decrypts with bounded memory', async () => {
    // Mostly a hole (zeros), with random and text regions, one across a chunk border and one at the very end.
    const fh = await open(input(), 'w');
    await fh.truncate(GiB + 12345);
    for (const [pos, data] of [
      [0, seededBytes(3 * MiB, 1)],
      [100 * MiB + 777, textLike(5 * MiB, 2)],
      [512 * MiB - 100, seededBytes(MiB, 3)],
      [GiB + 12345 - 2 * MiB, textLike(2 * MiB, 4)],
    ] as const) {
      await fh.write(data, 0, data.length, pos);
    }
    await fh.close();

    const store = new DiskStore(join(dir, 'store'), { fsync: false });
    const enc = await peakRssRise(() => encryptFile(input(), store, { profile: 'fast', pool }));
    const mapFile = join(dir, 'big.datamap');
    await writeDataMapFile(mapFile, enc.result);
    const out = join(dir, 'big.out');
    const dec = await peakRssRise(async () => decryptToFile(await readDataMapFile(mapFile), store, out, { pool }));
    console.log(`1 GiB: RSS rise encrypt ${(enc.rise / MiB).toFixed(0)} MiB, decrypt ${(dec.rise / MiB).toFixed(0)} MiB`);
    expect(dec.rise).toBeLessThan(RSS_LIMIT);
    expect(enc.rise).toBeLessThan(RSS_LIMIT);

    expect(enc.result.child).toBe(1);
    expect(await sameFile(input(), out)).toBe(true);
    // No temp file is left beside the output.
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('streaming equals in-memory', () => {
  const cases: [string, Profile, () => Buffer][] = [
    ['40 MiB mixed, compat', 'compat', () => Buffer.concat([textLike(20 * MiB + 3, 8), seededBytes(20 * MiB, 9)])],
    ['40 MiB mixed, fast', 'fast', () => Buffer.concat([seededBytes(20 * MiB, 10), textLike(20 * MiB + 5, 11)])],
    ['3 MiB - 1 text, compat', 'compat', () => textLike(3 * MiB - 1, 12)],
    ['5 bytes, fast', 'fast', () => Buffer.from('hello')],
    ['8 MiB mixed, selective', 'selective', () => Buffer.concat([textLike(5 * MiB + 7, 13), seededBytes(3 * MiB, 14)])],
  ];
  it.each(cases)('%s', async (_name, profile, make) => {
    const data = make();
    const path = join(dir, 'mid.bin');
    await writeFile(path, data);
    const store = new MemoryStore();
    const dataMap = await encryptFile(path, store, { profile, pool });
    const expected = encrypt(data, { profile });
    expect(serializeDataMap(dataMap).equals(serializeDataMap(expected.dataMap))).toBe(true);
    expect([...store.chunks.keys()].sort()).toEqual([...new Set(expected.chunks.map((c) => c.name.toString('hex')))].sort());

    const out = join(dir, 'mid.out');
    let progress = 0;
    await decryptToFile(dataMap, store, out, { pool, onProgress: (done) => (progress = done) });
    expect(progress).toBe(data.length);
    expect((await readFile(out)).equals(data)).toBe(true);
  });

  it('decryptToFile replaces an existing file only when complete', async () => {
    const data = textLike(4 * MiB, 13);
    const path = join(dir, 'replace.bin');
    await writeFile(path, data);
    const store = new MemoryStore();
    const dataMap = await encryptFile(path, store, { pool });
    const out = join(dir, 'replace.out');
    await writeFile(out, 'old content');
    // Lose a chunk in the middle: the old file must stay as it was.
    const middle = (await rootDataMap(dataMap, store)).chunks[2]!.dstHash;
    await store.delete(middle);
    await expect(decryptToFile(dataMap, store, out, { pool })).rejects.toMatchObject({ code: 'ChunkNotFound' });
    expect(await readFile(out, 'utf8')).toBe('old content');
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
