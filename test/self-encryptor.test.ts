/** The SelfEncryptor: streamed writes give encrypt()'s DataMap; reads by range and chunk by chunk give the bytes back. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROFILES } from '../src/core/compression.js';
import { chunkSpans } from '../src/core/layout.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { SelfEncryptor, WorkerPool, encrypt, inlineCrypto } from '../src/lib/index.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';

const MiB = 1024 * 1024;
let pool: WorkerPool;
beforeAll(() => {
  pool = new WorkerPool(2);
});
afterAll(async () => {
  await pool.close();
});

/** Write `data` in pieces of random sizes (some empty, some larger than a chunk). */
async function writeInPieces(enc: SelfEncryptor, data: Buffer, seed: number): Promise<void> {
  const rand = prng(seed);
  for (let pos = 0; pos < data.length; ) {
    const n = Math.min(data.length - pos, Math.floor(rand() * rand() * 2.5 * MiB));
    const piece = Buffer.from(data.subarray(pos, pos + n));
    await enc.write(piece);
    piece.fill(0xee); // the encryptor must have copied what it keeps
    pos += n;
  }
}

describe.each(PROFILES)('profile %s', (profile) => {
  it.each([3, 1000, 3 * MiB - 1, 3 * MiB, 3 * MiB + 1, 4 * MiB, 7 * MiB + 333])('%i bytes written in pieces', async (size) => {
    const data = size % 2 ? seededBytes(size, size) : textLike(size, size);
    const store = new MemoryStore();
    const writer = new SelfEncryptor(store, undefined, { profile, pool });
    await writeInPieces(writer, data, size);
    const dataMap = await writer.close();
    const expected = encrypt(data, { profile });
    expect(dataMap).toEqual(expected.dataMap);
    expect([...store.chunks.keys()].sort()).toEqual([...new Set(expected.chunks.map((c) => c.name.toString('hex')))].sort());
    expect((await writer.read(0, size)).equals(data)).toBe(true);

    const reader = new SelfEncryptor(store, dataMap, { pool });
    expect(await reader.size()).toBe(size);
    const spans = chunkSpans(size);
    for (const span of spans) {
      const chunk = await reader.readChunk();
      expect(chunk?.equals(data.subarray(span.start, span.start + span.size))).toBe(true);
    }
    expect(await reader.readChunk()).toBeNull();
    expect((await reader.read()).equals(data)).toBe(true);
    expect((await reader.read(size - 1, 1)).equals(data.subarray(size - 1))).toBe(true);
    const mid = Math.floor(size / 2);
    expect((await reader.read(mid, MiB + 5)).equals(data.subarray(mid, mid + MiB + 5))).toBe(true);
  });
});

it('works without a worker pool, and as the seeds show it (write, close, read)', async () => {
  const store = new MemoryStore();
  const writer = new SelfEncryptor(store, undefined, { pool: inlineCrypto });
  await writer.writeChunk(Buffer.from('Hello, '));
  await writer.writeChunk(Buffer.from('World!'));
  const dataMap = await writer.close();
  const reader = new SelfEncryptor(store, dataMap, { pool: inlineCrypto });
  expect((await reader.read()).toString()).toBe('Hello, World!');
});

it('refuses to close under 3 bytes, to write after close, and to write on a DataMap', async () => {
  const store = new MemoryStore();
  const tiny = new SelfEncryptor(store, undefined, { pool: inlineCrypto });
  await tiny.write(Buffer.from('ab'));
  await expect(tiny.close()).rejects.toMatchObject({ code: 'TooSmall' });
  await expect(tiny.write(Buffer.from('c'))).rejects.toMatchObject({ code: 'Closed' });

  const writer = new SelfEncryptor(store, undefined, { pool: inlineCrypto });
  await expect(writer.read(0, 1)).rejects.toMatchObject({ code: 'NotClosed' });
  await writer.write(Buffer.from('abcdef'));
  const dataMap = await writer.close();
  await expect(writer.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'Closed' });
  const reader = new SelfEncryptor(store, dataMap);
  await expect(reader.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'ReadOnly' });
});

it('encrypts full chunks while the writes go on (memory stays bounded)', async () => {
  // Once 3 MiB are written, each further full MiB is encrypted and stored before close().
  const store = new MemoryStore();
  const writer = new SelfEncryptor(store, undefined, { profile: 'fast', pool });
  for (let i = 0; i < 12; i++) await writer.write(seededBytes(MiB, 100 + i));
  await new Promise((r) => setTimeout(r, 200)); // let the in-flight chunks land
  expect(store.chunks.size).toBeGreaterThanOrEqual(8); // chunks 2..11 do not wait for close
  await writer.close();
});
