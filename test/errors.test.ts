/**
 * Damage never yields wrong bytes: a flipped bit is a ChunkHashMismatch naming the chunk, a missing chunk a
 * ChunkNotFound naming it, a bad DataMap an InvalidDataMap; too-small inputs and bad ranges are refused.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DataMap, deserializeDataMap, serializeDataMap } from '../src/core/data-map.js';
import { ChunkHashMismatch, ChunkNotFound, InvalidDataMap } from '../src/core/errors.js';
import { DiskStore } from '../src/store/disk-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import {
  SelfEncryptor,
  WorkerPool,
  decrypt,
  decryptRange,
  decryptToFile,
  encrypt,
  encryptFile,
  parallelDecrypt,
  parallelEncrypt,
  readDataMapFile,
  rootDataMap,
} from '../src/lib/index.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';

const MiB = 1024 * 1024;
let pool: WorkerPool;
let dir: string;
beforeAll(async () => {
  pool = new WorkerPool(2);
  dir = await mkdtemp(join(tmpdir(), 'sefs-errors-'));
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

/** A 5-chunk file (so its map is shrunk) in a memory store, with its root map. */
async function fixture(): Promise<{ input: Buffer; dataMap: DataMap; root: DataMap; store: MemoryStore }> {
  const input = textLike(4 * MiB + 10, 1);
  const { dataMap, chunks } = encrypt(input, { profile: 'fast' }); // compressed: a wrong key reaches brotli
  const store = new MemoryStore();
  for (const c of chunks) await store.put(c.name, c.content);
  return { input, dataMap, root: await rootDataMap(dataMap, store), store };
}

/** Every way of reading the whole file must fail with `expected` (and never resolve to bytes). */
async function allReadsFail(f: Awaited<ReturnType<typeof fixture>>, check: (e: unknown) => void): Promise<void> {
  const attempts: [string, () => Promise<unknown>][] = [
    ['decrypt', () => decrypt(f.dataMap, f.store)],
    ['decrypt(fn)', () => decrypt(f.dataMap, (n) => f.store.get(n))],
    ['decryptRange', () => decryptRange(f.dataMap, f.store, 0, f.input.length)],
    ['parallelDecrypt', () => parallelDecrypt(f.dataMap, f.store, { pool })],
    ['decryptToFile', () => decryptToFile(f.dataMap, f.store, join(dir, 'out.bin'), { pool })],
    ['SelfEncryptor.read', () => new SelfEncryptor(f.store, f.dataMap, { pool }).read()],
  ];
  for (const [name, attempt] of attempts) {
    const outcome = await attempt().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(outcome, `${name} must fail`).toBeDefined();
    check(outcome);
  }
}

describe('corrupt chunks', () => {
  it.each([0, 1, 2, 4])('a flipped bit in chunk %i is a ChunkHashMismatch naming it', async (index) => {
    const f = await fixture();
    const name = f.root.chunks[index]!.dstHash.toString('hex');
    const stored = f.store.chunks.get(name)!;
    stored[Math.floor(stored.length / 2)]! ^= 0x10;
    await allReadsFail(f, (e) => {
      expect(e).toBeInstanceOf(ChunkHashMismatch);
      expect((e as ChunkHashMismatch).chunkName).toBe(name);
      expect((e as Error).message).toContain(name);
    });
    // A range that does not touch the bad chunk still reads.
    const other = index === 4 ? 0 : 4;
    const start = f.root.chunks.slice(0, other).reduce((s, c) => s + c.srcSize, 0);
    expect((await decryptRange(f.root, f.store, start, 100)).equals(f.input.subarray(start, start + 100))).toBe(true);
  });

  it('a damaged chunk of the shrunk map is a ChunkHashMismatch naming it', async () => {
    const f = await fixture();
    const name = f.dataMap.chunks[1]!.dstHash.toString('hex');
    f.store.chunks.get(name)![0]! ^= 1;
    await expect(decrypt(f.dataMap, f.store)).rejects.toMatchObject({ code: 'ChunkHashMismatch', chunkName: name });
  });

  it('a chunk replaced by another valid chunk is caught (its name does not match)', async () => {
    const f = await fixture();
    const [a, b] = [f.root.chunks[2]!.dstHash.toString('hex'), f.root.chunks[3]!.dstHash.toString('hex')];
    f.store.chunks.set(a, f.store.chunks.get(b)!);
    await expect(decrypt(f.root, f.store)).rejects.toMatchObject({ code: 'ChunkHashMismatch', chunkName: a });
  });

  it('a DataMap with a wrong src hash does not decrypt to wrong bytes', async () => {
    const f = await fixture();
    const bad: DataMap = { chunks: f.root.chunks.map((c) => ({ ...c, srcHash: Buffer.from(c.srcHash) })) };
    bad.chunks[3]!.srcHash[0]! ^= 1;
    await expect(decrypt(bad, f.store)).rejects.toMatchObject({ code: expect.stringMatching(/^Chunk(HashMismatch|DecryptFailed)$/) });
  });

  it('a DiskStore chunk file damaged on disk is a ChunkHashMismatch', async () => {
    const f = await fixture();
    const store = new DiskStore(join(dir, 'disk'), { fsync: false });
    for (const [hex, bytes] of f.store.chunks) await store.put(Buffer.from(hex, 'hex'), bytes);
    const name = f.root.chunks[3]!.dstHash;
    const damaged = Buffer.from(f.store.chunks.get(name.toString('hex'))!);
    damaged[damaged.length - 1]! ^= 0x80;
    await writeFile(store.pathOf(name), damaged);
    for (const s of [store, new DiskStore(store.root, { verify: false })]) {
      await expect(decrypt(f.dataMap, s)).rejects.toMatchObject({ code: 'ChunkHashMismatch', chunkName: name.toString('hex') });
    }
  });
});

describe('missing chunks', () => {
  it.each([0, 3, 4])('chunk %i missing is a ChunkNotFound naming it', async (index) => {
    const f = await fixture();
    const name = f.root.chunks[index]!.dstHash.toString('hex');
    // Identical chunks share a name; this text has none, so exactly one chunk goes.
    f.store.chunks.delete(name);
    await allReadsFail(f, (e) => {
      expect(e).toBeInstanceOf(ChunkNotFound);
      expect((e as ChunkNotFound).chunkName).toBe(name);
    });
  });

  it('a getChunk that returns null or undefined means a missing chunk', async () => {
    const f = await fixture();
    await expect(decrypt(f.dataMap, () => null)).rejects.toMatchObject({ code: 'ChunkNotFound', chunkName: f.dataMap.chunks[0]!.dstHash.toString('hex') });
    await expect(decrypt(f.root, async () => undefined)).rejects.toBeInstanceOf(ChunkNotFound);
  });
});

describe('invalid DataMaps', () => {
  it('every truncation of a DataMap is an InvalidDataMap', async () => {
    const f = await fixture();
    for (const map of [f.root, f.dataMap]) {
      const bytes = serializeDataMap(map);
      for (let n = 0; n < bytes.length; n++) expect(() => deserializeDataMap(bytes.subarray(0, n)), `${n} bytes`).toThrow(InvalidDataMap);
      expect(() => deserializeDataMap(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(InvalidDataMap);
    }
  });

  it('garbage is an InvalidDataMap', () => {
    const rand = prng(3);
    for (let i = 0; i < 200; i++) {
      const junk = seededBytes(Math.floor(rand() * 600), i);
      if (rand() < 0.5 && junk.length > 0) junk[0] = 1; // past the version byte
      expect(() => deserializeDataMap(junk)).toThrow(InvalidDataMap);
    }
  });

  it('inconsistent fields are an InvalidDataMap', async () => {
    const f = await fixture();
    const bytes = serializeDataMap(f.root);
    const entry = 8 + 32 + 32 + 8;
    const mutate = (fn: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(bytes);
      fn(b);
      return b;
    };
    const bad = [
      mutate((b) => b.writeUInt8(2, 0)), // version
      mutate((b) => b.writeBigUInt64LE(7n, 1)), // count larger than the body
      mutate((b) => b.writeBigUInt64LE(5n, 9 + entry)), // index out of order
      mutate((b) => b.writeBigUInt64LE(1000n, 9 + 8 + 64)), // size off the layout
      mutate((b) => b.writeBigUInt64LE(2n ** 20n + 1n, 9 + 8 + 64)), // chunk larger than MAX
      mutate((b) => b.writeUInt8(7, b.length - 1)), // child tag
    ];
    for (const b of bad) expect(() => deserializeDataMap(b)).toThrow(InvalidDataMap);
  });

  it('a shrunk map whose chunks hold something else is an InvalidDataMap', async () => {
    const notAMap = encrypt(textLike(5000, 2));
    const store = new MemoryStore();
    for (const c of notAMap.chunks) await store.put(c.name, c.content);
    await expect(decrypt({ ...notAMap.dataMap, child: 1 }, store)).rejects.toBeInstanceOf(InvalidDataMap);
  });

  it('a DataMap file of garbage is an InvalidDataMap', async () => {
    const path = join(dir, 'garbage.datamap');
    await writeFile(path, 'not a datamap at all');
    await expect(readDataMapFile(path)).rejects.toBeInstanceOf(InvalidDataMap);
  });
});

describe('refused inputs', () => {
  it.each([0, 1, 2])('%i bytes is TooSmall everywhere', async (size) => {
    const data = seededBytes(size, 5);
    expect(() => encrypt(data)).toThrow(expect.objectContaining({ code: 'TooSmall' }));
    await expect(parallelEncrypt(data, new MemoryStore(), { pool })).rejects.toMatchObject({ code: 'TooSmall' });
    const path = join(dir, `tiny-${size}`);
    await writeFile(path, data);
    await expect(encryptFile(path, new MemoryStore(), { pool })).rejects.toMatchObject({ code: 'TooSmall' });
  });

  it('ranges outside the file are OutOfRange; ranges past the end are clipped', async () => {
    const f = await fixture();
    await expect(decryptRange(f.root, f.store, f.input.length + 1, 1)).rejects.toMatchObject({ code: 'OutOfRange' });
    await expect(decryptRange(f.root, f.store, -1, 1)).rejects.toMatchObject({ code: 'OutOfRange' });
    await expect(decryptRange(f.root, f.store, 0, -1)).rejects.toMatchObject({ code: 'OutOfRange' });
    await expect(decryptRange(f.root, f.store, 0.5, 1)).rejects.toMatchObject({ code: 'OutOfRange' });
    expect((await decryptRange(f.root, f.store, f.input.length - 3, 100)).equals(f.input.subarray(-3))).toBe(true);
    expect((await decryptRange(f.root, f.store, f.input.length, 100)).length).toBe(0);
  });

  it('a store that fails a put fails the encryption with its error', async () => {
    const store = new MemoryStore();
    let puts = 0;
    store.put = async () => {
      if (++puts === 3) throw new Error('disk full');
    };
    await expect(parallelEncrypt(seededBytes(6 * MiB, 6), store, { pool })).rejects.toThrow('disk full');
  });
});
