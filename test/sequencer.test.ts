/**
 * The Sequencer against a plain Buffer model: random writes, truncates and commits must always read back
 * what the model holds, commits must produce DataMaps that decrypt to it, and a small write into a large
 * file must re-encrypt only the chunks it changed plus those keyed by them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { decryptAll } from '../src/core/encrypt.js';
import { ChunkCache } from '../src/fs/chunk-cache.js';
import { EMPTY_ENTRY, type MetaEntry } from '../src/vault/meta-entry.js';
import { MemoryBudget } from '../src/fs/memory-budget.js';
import { Sequencer } from '../src/fs/sequencer.js';
import { SEQUENTIAL_LEAD } from '../src/fs/stager.js';
import { WorkerPool } from '../src/lib/pool.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { prng, seededBytes } from './helpers/inputs.js';

const MiB = 1024 * 1024;
const pool = new WorkerPool(2);
afterAll(() => pool.close());

function setup(memBudgetBlocks = 4) {
  const store = new MemoryStore();
  const cache = new ChunkCache(store, pool, 64 * MiB);
  return { store, deps: { store, pool, cache, profile: 'fast' as const, memBudgetBlocks } };
}

async function contentOf(entry: MetaEntry, store: MemoryStore): Promise<Buffer> {
  if (entry.kind === 'inline') return entry.data;
  // A packed entry (small files) holds its chunks itself.
  const packed = new Map(entry.packed?.map((c, i) => [entry.dataMap.chunks[i]!.dstHash.toString('hex'), c]));
  return decryptAll(entry.dataMap, async (n) => packed.get(Buffer.from(n).toString('hex')) ?? store.get(n));
}

describe('Sequencer', () => {
  it('matches a Buffer model through random writes, truncates and commits', async () => {
    const rand = prng(42);
    const { store, deps } = setup(3);
    let committed: MetaEntry = EMPTY_ENTRY;
    let seq = new Sequencer(committed, deps);
    let model = Buffer.alloc(0);
    const maxSize = 7 * MiB + 123;
    for (let step = 0; step < 120; step++) {
      const r = rand();
      if (r < 0.6) {
        // Mostly sequential-ish or random writes of various sizes, sometimes past the end (holes).
        const size = Math.floor(rand() * (rand() < 0.3 ? 2 * MiB : 70_000)) + 1;
        const offset = Math.floor(rand() * Math.min(maxSize, model.length + 300_000));
        const data = seededBytes(size, step);
        await seq.write(offset, data);
        const next = Buffer.alloc(Math.max(model.length, offset + size));
        model.copy(next);
        data.copy(next, offset);
        model = next;
      } else if (r < 0.75) {
        const size = Math.floor(rand() * (model.length + 2 * MiB));
        await seq.truncate(size);
        const next = Buffer.alloc(size);
        model.copy(next, 0, 0, Math.min(size, model.length));
        model = next;
      } else if (r < 0.9) {
        await seq.commit(async (entry) => {
          committed = entry;
        });
        expect(committed.size).toBe(model.length);
        expect((await contentOf(committed, store)).equals(model), `step ${step}: committed content`).toBe(true);
        if (rand() < 0.5) seq = new Sequencer(committed, deps); // reopen
      }
      expect(seq.size).toBe(model.length);
      const at = Math.floor(rand() * (model.length + 1));
      const len = Math.floor(rand() * 3 * MiB);
      const got = await seq.read(at, len);
      expect(got.equals(model.subarray(at, at + len)), `step ${step}: read ${at}+${len}`).toBe(true);
    }
  }, 120_000);

  it('reads zeros where a shrunk file grows again, before and after the commit', async () => {
    const { store, deps } = setup();
    for (const [size, cut] of [[5 * MiB + 7, MiB + 10], [5 * MiB, 2 * MiB], [200_000, 1000]] as const) {
      const data = seededBytes(size, size);
      let entry: MetaEntry = EMPTY_ENTRY;
      const seq = new Sequencer(entry, deps);
      await seq.write(0, data);
      await seq.commit(async (e) => {
        entry = e;
      });
      const again = new Sequencer(entry, deps);
      await again.truncate(cut);
      await again.truncate(size);
      const expected = Buffer.alloc(size);
      data.copy(expected, 0, 0, cut);
      expect((await again.read(0, size)).equals(expected), `${size} cut at ${cut}: read`).toBe(true);
      await again.commit(async (e) => {
        entry = e;
      });
      expect((await contentOf(entry, store)).equals(expected), `${size} cut at ${cut}: committed`).toBe(true);
    }
  });

  it('re-encrypts about 3 chunks for a 4 KiB write into a 64 MiB file', async () => {
    const { store, deps } = setup();
    const data = seededBytes(64 * MiB, 5);
    let entry: MetaEntry = EMPTY_ENTRY;
    const seq = new Sequencer(entry, deps);
    for (let off = 0; off < data.length; off += 128 * 1024) await seq.write(off, data.subarray(off, off + 128 * 1024));
    await seq.commit(async (e) => {
      entry = e;
    });
    const before = new Set(store.chunks.keys());
    const bytesBefore = [...store.chunks.values()].reduce((n, c) => n + c.length, 0);
    const again = new Sequencer(entry, deps);
    await again.write(40 * MiB + 5000, seededBytes(4096, 6));
    await again.commit(async (e) => {
      entry = e;
    });
    const added = [...store.chunks.keys()].filter((k) => !before.has(k));
    const bytesAdded = [...store.chunks.values()].reduce((n, c) => n + c.length, 0) - bytesBefore;
    expect(added.length).toBe(3); // the changed chunk and the two keyed by it
    expect(bytesAdded).toBeLessThanOrEqual(4 * MiB);
    const expected = Buffer.from(data);
    seededBytes(4096, 6).copy(expected, 40 * MiB + 5000);
    expect((await contentOf(entry, store)).equals(expected)).toBe(true);
  }, 120_000);

  it('keeps memory bounded while writing sequentially: full blocks are encrypted before the commit', async () => {
    const { store, deps } = setup(4);
    const seq = new Sequencer(EMPTY_ENTRY, deps);
    const data = seededBytes(40 * MiB, 8);
    for (let off = 0; off < data.length; off += 128 * 1024) await seq.write(off, data.subarray(off, off + 128 * 1024));
    // Before any commit, most of the file already sits in the store as chunks.
    expect(store.chunks.size).toBeGreaterThan(30);
    let entry: MetaEntry = EMPTY_ENTRY;
    await seq.commit(async (e) => {
      entry = e;
    });
    expect((await contentOf(entry, store)).equals(data)).toBe(true);
  }, 120_000);

  it('holds a sequential writer once it runs SEQUENTIAL_LEAD blocks ahead of its staging, whatever the per-file allowance', async () => {
    // A store slower than the writer: without the lead, blocks would pile up to the 128 the file may hold.
    class SlowStore extends MemoryStore {
      override async put(name: Buffer, content: Buffer): Promise<void> {
        await new Promise((r) => setTimeout(r, 5));
        return super.put(name, content);
      }
    }
    const store = new SlowStore();
    const budget = new MemoryBudget(1024 * MiB);
    const deps = { store, pool, cache: new ChunkCache(store, pool, 64 * MiB), profile: 'fast' as const, memBudgetBlocks: 128, budget };
    const seq = new Sequencer(EMPTY_ENTRY, deps);
    const data = seededBytes(64 * MiB, 10);
    let peak = 0;
    for (let off = 0; off < data.length; off += MiB) {
      await seq.write(off, data.subarray(off, off + MiB));
      peak = Math.max(peak, budget.used);
    }
    expect(peak).toBeLessThanOrEqual(SEQUENTIAL_LEAD * MiB);
    expect(peak).toBeGreaterThan(8 * MiB); // it did run ahead: staging was slower than the writes
    let entry: MetaEntry = EMPTY_ENTRY;
    await seq.commit(async (e) => {
      entry = e;
    });
    expect((await contentOf(entry, store)).equals(data)).toBe(true);
  }, 120_000);

  it("reads ahead as far as the store asks (ChunkStore.readAhead), in groups that each decrypt on their own", async () => {
    // A store behind a network: every fetch waits until released, so what is in flight can be counted.
    class SlowStore extends MemoryStore {
      readonly readAhead = { chunks: 12, group: 4 };
      readonly asked: string[] = [];
      readonly waiting: (() => void)[] = [];
      override async get(name: Buffer): Promise<Buffer> {
        if (this.gated) {
          this.asked.push(name.toString('hex'));
          await new Promise<void>((go) => this.waiting.push(go));
        }
        return super.get(name);
      }
      gated = false;
    }
    const store = new SlowStore();
    const cache = new ChunkCache(store, pool, 64 * MiB);
    const deps = { store, pool, cache, profile: 'fast' as const, memBudgetBlocks: 4 };
    const data = seededBytes(24 * MiB, 9);
    const writer = new Sequencer(EMPTY_ENTRY, deps);
    await writer.write(0, data);
    let entry: MetaEntry = EMPTY_ENTRY;
    await writer.commit(async (e) => {
      entry = e;
    });
    store.gated = true;
    const reader = new Sequencer(entry, { ...deps, cache: new ChunkCache(store, pool, 64 * MiB) });
    const first = reader.readInto(0, Buffer.alloc(128 * 1024));
    await new Promise((r) => setTimeout(r, 50));
    expect(store.asked.length).toBe(1); // the chunk read
    store.waiting.shift()!();
    expect((await first).equals(data.subarray(0, 128 * 1024))).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    // A window of 12 chunks from the one being read (a local store's is 16): the 11 after it.
    expect(store.asked.length).toBe(12);
    // The first group's fetches alone let its chunks decrypt: chunk 1 reads while the other groups still wait.
    for (let i = 0; i < 4; i++) store.waiting.shift()!();
    const second = await reader.readInto(MiB, Buffer.alloc(128 * 1024));
    expect(second.equals(data.subarray(MiB, MiB + 128 * 1024))).toBe(true);
    for (const go of store.waiting.splice(0)) go();
  }, 120_000);
});
