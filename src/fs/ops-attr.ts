/** Attribute operations: getattr, chmod, chown, utimens, access, statfs. */
import { statfs } from 'node:fs/promises';
import type { FsContext } from './context.js';
import type { OpenFile } from './open-files.js';
import { E, fsError } from './errno.js';
import { NAME_MAX } from '../vault/names.js';

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  dev: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
}

/**
 * A directory or symlink shows its meta/ twin's host inode number (a rename keeps it); a file or special
 * node the number stored in its entry (vault/inode-numbers.ts), or, written by an older sefs and never
 * committed since, its metadata file's. A special node's type and rdev are its entry's.
 */
export async function getattr(ctx: FsContext, path: string): Promise<FuseStat> {
  const hidden = ctx.files.hidden(path);
  if (hidden) return removedStat(hidden);
  const st = await ctx.meta.lstat(path);
  let size = st.size;
  let mtime = st.mtimeMs;
  let stored = size;
  let mode = st.mode;
  let ino = st.ino;
  let rdev = 0;
  if (st.isFile()) {
    const facts = await ctx.meta.readFacts(path);
    ({ size, storedBytes: stored } = facts);
    const node = facts.node;
    if (node?.ino !== undefined) ino = node.ino;
    if (node?.type !== undefined) {
      mode = node.type | (st.mode & 0o7777);
      rdev = node.rdev ?? 0;
    }
    // A hard-linked file may be open by another of its names.
    const link = ctx.meta.linkAt(path);
    const open = ctx.files.get(path) ?? (link === undefined ? undefined : ctx.files.byRecord(link));
    if (open) {
      size = open.seq.size;
      stored = open.seq.storedBytes;
      if (open.times) mtime = open.times.mtime;
      else if (open.seq.isDirty) mtime = open.seq.modifiedAt;
    }
  }
  return {
    mode,
    uid: st.uid,
    gid: st.gid,
    size,
    nlink: st.nlink,
    ino,
    dev: st.dev,
    rdev,
    blksize: 4096,
    // What is really stored, so du of a sparse file is small: holes count nothing.
    blocks: Math.ceil(stored / 512),
    atime: st.atimeMs,
    mtime,
    ctime: st.isDirectory() ? ctx.meta.shownDirCtime(path, st) : st.ctimeMs,
  };
}

/** fgetattr: the open file of handle `fh`, wherever it is now, or removed. */
export async function getattrOpen(ctx: FsContext, fh: number): Promise<FuseStat> {
  const file = ctx.files.handle(fh);
  if (!file) throw fsError(E.EBADF);
  return file.path ? getattr(ctx, file.path) : removedStat(file);
}

/**
 * A file removed while open: its attributes when it was removed, its content now. nlink 1, which libfuse
 * shows as 0 for a file it hid (every file removed while the kernel has it open).
 */
function removedStat(file: OpenFile): FuseStat {
  const last = file.removed ?? { mode: 0o100600, uid: 0, gid: 0, size: 0, nlink: 1, ino: 0, dev: 0, rdev: 0, blksize: 4096, blocks: 0, atime: 0, mtime: 0, ctime: 0 };
  return { ...last, nlink: 1, size: file.seq.size, blocks: Math.ceil(file.seq.storedBytes / 512) };
}

/**
 * An attribute change of an open file runs under the file's lock, as its commits do: a commit rewrites the
 * metadata file with the attributes it read, and must not undo a change made meanwhile.
 */
export function underFileLock<T>(ctx: FsContext, path: string, fn: () => Promise<T>): Promise<T> {
  const open = ctx.files.get(path);
  return open ? open.seq.exclusive(fn) : fn();
}

export async function setMode(ctx: FsContext, path: string, mode: number): Promise<void> {
  await underFileLock(ctx, path, () => ctx.meta.setMode(path, mode));
}

export async function setOwner(ctx: FsContext, path: string, uid: number, gid: number): Promise<void> {
  await underFileLock(ctx, path, () => ctx.meta.setOwner(path, uid, gid));
}

/** A time from utimens: ns since the epoch (exact, negative before 1970), 'now', or 'omit' (leave it as it is). */
export type TimeSpec = bigint | 'now' | 'omit';

export function setTimes(ctx: FsContext, path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  return underFileLock(ctx, path, () => setTimesNow(ctx, path, atime, mtime));
}

async function setTimesNow(ctx: FsContext, path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  const st = await ctx.meta.lstat(path);
  const open = st.isFile() ? ctx.files.get(path) : undefined;
  const now = Date.now();
  const resolve = (t: TimeSpec, current: number): number => (t === 'now' ? now : t === 'omit' ? current : Number(t) / 1e6);
  const a = resolve(atime, st.atimeMs);
  const m = resolve(mtime, open?.times?.mtime ?? st.mtimeMs);
  // An uncommitted file gets its times again when its commit rewrites the metadata file.
  if (open?.seq.isDirty) open.times = { atime: a, mtime: m };
  await ctx.meta.setTimes(path, a / 1000, m / 1000);
}

export async function access(ctx: FsContext, path: string): Promise<void> {
  await ctx.meta.lstat(path);
}

/** fuse-native takes statfs fields as uint32: clamp. */
const u32 = (n: number | bigint): number => Math.min(Number(n), 0xffffffff);

export async function fsStats(ctx: FsContext): Promise<Record<string, number>> {
  const s = await statfs(ctx.root);
  return {
    bsize: u32(s.bsize),
    frsize: u32(s.bsize),
    blocks: u32(s.blocks),
    bfree: u32(s.bfree),
    bavail: u32(s.bavail),
    files: u32(s.files),
    ffree: u32(s.ffree),
    favail: u32(s.ffree),
    fsid: 0,
    flag: 0,
    namemax: NAME_MAX,
  };
}
