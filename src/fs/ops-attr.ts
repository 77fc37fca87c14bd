/** Attribute operations: getattr, chmod, chown, utimens, access, statfs. */
import { statfs } from 'node:fs/promises';
import type { FsContext } from './context.js';
import { type OpenFile, utimensMtime } from './open-files.js';
import { E, fsError } from './errno.js';
import { NAME_MAX } from '../vault/names.js';
import { clampNs, msToNs, nowNs } from '../vault/file-times.js';

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
  /** ns since the epoch (the binding passes them on exactly). */
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
}

/**
 * The mtime an open file shows: times set by utimens while it had uncommitted changes, else the moment of its
 * last change when it has some; undefined: the stored one.
 */
function openMtime(file: OpenFile): bigint | undefined {
  return utimensMtime(file) ?? (file.seq.isDirty ? msToNs(file.seq.modifiedAt) : undefined);
}

/**
 * A directory or symlink shows its meta/ twin's host inode number (a rename keeps it; a sealed symlink keeps
 * its own in its sealed target, meta-tree.ts makeSymlink); a file or special
 * node the number stored in its entry (vault/inode-numbers.ts), or, written by an older sefs and never
 * committed since, its metadata file's. A special node's type and rdev are its entry's.
 */
export async function getattr(ctx: FsContext, path: string): Promise<FuseStat> {
  const hidden = ctx.files.hidden(path);
  if (hidden) return removedStat(hidden);
  const st = await ctx.meta.lstatNs(path);
  let size = Number(st.size);
  let mtime = st.mtimeNs;
  let ctime = st.isDirectory() ? ctx.meta.shownDirCtime(path, st) : st.ctimeNs;
  let stored = size;
  let mode = Number(st.mode);
  let ino = st.isSymbolicLink() ? ctx.meta.symlinkIno(path, st) : Number(st.ino);
  let rdev = 0;
  if (st.isFile()) {
    const facts = await ctx.meta.readFacts(path);
    ({ size, storedBytes: stored } = facts);
    const node = facts.node;
    if (node?.ino !== undefined) ino = node.ino;
    if (node?.type !== undefined) {
      mode = node.type | (mode & 0o7777);
      rdev = node.rdev ?? 0;
    }
    // A hard-linked file may be open by another of its names.
    const open = ctx.files.ofName(path, facts.link);
    if (open) {
      size = open.seq.size;
      stored = open.seq.storedBytes;
      // A change not yet committed is a change of the file now (its ctime too, as the kernel must see at once).
      const changed = openMtime(open);
      if (changed !== undefined) {
        mtime = changed;
        if (open.seq.isDirty && msToNs(open.seq.modifiedAt) > ctime) ctime = msToNs(open.seq.modifiedAt);
      }
    }
  }
  return {
    mode,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size,
    nlink: Number(st.nlink),
    ino,
    dev: Number(st.dev),
    rdev,
    blksize: 4096,
    // What is really stored, so du of a sparse file is small: holes count nothing.
    blocks: Math.ceil(stored / 512),
    atime: st.atimeNs,
    mtime,
    ctime,
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
  const last = file.removed ?? { mode: 0o100600, uid: 0, gid: 0, size: 0, nlink: 1, ino: 0, dev: 0, rdev: 0, blksize: 4096, blocks: 0, atime: 0n, mtime: 0n, ctime: 0n };
  return { ...last, nlink: 1, size: file.seq.size, blocks: Math.ceil(file.seq.storedBytes / 512) };
}

/**
 * fchmod, fchown and futimens of a file removed while open reach us by its hidden name (libfuse has no other):
 * they change what fstat shows of it. False when `path` is no such name.
 */
function changeRemoved(ctx: FsContext, path: string, change: (st: FuseStat) => Partial<FuseStat>): boolean {
  const file = ctx.files.hidden(path);
  if (!file) return false;
  const st = removedStat(file);
  file.removed = { ...st, ...change(st), ctime: nowNs() };
  return true;
}

/** The open file of `path`, also when it was opened by another of its names (a hard link). */
const openByAnyName = (ctx: FsContext, path: string): OpenFile | undefined => ctx.files.ofName(path, ctx.meta.linkAt(path));

/**
 * An attribute change of an open file runs under the file's lock, as its commits do: a commit rewrites the
 * metadata file with the attributes it read, and must not undo a change made meanwhile.
 */
export function underFileLock<T>(ctx: FsContext, path: string, fn: () => Promise<T>): Promise<T> {
  const open = openByAnyName(ctx, path);
  return open ? open.seq.exclusive(fn) : fn();
}

export async function setMode(ctx: FsContext, path: string, mode: number): Promise<void> {
  if (changeRemoved(ctx, path, (st) => ({ mode: (st.mode & ~0o7777) | (mode & 0o7777) }))) return;
  await underFileLock(ctx, path, () => ctx.meta.setMode(path, mode));
}

export async function setOwner(ctx: FsContext, path: string, uid: number, gid: number): Promise<void> {
  // -1 leaves an id as it is (chown(2)); the kernel passes it on.
  if (changeRemoved(ctx, path, (st) => ({ uid: uid === -1 || uid === 0xffffffff ? st.uid : uid, gid: gid === -1 || gid === 0xffffffff ? st.gid : gid }))) return;
  await underFileLock(ctx, path, () => ctx.meta.setOwner(path, uid, gid));
}

/** A time from utimens: ns since the epoch (exact, negative before 1970), 'now', or 'omit' (leave it as it is). */
export type TimeSpec = bigint | 'now' | 'omit';

export async function setTimes(ctx: FsContext, path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  const now = nowNs();
  if (changeRemoved(ctx, path, (st) => ({ atime: timeOf(atime, st.atime, now), mtime: timeOf(mtime, st.mtime, now) }))) return;
  return underFileLock(ctx, path, () => setTimesNow(ctx, path, atime, mtime, now));
}

/** What a utimens time means, given the time it replaces and now. */
const timeOf = (t: TimeSpec, current: bigint, now: bigint): bigint => (t === 'now' ? now : t === 'omit' ? current : clampNs(t));

async function setTimesNow(ctx: FsContext, path: string, atime: TimeSpec, mtime: TimeSpec, now: bigint): Promise<void> {
  const st = await ctx.meta.lstatNs(path);
  const open = st.isFile() ? openByAnyName(ctx, path) : undefined;
  const a = timeOf(atime, st.atimeNs, now);
  const m = timeOf(mtime, (open && openMtime(open)) ?? st.mtimeNs, now);
  // An uncommitted file gets its times again when its commit rewrites the metadata file.
  if (open?.seq.isDirty) open.times = { atime: a, mtime: m, version: open.seq.version };
  await ctx.meta.setTimes(path, a, m);
}

/**
 * A chmod, chown or utimens the binding answered itself (patch level 12: a file it created, whose handle holds
 * its writes), with what it showed resolved: [0, path, mode], [1, path, uid, gid], [2, path, atime, mtime].
 */
export type HeldChange = [0, string, number, number] | [1, string, number, number] | [2, string, bigint, bigint];

/**
 * Make a change the binding answered, as the request would have been made (held-writes.ts takes it before any
 * request is handled); whether it was made. The caller was told it succeeded: a failure is logged, and the file's
 * next fsync reports it.
 */
export async function applyHeldChange(ctx: FsContext, change: HeldChange): Promise<boolean> {
  const [kind, path] = change;
  try {
    if (change[0] === 0) await setMode(ctx, path, change[2]);
    else if (change[0] === 1) await setOwner(ctx, path, change[2], change[3]);
    else await setTimes(ctx, path, change[2], change[3]);
    return true;
  } catch (err) {
    const open = openByAnyName(ctx, path);
    if (open) open.heldWriteError ??= err as Error;
    ctx.log(`${['chmod', 'chown', 'utimens'][kind]} of ${ctx.meta.logName(path)} answered in the binding could not be made: ${(err as Error).message}`);
    return false;
  }
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
