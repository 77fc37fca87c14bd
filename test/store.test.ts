/** The chunk stores: DiskStore writes real files in a fan-out tree, atomically; MemoryStore behaves the same. */
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha3 } from '../src/core/hash.js';
import type { ChunkStore } from '../src/store/chunk-store.js';
import { DiskStore, writeChunkTempSync } from '../src/store/disk-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { seededBytes } from './helpers/inputs.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sefs-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const chunk = (seed: number, size = 1000): { name: Buffer; content: Buffer } => {
  const content = seededBytes(size, seed);
  return { name: sha3(content), content };
};

async function allNames(store: ChunkStore): Promise<string[]> {
  const names: string[] = [];
  for await (const n of store.names()) names.push(n.toString('hex'));
  return names.sort();
}

describe('DiskStore', () => {
  it('writes each chunk to DIR/ab/cd/<hex> and reads it back', async () => {
    const store = new DiskStore(dir);
    const c = chunk(1);
    const hex = c.name.toString('hex');
    await store.put(c.name, c.content);
    await store.sync();
    const path = join(dir, hex.slice(0, 2), hex.slice(2, 4), hex);
    expect(store.pathOf(c.name)).toBe(path);
    expect((await readFile(path)).equals(c.content)).toBe(true);
    expect((await store.get(c.name)).equals(c.content)).toBe(true);
    expect(await store.has(c.name)).toBe(true);
    // Nothing else is left in the tree: no temp files.
    expect(await readdir(join(dir, hex.slice(0, 2), hex.slice(2, 4)))).toEqual([hex]);
  });

  it('a second put of the same name keeps the file and refreshes its mtime (gc spares young chunks)', async () => {
    const store = new DiskStore(dir);
    const c = chunk(2);
    await store.put(c.name, c.content);
    const before = await stat(store.pathOf(c.name));
    await new Promise((r) => setTimeout(r, 20));
    await store.put(c.name, c.content);
    const after = await stat(store.pathOf(c.name));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBeGreaterThan(before.mtimeMs);
  });

  it('a put over a torn chunk file (wrong size) writes it again', async () => {
    const store = new DiskStore(dir);
    const c = chunk(3);
    await store.put(c.name, c.content);
    await writeFile(store.pathOf(c.name), c.content.subarray(0, 10));
    await store.put(c.name, c.content);
    expect((await store.get(c.name)).equals(c.content)).toBe(true);
  });

  it('get verifies the bytes against the name (unless told not to)', async () => {
    const store = new DiskStore(dir);
    const c = chunk(3);
    await store.put(c.name, c.content);
    const damaged = Buffer.from(c.content);
    damaged[10]! ^= 4;
    await writeFile(store.pathOf(c.name), damaged);
    await expect(store.get(c.name)).rejects.toMatchObject({ code: 'ChunkHashMismatch', chunkName: c.name.toString('hex') });
    expect((await new DiskStore(dir, { verify: false }).get(c.name)).equals(damaged)).toBe(true);
  });

  it('a missing chunk is a ChunkNotFound naming it', async () => {
    const store = new DiskStore(dir);
    const c = chunk(4);
    await expect(store.get(c.name)).rejects.toMatchObject({ code: 'ChunkNotFound', chunkName: c.name.toString('hex') });
    expect(await store.has(c.name)).toBe(false);
  });

  it('delete, has and names', async () => {
    const store = new DiskStore(dir, { fsync: false });
    const chunks = Array.from({ length: 20 }, (_, i) => chunk(100 + i, 50 + i));
    await Promise.all(chunks.map((c) => store.put(c.name, c.content)));
    expect(await allNames(store)).toEqual(chunks.map((c) => c.name.toString('hex')).sort());
    await store.delete(chunks[0]!.name);
    await store.delete(chunks[0]!.name); // deleting what is gone is fine
    expect(await store.has(chunks[0]!.name)).toBe(false);
    expect(await store.has(chunks[1]!.name)).toBe(true);
    expect(await allNames(store)).toEqual(chunks.slice(1).map((c) => c.name.toString('hex')).sort());
  });

  it('names skips files that are not chunks; removeLeftovers removes temp files of interrupted puts', async () => {
    const store = new DiskStore(dir);
    const c = chunk(5);
    await store.put(c.name, c.content);
    const sub = join(dir, 'ab', 'cd');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, '.tmp-abcd-123456'), 'half a chunk');
    await writeFile(join(sub, '.tmp-abcd-654321'), 'another');
    await writeFile(join(sub, 'README'), 'not a chunk');
    expect(await allNames(store)).toEqual([c.name.toString('hex')]);
    expect(await store.removeLeftovers()).toBe(2);
    expect((await readdir(sub)).sort()).toEqual(['README']);
    expect(await store.removeLeftovers()).toBe(0);
  });

  it('an empty or missing root lists no names', async () => {
    expect(await allNames(new DiskStore(join(dir, 'nothing-here')))).toEqual([]);
  });
});

describe('chunks written by a worker thread (writeChunkTempSync + adopt)', () => {
  it.each([false, true])('batch %s: a temp file beside the final place, adopted as a put; durable after sync', async (batch) => {
    const store = new DiskStore(dir, { batch });
    const c = chunk(11, 50_000);
    const temp = writeChunkTempSync(store.localRoot, c.name, c.content)!;
    expect(temp.startsWith(join(store.pathOf(c.name), '..'))).toBe(true);
    await store.adopt(c.name, temp);
    expect((await store.get(c.name)).equals(c.content)).toBe(true);
    await store.sync();
    expect((await readFile(store.pathOf(c.name))).equals(c.content)).toBe(true);
    expect(await allNames(store)).toEqual([c.name.toString('hex')]);
    expect((await readdir(join(store.pathOf(c.name), '..'))).filter((f) => f !== c.name.toString('hex'))).toEqual([]);
  });

  it('an existing chunk is reused (mtime refreshed, nothing written); a torn one is written again', async () => {
    const store = new DiskStore(dir);
    const c = chunk(12, 20_000);
    await store.put(c.name, c.content);
    const old = new Date(Date.now() - 3600_000);
    const { utimes } = await import('node:fs/promises');
    await utimes(store.pathOf(c.name), old, old);
    expect(writeChunkTempSync(store.localRoot, c.name, c.content)).toBeUndefined();
    expect((await stat(store.pathOf(c.name))).mtimeMs).toBeGreaterThan(old.getTime() + 1000);
    await writeFile(store.pathOf(c.name), c.content.subarray(0, 100)); // torn by a power loss
    const temp = writeChunkTempSync(store.localRoot, c.name, c.content);
    expect(temp).toBeDefined();
    await store.adopt(c.name, temp);
    expect((await store.get(c.name)).equals(c.content)).toBe(true);
  });

  it("a worker's chunk write makes missing fan-out directories, and never writes through a planted link", async () => {
    const root = join(dir, 'chunks');
    const c = chunk(14, 30_000);
    const hex = c.name.toString('hex');
    // Neither ab nor ab/cd there yet, then only ab/cd missing: both made, the chunk written.
    expect(writeChunkTempSync(root, c.name, c.content)).toBeDefined();
    const d = chunk(15, 30_000);
    await mkdir(join(root, d.name.toString('hex').slice(0, 2)), { recursive: true });
    expect(writeChunkTempSync(root, d.name, d.content)).toBeDefined();
    // ab a link to a victim directory, with and without its cd there: refused, nothing made or left in the victim.
    const victim = join(dir, 'victim');
    await mkdir(victim);
    await rm(join(root, hex.slice(0, 2)), { recursive: true });
    const { symlink } = await import('node:fs/promises');
    await symlink(victim, join(root, hex.slice(0, 2)));
    expect(() => writeChunkTempSync(root, c.name, c.content)).toThrow();
    expect(await readdir(victim)).toEqual([]);
    await mkdir(join(victim, hex.slice(2, 4)));
    expect(() => writeChunkTempSync(root, c.name, c.content)).toThrow();
    expect(await readdir(join(victim, hex.slice(2, 4)))).toEqual([]);
  });

  it('a chunk adopted while the same chunk waits in the batch leaves no second file', async () => {
    const store = new DiskStore(dir, { batch: true });
    const c = chunk(13, 9_000);
    await store.put(c.name, c.content);
    const temp = writeChunkTempSync(store.localRoot, c.name, c.content)!;
    await store.adopt(c.name, temp);
    await store.sync();
    expect(await readdir(join(store.pathOf(c.name), '..'))).toEqual([c.name.toString('hex')]);
  });
});

describe('MemoryStore', () => {
  it('put, get, has, delete, names', async () => {
    const store = new MemoryStore();
    const [a, b] = [chunk(6), chunk(7)];
    await store.put(a.name, a.content);
    await store.put(b.name, b.content);
    await store.put(a.name, b.content); // a no-op: names are content hashes
    expect((await store.get(a.name)).equals(a.content)).toBe(true);
    expect(await allNames(store)).toEqual([a, b].map((c) => c.name.toString('hex')).sort());
    await store.delete(a.name);
    expect(await store.has(a.name)).toBe(false);
    await expect(store.get(a.name)).rejects.toMatchObject({ code: 'ChunkNotFound' });
  });
});

describe('every store', () => {
  it.each([
    ['DiskStore', () => new DiskStore(dir)],
    ['DiskStore, batched', () => new DiskStore(dir, { batch: true })],
    ['MemoryStore', () => new MemoryStore()],
  ])('%s: get hands the caller its own buffer (moving or changing it leaves the store intact)', async (_, make) => {
    const store: ChunkStore = make();
    const c = chunk(8, 100_000);
    await store.put(c.name, c.content);
    const first = await store.get(c.name);
    // What the mount does with a fetched chunk: move its memory to a worker thread.
    structuredClone(first.buffer, { transfer: [first.buffer as ArrayBuffer] });
    expect(first.length).toBe(0);
    const second = await store.get(c.name);
    second.fill(0);
    expect((await store.get(c.name)).equals(c.content)).toBe(true);
  });
});
