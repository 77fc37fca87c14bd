/**
 * Space comes back by itself: the mount removes chunks no file names any more seconds after the commit or
 * removal that dropped them, without `sefs gc`, and never one that another file still names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, link, mkdir, readFile, rename, unlink } from 'node:fs/promises';
// Writes are fsynced: these tests look at the chunk store right after them (a close alone is written back later).
import { CLI, KiB, MiB, TestMount, disposeAll, fuseSuite, run, seededBytes, sh, sha256, writeFileSynced as writeFile } from './helpers.js';

fuseSuite();

let m: TestMount;
beforeAll(async () => {
  m = await TestMount.create('space');
});
afterAll(() => disposeAll());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the chunk store holds at most `bytes` (the sweep runs a moment after the last change). */
async function storeShrinksTo(bytes: number, ms = 20_000): Promise<number> {
  let now = await m.chunkBytes();
  for (let waited = 0; now > bytes && waited < ms; waited += 250) {
    await sleep(250);
    now = await m.chunkBytes();
  }
  return now;
}

describe('space reclaimed by the mount', () => {
  it('200 fsynced random rewrites of an 8 MiB file leave the store within a small factor of the live data', async () => {
    const f = m.at('rewritten.bin');
    await writeFile(f, seededBytes(8 * MiB, 1));
    await sh(`python3 - '${f}' <<'PY'
import os, random, sys
random.seed(7)
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(200):
    os.pwrite(fd, os.urandom(4096), random.randrange(0, 8 * 1024 * 1024 - 4096))
    os.fsync(fd)
os.close(fd)
PY`, { timeoutMs: 240_000 });
    const left = await storeShrinksTo(3 * 8 * MiB);
    process.stderr.write(`[space] chunk store after 200 fsynced rewrites of an 8 MiB file: ${(left / MiB).toFixed(1)} MiB\n`);
    expect(left).toBeLessThanOrEqual(3 * 8 * MiB);
    expect(left).toBeGreaterThanOrEqual(8 * MiB); // the live file is there
  });

  it('20,000 small random writes without fsync into a 64 MiB file store about the file, not a chunk per write', async () => {
    const f = m.at('db.bin');
    await writeFile(f, seededBytes(64 * MiB, 2));
    const before = await m.chunkBytes();
    await sh(`python3 - '${f}' <<'PY'
import os, random, sys
random.seed(8)
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(20000):
    os.pwrite(fd, os.urandom(16), random.randrange(0, 64 * 1024 * 1024 - 16))
os.close(fd)
PY`, { timeoutMs: 240_000 });
    const left = await storeShrinksTo(before + 3 * 64 * MiB);
    process.stderr.write(`[space] chunk store after 20,000 16-byte pwrites into a 64 MiB file: ${(left / MiB).toFixed(1)} MiB (before: ${(before / MiB).toFixed(1)})\n`);
    // The old version goes too once the new one is committed: the store holds about one copy of the file.
    expect(await storeShrinksTo(before + 2 * 64 * MiB)).toBeLessThanOrEqual(before + 2 * 64 * MiB);
  });

  it('two files sharing chunks: removing one leaves the other whole; removing both frees the chunks', async () => {
    const data = seededBytes(6 * MiB + 5, 3);
    await sleep(3000); // earlier tests' garbage is gone
    const before = new Set(await m.chunkNames());
    const base = await m.chunkBytes();
    await writeFile(m.at('twin-a.bin'), data);
    await writeFile(m.at('twin-b.bin'), data);
    const twins = (await m.chunkNames()).filter((hex) => !before.has(hex));
    expect(twins.length).toBe(7); // stored once: 7 chunks of 6 MiB + 5 bytes
    await unlink(m.at('twin-a.bin'));
    await sleep(4000); // several sweeps' time
    expect(sha256(await readFile(m.at('twin-b.bin')))).toBe(sha256(data));
    const after = new Set(await m.chunkNames());
    expect(twins.filter((hex) => !after.has(hex))).toEqual([]);
    await m.remount(); // the startup sweep keeps them too
    expect(sha256(await readFile(m.at('twin-b.bin')))).toBe(sha256(data));
    await unlink(m.at('twin-b.bin'));
    expect(await storeShrinksTo(base)).toBeLessThanOrEqual(base);
    const left = new Set(await m.chunkNames());
    expect(twins.filter((hex) => left.has(hex))).toEqual([]);
  });

  it('a file removed while open keeps its chunks until it is closed, then they go', async () => {
    const data = seededBytes(5 * MiB, 4);
    const base = await m.chunkBytes();
    await writeFile(m.at('open-gone.bin'), data);
    const out = await sh(`python3 - '${m.at('open-gone.bin')}' <<'PY'
import os, sys, time, hashlib
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
time.sleep(4)
data = b''
while True:
    b = os.read(fd, 1 << 20)
    if not b: break
    data += b
print(hashlib.sha256(data).hexdigest())
os.close(fd)
PY`);
    expect(out.stdout.trim()).toBe(sha256(data));
    expect(await storeShrinksTo(base)).toBeLessThanOrEqual(base);
  });

  it('are counted while the mount serves: renames, links, rewrites and removals during the count lose no chunk, and leftovers go after it', async () => {
    // Each node of meta/ takes 30 ms to count: about 3 s for this vault, during which the changes below land.
    const c = await TestMount.create('count', { env: { SEFS_TEST_COUNT_SLOW_MS: '30' } });
    const files = new Map<string, Buffer>();
    await mkdir(c.at('a'));
    await mkdir(c.at('b'));
    for (let i = 0; i < 40; i++) {
      const path = i < 20 ? `a/f${i}` : `b/g${i}`;
      files.set(path, seededBytes(300 * KiB, 600 + i)); // past the packing limit: chunks in the store
      await writeFile(c.at(path), files.get(path)!);
    }
    const kept = new Set(await c.chunkNames());
    await c.unmount();
    // A chunk file a crash left behind (named like a chunk, named by no entry).
    const leftover = 'ab'.repeat(32);
    await mkdir(c.chunkPath(leftover).slice(0, -65), { recursive: true });
    await copyFile(c.chunkPath([...kept][0]!), c.chunkPath(leftover));
    const counts = async () => ((await c.log()).match(/counted what the files name in/g) ?? []).length;
    const before = await counts(); // the first mount's
    await c.mount();
    // A rename moving entries from where the walk has not been to where it has, a link (an entry becomes a
    // record), a rewrite and a removal, while the count runs.
    await rename(c.at('b'), c.at('a', 'moved'));
    for (const [path, data] of [...files]) if (path.startsWith('b/')) (files.delete(path), files.set(`a/moved/${path.slice(2)}`, data));
    await link(c.at('a/f2'), c.at('f2-link'));
    files.set('f2-link', files.get('a/f2')!);
    files.set('a/f0', seededBytes(300 * KiB, 700));
    await writeFile(c.at('a/f0'), files.get('a/f0')!);
    await unlink(c.at('a/f1'));
    files.delete('a/f1');
    expect(await counts(), 'the changes landed while the count ran').toBe(before);
    for (const [path, data] of files) expect(sha256(await readFile(c.at(path))), path).toBe(sha256(data));
    for (let waited = 0; (await counts()) === before && waited < 60_000; waited += 250) await sleep(250);
    expect(await counts()).toBe(before + 1);
    // Counted again after the rename: exact, so what no file names goes (the leftover, a/f1, a/f0's old chunks).
    let left = new Set(await c.chunkNames());
    for (let waited = 0; left.has(leftover) && waited < 20_000; waited += 250) (await sleep(250), (left = new Set(await c.chunkNames())));
    expect(left.has(leftover), 'the leftover chunk file is removed').toBe(false);
    for (const [path, data] of files) expect(sha256(await readFile(c.at(path))), path).toBe(sha256(data));
    await c.remount();
    for (const [path, data] of files) expect(sha256(await readFile(c.at(path))), `${path} after a remount`).toBe(sha256(data));
    await c.unmount();
    await run(process.execPath, [CLI, 'fsck', c.vault]); // every chunk an entry names is there
  });

  it('a count made again after a rename waits for a link still running, whose record it would take for an orphan', async () => {
    // The first count sees the rename below and is made again; the link, paused between its record's fsync and
    // the stub, is still running then: a walk made in that gap would find the record named by no stub.
    const c = await TestMount.create('count-link', { env: { SEFS_TEST_COUNT_SLOW_MS: '20', SEFS_TEST_LINK_PAUSE_MS: '2500' } });
    const data = new Map<string, Buffer>();
    for (let i = 0; i < 30; i++) {
      data.set(`f${i}`, seededBytes(300 * KiB, 800 + i));
      await writeFile(c.at(`f${i}`), data.get(`f${i}`)!);
    }
    await c.remount();
    await rename(c.at('f29'), c.at('f29-renamed'));
    data.set('f29-renamed', data.get('f29')!);
    data.delete('f29');
    await link(c.at('f3'), c.at('f3-link'));
    data.set('f3-link', data.get('f3')!);
    const counted = async () => ((await c.log()).match(/counted what the files name in/g) ?? []).length;
    for (let waited = 0; (await counted()) < 2 && waited < 60_000; waited += 250) await sleep(250);
    expect(await c.log()).not.toMatch(/hard-link records no name reaches/);
    await c.remount();
    for (const [path, bytes] of data) expect(sha256(await readFile(c.at(path))), path).toBe(sha256(bytes));
    await c.unmount();
    await run(process.execPath, [CLI, 'fsck', c.vault]);
  });
});
