/**
 * Recycled block buffers (src/fs/block-buffers.ts): a slot is never handed out again while a worker job or a
 * chunk write still reads it, and open files sharing a few slots, written, read, truncated, committed and
 * abandoned all at once, always hold what a plain Buffer model holds while another writer scribbles over
 * every slot the moment it is free (so bytes still needed after their slot was freed show up as wrong content).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decryptAll } from '../src/core/encrypt.js';
import { sha3 } from '../src/core/hash.js';
import { BlockBuffers } from '../src/fs/block-buffers.js';
import { ChunkCache } from '../src/fs/chunk-cache.js';
import { ChunkWriter } from '../src/fs/chunk-writer.js';
import { BLOCK } from '../src/fs/file-content.js';
import { Sequencer, type SequencerDeps } from '../src/fs/sequencer.js';
import { WorkerPool } from '../src/lib/pool.js';
import { DiskStore } from '../src/store/disk-store.js';
import { EMPTY_ENTRY, type MetaEntry } from '../src/vault/meta-entry.js';
import { prng, seededBytes } from './helpers/inputs.js';

const MiB = 1024 * 1024;
const pool = new WorkerPool(2);
const dirs: string[] = [];
afterAll(async () => {
  await pool.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const nextMacrotask = () => new Promise((r) => setImmediate(r));

async function diskStore(): Promise<DiskStore> {
  const dir = await mkdtemp(join(tmpdir(), 'sefs-blocks-'));
  dirs.push(dir);
  // As the mount has it: workers write the chunk files, placed in batches.
  return new DiskStore(join(dir, 'chunks'), { verify: false, batch: true });
}

/**
 * Another writer, as greedy as can be: every macrotask it takes up to three free slots, scribbles over them and
 * gives them back. Whoever still reads a slot that was free by then reads garbage. Returns its stop.
 */
function scribbler(buffers: BlockBuffers): () => void {
  let running = true;
  const round = () => {
    if (!running) return;
    const taken = [buffers.take(), buffers.take(), buffers.take()];
    for (const t of taken) {
      t.fill(0xee);
      buffers.give(t);
    }
    setImmediate(round);
  };
  setImmediate(round);
  return () => (running = false);
}

describe('BlockBuffers', () => {
  it('hands out zeroed slots, then buffers of their own when none is free', () => {
    const buffers = new BlockBuffers(pool, 2);
    const [a, b, c] = [buffers.take(), buffers.take(), buffers.take()];
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(c.buffer).not.toBe(a.buffer);
    for (const x of [a, b, c]) expect(x.length === BLOCK && x.every((v) => v === 0)).toBe(true);
    a.fill(9);
    buffers.give(a);
    buffers.give(c); // not a slot: nothing to do
  });

  it('does not hand out a slot a worker job still reads; it comes back, zeroed, once the job has answered', async () => {
    const buffers = new BlockBuffers(pool, 2);
    const block = buffers.take();
    block.fill(1);
    // Both workers busy first, so the job is still waiting after the macrotask below.
    const busy = [0, 1].flatMap(() => pool.hashMany(Array.from({ length: 8 }, () => Buffer.alloc(8 * MiB))));
    let answered = false;
    const hashing = pool.hash(block).finally(() => (answered = true));
    buffers.give(block); // the block is dropped while its hash job runs
    await nextMacrotask();
    expect(answered).toBe(false);
    const other = buffers.take();
    const own = buffers.take();
    expect(other.byteOffset).not.toBe(block.byteOffset);
    expect(own.buffer).not.toBe(block.buffer); // the held slot was not free
    other.fill(2);
    expect((await hashing).equals(sha3(Buffer.alloc(BLOCK, 1)))).toBe(true);
    await Promise.all(busy);
    await nextMacrotask();
    const again = buffers.take();
    expect(again.buffer).toBe(block.buffer);
    expect(again.byteOffset).toBe(block.byteOffset);
    expect(again.every((v) => v === 0)).toBe(true);
  });

  it('a chunk write holds its block until it settles, through the retry that encrypts it again', async () => {
    const disk = await diskStore();
    // The chunk is in the store already; when asked, the store says it was removed meanwhile (reclamation), so
    // the writer encrypts the block once more. Meanwhile the block is given back and every slot is taken.
    let gate!: () => void;
    const asked = new Promise<void>((r) => (gate = r));
    let release!: () => void;
    const store = Object.assign(Object.create(disk) as DiskStore, {
      stillThere: async () => {
        gate();
        await new Promise<void>((r) => (release = r));
        return false;
      },
    });
    const buffers = new BlockBuffers(pool, 2);
    const data = seededBytes(BLOCK, 3);
    const keys = { own: sha3(data), n1: sha3(Buffer.from('n1')), n2: sha3(Buffer.from('n2')) };
    const [first] = await Promise.all(new ChunkWriter(disk, pool, 'fast').write([{ data, ...keys }]));
    await disk.sync(); // in place under its name (not a pending temp file)
    const block = buffers.take();
    data.copy(block);
    const writing = new ChunkWriter(store, pool, 'fast', buffers).write([{ data: block, ...keys }])[0]!;
    await asked;
    buffers.give(block);
    await nextMacrotask();
    const taken = [buffers.take(), buffers.take()];
    for (const t of taken) t.fill(0x55);
    expect(taken.filter((t) => t.buffer === block.buffer && t.byteOffset === block.byteOffset)).toEqual([]);
    release();
    expect((await writing).name.equals(first!.name)).toBe(true);
  });

  it('open files sharing a few slots hold what a model holds, through concurrent writes, reads, truncates, commits and abandons', async () => {
    const store = await diskStore();
    const buffers = new BlockBuffers(pool, 8);
    const stop = scribbler(buffers);

    const shared: SequencerDeps = { store, pool, cache: new ChunkCache(store, pool, 16 * MiB), profile: 'fast', memBudgetBlocks: 3, buffers };
    const contentOf = (entry: MetaEntry): Promise<Buffer> => {
      if (entry.kind === 'inline') return Promise.resolve(entry.data);
      const packed = new Map(entry.packed?.map((c, i) => [entry.dataMap.chunks[i]!.dstHash.toString('hex'), c]));
      return decryptAll(entry.dataMap, async (n) => packed.get(Buffer.from(n).toString('hex')) ?? store.get(Buffer.from(n)));
    };
    // One file's life: each step awaited in turn, while the staging of its blocks goes on in the background and
    // the other files run their own lives at the same time (the slots go from one file to another).
    const life = async (seed: number, memBudgetBlocks: number): Promise<void> => {
      const deps = { ...shared, memBudgetBlocks };
      const rand = prng(seed);
      let committed: MetaEntry = EMPTY_ENTRY;
      let committedModel = Buffer.alloc(0);
      let seq = new Sequencer(committed, deps);
      let model = Buffer.alloc(0);
      const expectRead = async (step: number, tail = false) => {
        // The last few MiB (tail): the blocks that staging is turning into chunks right now.
        const at = tail ? Math.max(0, model.length - Math.floor(rand() * 6 * MiB)) : Math.floor(rand() * (model.length + 1));
        const len = Math.floor(rand() * 3 * MiB);
        const got = await seq.read(at, len);
        expect(got.equals(model.subarray(at, at + len)), `file ${seed} step ${step}: read ${at}+${len}`).toBe(true);
      };
      for (let step = 0; step < 60; step++) {
        const r = rand();
        if (r < 0.55) {
          // Mostly a sequential run of 128 KiB writes (what stages blocks), sometimes one write anywhere.
          const sequential = rand() < 0.6;
          const size = sequential ? (1 + Math.floor(rand() * 40)) * 128 * 1024 : Math.floor(rand() * 300_000) + 1;
          if (model.length > 20 * MiB) {
            // Files stay small enough: start again from nothing.
            await seq.truncate(0);
            model = Buffer.alloc(0);
          }
          const offset = sequential ? model.length : Math.floor(rand() * (model.length + 200_000));
          const data = seededBytes(size, seed * 1000 + step);
          const writes: Promise<void>[] = [];
          for (let at = 0; at < size; at += 128 * 1024) writes.push(seq.write(offset + at, data.subarray(at, at + 128 * 1024)));
          // A read while the writes queue up (blocks being written and staged): each byte it sees is the old one
          // or the new one, never anything else.
          const during = seq.read(offset, size);
          await Promise.all(writes);
          const next = Buffer.alloc(Math.max(model.length, offset + size));
          model.copy(next);
          data.copy(next, offset);
          const seen = await during;
          let wrong = -1;
          for (let i = 0; i < seen.length && wrong < 0; i++) if (seen[i] !== model[offset + i] && seen[i] !== next[offset + i]) wrong = i;
          expect(wrong, `file ${seed} step ${step}: read during writes`).toBe(-1);
          model = next;
          // Reads of what was just written while its blocks are being staged (turned into chunks and dropped).
          for (let k = 0; k < 3; k++) await Promise.all([expectRead(step, true), nextMacrotask()]);
        } else if (r < 0.65) {
          const size = Math.floor(rand() * (model.length + MiB));
          await seq.truncate(size);
          const next = Buffer.alloc(size);
          model.copy(next, 0, 0, Math.min(size, model.length));
          model = next;
        } else if (r < 0.85) {
          // A read during the commit, which drops every block in memory once it is done.
          await Promise.all([
            seq.commit(async (entry) => {
              committed = entry;
            }),
            expectRead(step),
          ]);
          committedModel = model;
          expect((await contentOf(committed)).equals(model), `file ${seed} step ${step}: committed content`).toBe(true);
          if (rand() < 0.3) seq = new Sequencer(committed, deps); // reopened
        } else if (r < 0.9) {
          // Removed while open: its blocks go back now, whatever staging still runs; then it is opened again.
          await seq.exclusive(async () => void seq.abandon());
          seq = new Sequencer(committed, deps);
          model = committedModel;
        }
        expect(seq.size).toBe(model.length);
        await expectRead(step);
      }
      await seq.commit(async (entry) => {
        committed = entry;
      });
      expect((await contentOf(committed)).equals(model), `file ${seed}: final content`).toBe(true);
    };
    try {
      // One file staging under memory pressure (a few blocks at most), two staging behind a sequential writer.
      await Promise.all([life(1, 3), life(2, 16), life(3, 16)]);
    } finally {
      stop();
    }
  }, 300_000);
});
