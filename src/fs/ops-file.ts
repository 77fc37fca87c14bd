/** File content operations: create, open, read, write, flush, fsync, release, truncate, fallocate. */
import { E, fsError } from './errno.js';
import { type FsContext, commitFile } from './context.js';
import { EMPTY_ENTRY } from '../vault/meta-entry.js';
import { abandonFile, makeNode } from './ops-dir.js';
import type { OpenFile } from './open-files.js';
import type { FuseCaller } from './fuse-binding.js';

function fileOf(ctx: FsContext, fh: number): OpenFile {
  const file = ctx.files.handle(fh);
  if (!file) throw fsError(E.EBADF);
  return file;
}

export async function create(ctx: FsContext, path: string, mode: number, caller?: FuseCaller): Promise<number> {
  await makeNode(ctx, path, mode, caller);
  return ctx.files.open(path, async () => EMPTY_ENTRY);
}

// The kernel sends directories OPENDIR, not OPEN, and refuses truncate(2) of a directory itself: open and
// truncatePath see regular files only (a missing one is ENOENT from readEntry).
export async function open(ctx: FsContext, path: string): Promise<number> {
  return ctx.files.open(path, () => ctx.meta.readEntry(path));
}

export async function read(ctx: FsContext, fh: number, into: Buffer, length: number, position: number): Promise<number> {
  return (await fileOf(ctx, fh).seq.readInto(position, into.subarray(0, length))).length;
}

export async function write(ctx: FsContext, fh: number, data: Buffer, length: number, position: number): Promise<number> {
  await fileOf(ctx, fh).seq.write(position, data.subarray(0, length));
  return length;
}

/** fsync(2) and fdatasync: commit now, durably, and report how it went. */
export async function fsync(ctx: FsContext, fh: number): Promise<void> {
  const file = fileOf(ctx, fh);
  const path = file.path;
  try {
    await commitFile(ctx, file);
  } catch (err) {
    // The changes stay in memory: the file's write-back after its last close commits them again.
    ctx.log(`fsync ${ctx.meta.logName(path)}: commit failed, changes kept in memory and retried: ${(err as Error).message}`);
    throw err;
  }
}

/** flush (every close): the new content is already what every handle sees; its commit is written back (writeback.ts). */
export async function flush(ctx: FsContext, fh: number): Promise<void> {
  const file = fileOf(ctx, fh);
  if (file.seq.isDirty) await ctx.writeback.enqueue(file);
}

/**
 * The last close: a changed file stays registered until its write-back commit lands (a commit that fails,
 * on a full disk, keeps the changes: still served, retried by the session, logged, never dropped).
 */
export async function release(ctx: FsContext, fh: number): Promise<void> {
  const closed = ctx.files.closeHandle(fh);
  if (!closed) return;
  // The last handle of a file removed while open: its content goes with it.
  if (!closed.path) {
    if (closed.handles === 0) await abandonFile(ctx, closed);
    return;
  }
  if (closed.seq.isDirty) return ctx.writeback.enqueue(closed);
  ctx.files.retire(closed);
  ctx.reclaim?.released();
}

export async function truncateOpen(ctx: FsContext, fh: number, size: number): Promise<void> {
  await fileOf(ctx, fh).seq.truncate(size);
}

/** truncate(2) by path: through the open file if there is one; its commit is written back. */
export async function truncatePath(ctx: FsContext, path: string, size: number): Promise<void> {
  const file = await ctx.files.acquire(path, () => ctx.meta.readEntry(path));
  try {
    await file.seq.truncate(size);
  } finally {
    ctx.files.unref(file);
    if (!file.path && file.handles === 0) await abandonFile(ctx, file); // removed meanwhile
  }
  if (file.path && file.seq.isDirty) await ctx.writeback.enqueue(file);
}

/** fallocate(2)'s mode bits (linux/falloc.h). */
export const FALLOC_FL_KEEP_SIZE = 0x01;

/**
 * fallocate: the default mode makes the file at least offset+length long (the new part reads as zeros, as a
 * hole does: stored chunks are written when data is), KEEP_SIZE alone changes nothing the file shows; every
 * other mode (punching holes, zeroing ranges) is not supported.
 */
export async function allocate(ctx: FsContext, fh: number, mode: number, offset: number, length: number): Promise<void> {
  if (offset < 0 || length <= 0) throw fsError(E.EINVAL);
  const file = fileOf(ctx, fh);
  if (mode === FALLOC_FL_KEEP_SIZE) return;
  if (mode !== 0) throw fsError(E.EOPNOTSUPP);
  await file.seq.extendTo(offset + length);
}
