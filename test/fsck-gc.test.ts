/**
 * fsck, gc and stats on real vaults: fsck names the visible path and the chunk of every kind of damage
 * (flipped bit, truncated, missing, swapped chunk, damaged entry, wrong keys with --deep); gc removes only
 * unreferenced chunks older than the grace period, never while an entry is unreadable, and loses nothing
 * when it runs during writes on a live mount; stats adds up.
 */
import { createHash } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PACK_LIMIT, encodeEntry, decodeEntry } from '../src/vault/meta-entry.js';
import { chunkRefOf } from '../src/core/chunk-ref.js';
import { hashPieces, newPieceKey } from '../src/core/pieces.js';
import { storeAsBrotli } from '../src/core/raw-brotli.js';
import { type MetaCodec, plainCodec } from '../src/vault/meta-codec.js';
import { fsck } from '../src/vault/fsck.js';
import { GcRefused, collectGarbage } from '../src/vault/gc.js';
import { vaultStats } from '../src/vault/stats.js';
import { initVault } from '../src/vault/config.js';
import { type OpenedVault, openVault } from '../src/vault/walk.js';
import { WorkerPool } from '../src/lib/pool.js';
import { ensureBuiltCli } from './helpers/build.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';
import { VaultBuilder, mountCli, sefs, unmountCli } from './helpers/vault.js';
import { writeFileSynced } from './fuse/helpers.js';

const MiB = 1024 * 1024;
const HOUR = 3600_000;
let dir: string;
let pool: WorkerPool;

beforeAll(async () => {
  ensureBuiltCli();
  dir = await mkdtemp(join(tmpdir(), 'sefs-fsck-gc-'));
  pool = new WorkerPool(2);
});
afterAll(async () => {
  await pool.close();
  if (!process.env.SEFS_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
});

const shared = textLike(40_000, 7);
const FILES = {
  '/a.txt': textLike(10_000, 1),
  '/dir/b.bin': seededBytes(50_000, 2),
  '/dir/sub/big.bin': seededBytes(3 * MiB + 5, 3), // 4 chunks
  '/dup1.txt': shared,
  '/dir/dup2.txt': shared,
  '/tiny': Buffer.from('hi'),
  '/dir/link': { symlink: '../a.txt' },
};

let n = 0;
/** A fresh unsealed vault holding FILES; returns it opened and the chunk names of each file. */
async function freshVault(): Promise<{ vault: OpenedVault; chunks: Record<string, string[]> }> {
  const root = join(dir, `v${n++}`);
  await initVault(root);
  const builder = new VaultBuilder(root, plainCodec);
  const chunks = await builder.addAll(FILES);
  await builder.dir('/empty');
  return { vault: await openVault(root), chunks };
}

async function flipBit(path: string, offset = 100): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset % bytes.length]! ^= 0x10;
  await writeFile(path, bytes);
}

/** Every chunk file's hex name. */
async function chunkNames(vault: OpenedVault): Promise<string[]> {
  const out: string[] = [];
  for await (const name of vault.store.names()) out.push(name.toString('hex'));
  return out.sort();
}

describe('fsck', () => {
  it('finds nothing wrong in a sound vault, and counts what it checked', async () => {
    const { vault, chunks } = await freshVault();
    const distinct = new Set(Object.values(chunks).flat());
    for (const deep of [false, true]) {
      const r = await fsck(vault, { deep, pool });
      expect(r.damaged).toEqual([]);
      expect(r).toMatchObject({ files: 6, symlinks: 1, directories: 3, chunks: distinct.size, deep });
    }
    const cli = await sefs('fsck', vault.root);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/no damage/);
  });

  it('names the visible path and chunk of a flipped bit, a truncated, a missing and a swapped chunk, and a damaged entry', async () => {
    const { vault, chunks } = await freshVault();
    const big = chunks['/dir/sub/big.bin']!;
    await flipBit(vault.store.pathOf(chunks['/dir/b.bin']![1]!));
    await unlink(vault.store.pathOf(big[3]!));
    await truncate(vault.store.pathOf(big[0]!), 10);
    // A valid chunk of another file in place of this one: its bytes do not hash to the name.
    await writeFile(vault.store.pathOf(chunks['/a.txt']![2]!), await readFile(vault.store.pathOf(chunks['/dup1.txt']![0]!)));
    await flipBit(join(vault.paths.meta, 'tiny'), 5);

    const r = await fsck(vault, { pool });
    const byPath = Object.fromEntries(r.damaged.map((d) => [d.path, d]));
    expect(Object.keys(byPath).sort()).toEqual(['/a.txt', '/dir/b.bin', '/dir/sub/big.bin', '/tiny']);
    expect(byPath['/dir/b.bin']!.chunks).toEqual([expect.objectContaining({ index: 1, chunk: chunks['/dir/b.bin']![1], problem: 'corrupt' })]);
    expect(byPath['/dir/sub/big.bin']!.chunks.map((c) => [c.index, c.chunk, c.problem])).toEqual([
      [0, big[0], 'corrupt'],
      [3, big[3], 'missing'],
    ]);
    expect(byPath['/a.txt']!.chunks).toEqual([expect.objectContaining({ index: 2, problem: 'corrupt' })]);
    expect(byPath['/tiny']!.entryError).toMatch(/^metadata entry: /);

    const cli = await sefs('fsck', vault.root, '--json');
    expect(cli.code).toBe(1);
    const json = JSON.parse(cli.stdout) as { ok: boolean; damaged: { path: string; chunks: { chunk: string }[] }[] };
    expect(json.ok).toBe(false);
    expect(json.damaged.map((d) => d.path)).toEqual(['/a.txt', '/dir/b.bin', '/dir/sub/big.bin', '/tiny']);
    const text = await sefs('fsck', vault.root);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`DAMAGED /dir/b.bin`);
    expect(text.stdout).toContain(`chunk 3 ${big[3]}: missing`);
    expect(text.stdout).toMatch(/4 damaged files/);
  });

  it('reports every file sharing a damaged chunk', async () => {
    const { vault, chunks } = await freshVault();
    await flipBit(vault.store.pathOf(chunks['/dup1.txt']![0]!));
    const r = await fsck(vault, { pool });
    expect(r.damaged.map((d) => d.path)).toEqual(['/dir/dup2.txt', '/dup1.txt']);
  });

  it('with --deep, finds an entry whose keys do not decrypt its chunks (the plain check cannot)', async () => {
    const { vault } = await freshVault();
    const path = join(vault.paths.meta, 'dir', 'b.bin');
    const entry = decodeEntry(await readFile(path));
    if (entry.kind !== 'map') throw new Error('expected a DataMap entry');
    entry.dataMap.chunks[1]!.srcHash[0]! ^= 1; // keys chunk 1 and 2 (and pads chunk 1)
    await writeFile(path, encodeEntry(entry));
    expect((await fsck(vault, { pool })).damaged).toEqual([]);
    const deep = await fsck(vault, { pool, deep: true });
    expect(deep.damaged.map((d) => d.path)).toEqual(['/dir/b.bin']);
    expect(deep.damaged[0]!.chunks.map((c) => c.problem).every((p) => p === 'undecryptable' || p === 'wrong-content')).toBe(true);
    expect((await sefs('fsck', vault.root, '--deep')).code).toBe(1);
  });

  it.each([
    ['keyed (kind 5)', newPieceKey()],
    ['SHA-256 (kind 4)', undefined],
  ])("checks an entry's piece tags against its chunks, %s: sound ones pass, a damaged one is named", async (_kind, key) => {
    const { vault, chunks } = await freshVault();
    const path = join(vault.paths.meta, 'dir', 'sub', 'big.bin');
    const entry = decodeEntry(await readFile(path));
    if (entry.kind !== 'map') throw new Error('expected a DataMap entry');
    // Random data is stored raw: give its first chunk the piece hashes a mount's writer would have kept.
    const stored = await readFile(vault.store.pathOf(chunks['/dir/sub/big.bin']![0]!));
    const plainAt = storeAsBrotli(Buffer.alloc(entry.dataMap.chunks[0]!.srcSize)).plainAt!;
    entry.pieces = [hashPieces(stored, plainAt, key, chunkRefOf(entry.dataMap, 0))];
    await writeFile(path, encodeEntry(entry));
    expect((await readFile(path)).readUInt8(5)).toBe(key ? 5 : 4);
    expect((await fsck(vault, { pool })).damaged).toEqual([]);
    entry.pieces[0]!.hashes[20]! ^= 1;
    await writeFile(path, encodeEntry(entry));
    for (const deep of [false, true]) {
      const r = await fsck(vault, { pool, deep });
      expect(r.damaged.map((d) => [d.path, d.chunks.map((c) => [c.index, c.problem])])).toEqual([['/dir/sub/big.bin', [[0, 'wrong-content']]]]);
    }
  });
});

describe('gc', () => {
  /** A vault with orphans: /dir/b.bin and /a.txt removed; every chunk file backdated by two hours except a.txt's. */
  async function vaultWithOrphans() {
    const { vault, chunks } = await freshVault();
    const past = (Date.now() - 2 * HOUR) / 1000;
    for (const hex of await chunkNames(vault)) await utimes(vault.store.pathOf(hex), past, past);
    const now = Date.now() / 1000;
    for (const hex of chunks['/a.txt']!) await utimes(vault.store.pathOf(hex), now, now);
    await unlink(join(vault.paths.meta, 'dir', 'b.bin'));
    await unlink(join(vault.paths.meta, 'a.txt'));
    return { vault, chunks, old: chunks['/dir/b.bin']!, young: chunks['/a.txt']! };
  }

  it('removes unreferenced chunks older than the grace period, keeps young and referenced ones; dry run removes nothing', async () => {
    const { vault, old, young } = await vaultWithOrphans();
    const before = await chunkNames(vault);
    const oldBytes = (await Promise.all(old.map((h) => stat(vault.store.pathOf(h))))).reduce((s, st) => s + st.size, 0);

    const dry = await collectGarbage(vault, { dryRun: true });
    expect(dry).toMatchObject({ sweptChunks: 3, freedBytes: oldBytes, youngChunks: 3, referenced: before.length - 6 });
    expect(await chunkNames(vault)).toEqual(before);

    const cli = await sefs('gc', vault.root, '--json');
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ swept_chunks: 3, freed_bytes: oldBytes, young_unreferenced_chunks: 3, dry_run: false });
    expect(await chunkNames(vault)).toEqual(before.filter((h) => !old.includes(h)));
    expect((await fsck(vault, { pool, deep: true })).damaged).toEqual([]);

    // With no grace, the young orphans go too; referenced chunks stay whatever their age.
    const r = await collectGarbage(vault, { graceMs: 0 });
    expect(r).toMatchObject({ sweptChunks: 3, youngChunks: 0 });
    expect(await chunkNames(vault)).toEqual(before.filter((h) => !old.includes(h) && !young.includes(h)));
    expect((await fsck(vault, { pool, deep: true })).damaged).toEqual([]);
    expect((await collectGarbage(vault, { graceMs: 0 })).sweptChunks).toBe(0);
  });

  it('marks an entry moved during the walk from a directory not yet walked into one already walked', async () => {
    const { vault, chunks } = await freshVault();
    const past = (Date.now() - 2 * HOUR) / 1000;
    for (const hex of await chunkNames(vault)) await utimes(vault.store.pathOf(hex), past, past);
    // The walk lists / first and /dir/sub last: move /dir/sub/big.bin into / once / has been listed.
    let moved = false;
    const codec: MetaCodec = {
      ...plainCodec,
      decodeName(stored) {
        if (!moved && stored === 'a.txt') {
          moved = true;
          renameSync(join(vault.paths.meta, 'dir', 'sub', 'big.bin'), join(vault.paths.meta, 'big.bin'));
        }
        return stored;
      },
    };
    const r = await collectGarbage({ ...vault, codec });
    expect(moved).toBe(true);
    expect(r.passes).toBeGreaterThan(1);
    expect(r.sweptChunks).toBe(0);
    for (const hex of chunks['/dir/sub/big.bin']!) expect(existsSync(vault.store.pathOf(hex))).toBe(true);
  });

  it('deletes nothing while an entry cannot be read', async () => {
    const { vault } = await vaultWithOrphans();
    const before = await chunkNames(vault);
    await flipBit(join(vault.paths.meta, 'dup1.txt'), 20);
    await expect(collectGarbage(vault, { graceMs: 0 })).rejects.toThrow(GcRefused);
    const cli = await sefs('gc', vault.root, '--grace-minutes', '0');
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^sefs: 1 metadata entries cannot be read \(\/dup1.txt: .*Nothing was deleted\n$/);
    expect(await chunkNames(vault)).toEqual(before);
  });
});

describe('stats', () => {
  it('counts files, logical, distinct, stored and unreferenced bytes', async () => {
    const { vault, chunks, old } = await (async () => {
      const { vault, chunks } = await freshVault();
      await unlink(join(vault.paths.meta, 'dir', 'b.bin'));
      return { vault, chunks, old: chunks['/dir/b.bin']! };
    })();
    const sizeOf = async (hexes: string[]) => (await Promise.all(hexes.map((h) => stat(vault.store.pathOf(h))))).reduce((s, st) => s + st.size, 0);
    const all = await chunkNames(vault);
    const live = Object.entries(FILES).filter(([p, f]) => Buffer.isBuffer(f) && p !== '/dir/b.bin') as [string, Buffer][];
    const logical = live.reduce((s, [, f]) => s + f.length, 0);
    const s = await vaultStats(vault);
    expect(s).toMatchObject({
      sealed: false,
      metaMode: 0o700,
      files: 5,
      directories: 3,
      symlinks: 1,
      logicalBytes: logical,
      uniqueBytes: logical - shared.length,
      storedChunks: all.length,
      storedBytes: await sizeOf(all),
      unreferencedChunks: 3,
      unreferencedBytes: await sizeOf(old),
      missingChunks: 0,
      damagedEntries: 0,
    });
    expect(s.dedupRatio).toBeCloseTo(logical / (logical - shared.length), 6);
    expect(chunks['/dup1.txt']).toEqual(chunks['/dir/dup2.txt']);

    const text = await sefs('stats', vault.root);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^metadata +UNSEALED/m);
    expect(text.stdout).toMatch(/^files +5 \(3 directories, 1 symlinks\)/m);
    const json = JSON.parse((await sefs('stats', vault.root, '--json')).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ sealed: false, files: 5, logical_bytes: logical, unreferenced_chunks: 3, stored_chunks: all.length });
  });
});

describe('gc on a mounted vault', () => {
  let root: string;
  let mnt: string;
  beforeEach(async () => {
    root = join(dir, `live${n++}`);
    mnt = join(dir, `mnt${n++}`);
  });
  afterAll(async () => {
    if (mnt) await unmountCli(mnt);
  });

  it('loses nothing when gc runs again and again during writes, renames and rewrites', async () => {
    expect((await sefs('init', root)).code).toBe(0);
    await mountCli(root, mnt);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const expected = new Map<string, string>();
    const put = async (rel: string, data: Buffer) => {
      await writeFileSynced(join(mnt, rel), data); // committed now: the test counts chunks right after
      expected.set(rel, sha(data));
    };
    // An old vault: files, some of them deleted, every chunk backdated past the grace period.
    await mkdir(join(mnt, 'a'));
    await mkdir(join(mnt, 'b'));
    // Past PACK_LIMIT: these files' chunks are in the store (smaller ones are packed into their entries).
    for (let i = 0; i < 30; i++) await put(`a/old-${i}`, seededBytes(PACK_LIMIT + 1000 + i * 997, 100 + i));
    await put('a/old-big', seededBytes(5 * MiB, 99));
    const chunkDir = join(root, 'chunks');
    const countChunks = async () => {
      let n = 0;
      for (const a of await readdir(chunkDir)) for (const b of await readdir(join(chunkDir, a))) n += (await readdir(join(chunkDir, a, b))).filter((f) => /^[0-9a-f]{64}$/.test(f)).length;
      return n;
    };
    const beforeUnlinks = await countChunks();
    for (let i = 0; i < 10; i++) {
      await unlink(join(mnt, 'a', `old-${i}`));
      expected.delete(`a/old-${i}`);
    }
    await unmountCli(mnt);
    // The mount reclaimed the deleted old files' chunks by itself.
    expect(beforeUnlinks - (await countChunks())).toBeGreaterThanOrEqual(10 * 3);
    const past = (Date.now() - 2 * HOUR) / 1000;
    for (const a of await readdir(chunkDir)) for (const b of await readdir(join(chunkDir, a))) for (const f of await readdir(join(chunkDir, a, b))) await utimes(join(chunkDir, a, b, f), past, past);
    await mountCli(root, mnt);

    // Writer: new files (large ones are staged chunk by chunk before their commit), appends, rewrites,
    // and old files moved back and forth between directories while gc walks.
    let writing = true;
    const rand = prng(5);
    const writer = (async () => {
      for (let round = 0; round < 12; round++) {
        await put(`b/new-${round}`, seededBytes(round % 3 === 0 ? 4 * MiB + round : 20_000 + round, 200 + round));
        const moved = `old-${10 + (round % 20)}`;
        const [from, to] = round % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
        if (expected.has(`${from}/${moved}`)) {
          await rename(join(mnt, from, moved), join(mnt, to, moved));
          expected.set(`${to}/${moved}`, expected.get(`${from}/${moved}`)!);
          expected.delete(`${from}/${moved}`);
        }
        const extra = seededBytes(1 + Math.floor(rand() * 100_000), 300 + round);
        await appendFile(join(mnt, 'b', 'log'), extra);
        const log = await readFile(join(mnt, 'b', 'log'));
        expected.set('b/log', sha(log));
      }
    })();
    // A large file kept open: past 64 staged chunks the mount renames them into place before the commit
    // names them; only the grace period keeps gc off them.
    const streamer = (async () => {
      const fh = await open(join(mnt, 'b', 'stream'), 'w');
      const parts: Buffer[] = [];
      for (let i = 0; i < 80; i++) {
        const part = seededBytes(MiB, 400 + i);
        parts.push(part);
        await fh.write(part);
        if (i % 8 === 7) await new Promise((r) => setTimeout(r, 150));
      }
      await fh.close();
      expected.set('b/stream', sha(Buffer.concat(parts)));
    })();
    const writers = Promise.all([writer, streamer]).finally(() => {
      writing = false;
    });
    const gcRuns: Record<string, number>[] = [];
    while (writing) {
      const r = await sefs('gc', root, '--json');
      expect(r.code, r.stderr).toBe(0);
      gcRuns.push(JSON.parse(r.stdout) as Record<string, number>);
    }
    await writers;
    gcRuns.push(JSON.parse((await sefs('gc', root, '--json')).stdout) as Record<string, number>);

    expect(gcRuns.length).toBeGreaterThan(1);
    expect(gcRuns.every((r) => r.mounted)).toBe(true); // answered by the mount, which sees writes in flight
    const check = async () => {
      for (const [rel, digest] of expected) expect(sha(await readFile(join(mnt, rel))), rel).toBe(digest);
    };
    await check();
    await unmountCli(mnt);
    const report = await fsck(await openVault(root), { pool, deep: true });
    expect(report.damaged).toEqual([]);
    expect(report.files).toBe(expected.size);
    await mountCli(root, mnt);
    await check();
    await unmountCli(mnt);
  });
});
