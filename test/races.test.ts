/**
 * Races between a commit and the namespace, driven through the mount's operations without FUSE (so each
 * interleaving can be forced): a rename or unlink while a commit is placing its entry, an open while the
 * entry it loads is unlinked, and rm -r of a directory whose file's chunks wait to be reclaimed. After each,
 * no entry may name a missing chunk (fsck), the file is where the namespace says, and garbage goes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { FsContext } from '../src/fs/context.js';
import * as dir from '../src/fs/ops-dir.js';
import * as file from '../src/fs/ops-file.js';
import { type Session, openSession } from '../src/fs/session.js';
import { initVault } from '../src/vault/config.js';
import { fsck } from '../src/vault/fsck.js';
import { chunkFiles, openVault } from '../src/vault/walk.js';
import { DiskStore } from '../src/store/disk-store.js';
import { seededBytes } from './helpers/inputs.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

let root: string;
let session: Session;
let ctx: FsContext;
const logged: string[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sefs-races-'));
  dirs.push(root);
  const config = await initVault(root);
  session = await openSession(root, config, { log: (l) => logged.push(l), threads: 2, sweepDelayMs: 20 });
  ctx = session.ctx;
  return async () => {
    await session.commitAll();
    await session.close();
  };
});

/**
 * Run `action` inside the next commit's window: after its entry is written to a temp file, before it is put
 * in place (the moment a rename or unlink must not be undone by the commit).
 */
function duringNextCommit(action: () => Promise<void>): void {
  const meta = ctx.meta;
  const original = meta.stageEntry;
  meta.stageEntry = async function (this: typeof meta, ...args: Parameters<typeof original>) {
    meta.stageEntry = original;
    const staged = await original.apply(this, args);
    await action();
    return staged;
  };
}

async function writeNew(path: string, data: Buffer): Promise<number> {
  const fh = await file.create(ctx, path, 0o100644);
  await file.write(ctx, fh, data, data.length, 0);
  return fh;
}

/** The last close of a handle, and the write-back commit it queued. */
async function close(fh: number): Promise<void> {
  await file.release(ctx, fh);
  await ctx.writeback.idle();
}

async function readAll(path: string): Promise<Buffer> {
  const fh = await file.open(ctx, path);
  try {
    const out = Buffer.alloc(64 * MiB);
    const n = await file.read(ctx, fh, out, out.length, 0);
    return out.subarray(0, n);
  } finally {
    await close(fh);
  }
}

async function exists(path: string): Promise<boolean> {
  return ctx.meta.lstat(path).then(
    () => true,
    () => false,
  );
}

/** Let every sweep due run, then check that every entry's chunks are there. */
async function settledAndSound(): Promise<void> {
  await sleep(100);
  await ctx.reclaim!.sweep();
  await sleep(50);
  await ctx.reclaim!.sweep();
  const report = await fsck(await openVault(root));
  expect(report.damaged, JSON.stringify(report.damaged.slice(0, 2))).toEqual([]);
}

function chunkCount(): number {
  return [...chunkFiles(new DiskStore(join(root, 'chunks')))].length;
}

describe('a commit meeting the namespace', () => {
  it('rename while the commit places its entry: the new content lands at the new name, nothing is lost', async () => {
    for (let round = 0; round < 3; round++) {
      const old = seededBytes(3 * MiB + 17, round);
      const fresh = seededBytes(4 * MiB + 5, 100 + round);
      const a = `/a${round}`;
      const b = `/b${round}`;
      await close(await writeNew(a, old));
      const fh = await file.open(ctx, a);
      await file.write(ctx, fh, fresh, fresh.length, 0);
      duringNextCommit(() => dir.rename(ctx, a, b));
      await file.fsync(ctx, fh);
      await close(fh);
      expect(await exists(a), `round ${round}: the old name is gone`).toBe(false);
      expect((await readAll(b)).equals(fresh), `round ${round}: the new name has the new content`).toBe(true);
    }
    await settledAndSound();
  });

  it('unlink while the commit places its entry: the file stays removed, and its chunks go', async () => {
    const before = chunkCount();
    for (let round = 0; round < 3; round++) {
      const data = seededBytes(3 * MiB + 99, 200 + round);
      const path = `/gone${round}`;
      const fh = await writeNew(path, data);
      duringNextCommit(() => dir.removeFile(ctx, path));
      await file.fsync(ctx, fh);
      // Still readable through the open handle until the last close.
      const out = Buffer.alloc(data.length);
      expect(await file.read(ctx, fh, out, out.length, 0)).toBe(data.length);
      expect(out.equals(data)).toBe(true);
      await close(fh);
      expect(await exists(path), `round ${round}: no resurrection`).toBe(false);
    }
    await settledAndSound();
    await sleep(100);
    await ctx.reclaim!.sweep();
    expect(chunkCount()).toBe(before);
  });

  it('a file sharing chunks with one that is renamed over during its commit keeps them', async () => {
    const shared = seededBytes(3 * MiB + 1, 300);
    await close(await writeNew('/keep', shared));
    await close(await writeNew('/victim', shared));
    const fh = await file.open(ctx, '/victim');
    await file.write(ctx, fh, Buffer.from('changed'), 7, 5);
    await close(await writeNew('/other', seededBytes(100_000, 301)));
    duringNextCommit(() => dir.rename(ctx, '/other', '/victim'));
    await file.fsync(ctx, fh);
    await close(fh);
    await settledAndSound();
    expect((await readAll('/keep')).equals(shared)).toBe(true);
  });

  it('an open racing an unlink of the same name never brings the unlinked entry back', async () => {
    for (let round = 0; round < 2; round++) {
      const path = `/flicker${round}`;
      await close(await writeNew(path, seededBytes(3 * MiB, 400 + round)));
      // The unlink lands while the open reads the entry.
      const meta = ctx.meta;
      const original = meta.readEntry;
      meta.readEntry = async function (this: typeof meta, p: string) {
        meta.readEntry = original;
        const entry = await original.call(this, p);
        await dir.removeFile(ctx, path);
        return entry;
      };
      const fh = await file.open(ctx, path).then(
        (h) => h,
        () => undefined,
      );
      if (fh !== undefined) {
        await file.write(ctx, fh, Buffer.from('x'), 1, 0);
        await close(fh);
      }
      expect(await exists(path), `round ${round}`).toBe(false);
    }
    await settledAndSound();
  });

  it('an open racing a link(2) of the same name shares the record: writes by either name show by both, after a remount too', async () => {
    const path = '/linked';
    const before = seededBytes(100_000, 410);
    await close(await writeNew(path, before));
    // The link lands while the open reads the entry (before the open file is registered).
    const meta = ctx.meta;
    const original = meta.readEntry;
    meta.readEntry = async function (this: typeof meta, p: string) {
      meta.readEntry = original;
      const entry = await original.call(this, p);
      await dir.link(ctx, path, '/other');
      return entry;
    };
    const fh = await file.open(ctx, path);
    await file.write(ctx, fh, Buffer.from('changed'), 7, 0);
    // While that handle is open, a write by the other name shows through it at once, as on one inode.
    const other = await file.open(ctx, '/other');
    await file.write(ctx, other, Buffer.from('OTHER'), 5, 10);
    const seen = Buffer.alloc(20);
    await file.read(ctx, fh, seen, 20, 0);
    expect(seen.toString('latin1', 0, 15), 'both handles see one file').toBe('changedXXOTHER'.replace('XX', before.toString('latin1', 7, 10)).slice(0, 15));
    await close(other);
    await close(fh);
    const after = Buffer.concat([Buffer.from('changed'), before.subarray(7, 10), Buffer.from('OTHER'), before.subarray(15)]);
    expect((await readAll(path)).equals(after)).toBe(true);
    expect((await readAll('/other')).equals(after), 'the other name shows the write').toBe(true);
    await session.commitAll();
    await session.close();
    session = await openSession(root, await openVault(root).then((v) => v.config), { log: (l) => logged.push(l), threads: 2, sweepDelayMs: 20 });
    ctx = session.ctx;
    expect((await readAll('/other')).equals(after), 'after a remount').toBe(true);
    await settledAndSound();
  });

  it('rm -r of a directory right after its file: the removal is made durable through the parent, and the chunks go', async () => {
    const before = chunkCount();
    await dir.makeDir(ctx, '/d', 0o755);
    await close(await writeNew('/d/f', seededBytes(3 * MiB + 3, 500)));
    expect(chunkCount()).toBeGreaterThan(before);
    await dir.removeFile(ctx, '/d/f');
    await dir.removeDir(ctx, '/d');
    await settledAndSound();
    expect(chunkCount()).toBe(before);
    expect(logged.filter((l) => l.includes('reclaiming space'))).toEqual([]);
  });
});
