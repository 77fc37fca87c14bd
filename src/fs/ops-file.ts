/** File content operations: create, open, read, write, fsync, release, truncate, fallocate (no flush: fuse-ops.ts). */
import { E, fsError } from './errno.js';
import { BLOCK } from './file-content.js';
import { type FsContext, commitFile, reachable } from './context.js';
import { EMPTY_ENTRY } from '../vault/meta-entry.js';
import { abandonFile, makeNode } from './ops-dir.js';
import type { LoadedFile, OpenFile } from './open-files.js';
import { type FuseCaller, opensForReading } from './fuse-binding.js';

function fileOf(ctx: FsContext, fh: number): OpenFile {
  const file = ctx.files.handle(fh);
  if (!file) throw fsError(E.EBADF);
  return file;
}

export async function create(ctx: FsContext, path: string, mode: number, caller?: FuseCaller): Promise<number> {
  await ctx.writeback.room(); // a writer starting a file waits while too many closed files await their commits
  await makeNode(ctx, path, mode, 0, caller);
  const fh = await ctx.files.open(path, async () => ({ entry: EMPTY_ENTRY }));
  ctx.heldWrites?.hold(fh); // before the create is answered: the binding keeps the writes that follow
  ctx.heldCreates?.fillSoon(); // the binding may have had no prepared inode for it
  return fh;
}

// The kernel sends directories OPENDIR, not OPEN, and refuses truncate(2) of a directory itself: open and
// truncatePath see regular files only (a missing one is ENOENT from readEntry).
export async function open(ctx: FsContext, path: string, flags?: number): Promise<number> {
  if (flags !== undefined && !opensForReading(flags)) await ctx.writeback.room();
  // The facts name a hard-linked file's record (it may be open by another name); reading them keeps the entry.
  const { link } = await ctx.meta.readFacts(path);
  const fh = await ctx.files.open(path, () => loadFile(ctx, path), link);
  // Another handle of a file whose writes the binding holds: they are applied, and no longer held.
  const file = fileOf(ctx, fh);
  if (file.handles > 1) await ctx.heldWrites?.end({ file });
  // A small file's reads are then answered by the binding (before this open is, so before any of them).
  if (flags !== undefined && opensForReading(flags)) {
    if (ctx.slabReads) await ctx.slabReads.opened(fh, file.seq).catch(() => {});
    ctx.siblingReads?.opened(path);
  }
  return fh;
}

/** A file's entry as an open loads it, and the hard-link record its name is a stub of (once the entry is read). */
async function loadFile(ctx: FsContext, path: string): Promise<LoadedFile> {
  const entry = await ctx.meta.readEntry(path);
  return { entry, link: ctx.meta.linkAt(path) };
}

export async function read(ctx: FsContext, fh: number, into: Buffer, length: number, position: number): Promise<number> {
  const { seq } = fileOf(ctx, fh);
  const version = seq.version;
  const filled = (await seq.readInto(position, into.subarray(0, length))).length;
  // The binding answers the next reads of the chunks around this one itself, while they stay as they are.
  ctx.slabReads?.offer(fh, seq, version, position, position + filled);
  return filled;
}

export async function write(ctx: FsContext, fh: number, data: Buffer, length: number, position: number): Promise<number> {
  await fileOf(ctx, fh).seq.write(position, data.subarray(0, length));
  return length;
}

/** fsync(2) and fdatasync: commit now, durably, and report how it went. */
export async function fsync(ctx: FsContext, fh: number): Promise<void> {
  const file = fileOf(ctx, fh);
  const path = file.path;
  // A write answered by the binding that could not be applied: reported once, here (as a failed write-back is).
  const lost = file.heldWriteError;
  if (lost) {
    file.heldWriteError = undefined;
    throw lost;
  }
  try {
    await commitFile(ctx, file);
  } catch (err) {
    // The changes stay in memory: the file's write-back after its last close commits them again.
    ctx.log(`fsync ${ctx.meta.logName(path)}: commit failed, changes kept in memory and retried: ${(err as Error).message}`);
    throw err;
  }
}

/**
 * The last close of a handle: a changed file's commit is written back (writeback.ts), and the file stays
 * registered until that commit lands (a commit that fails, on a full disk, keeps the changes: still served,
 * retried by the session, logged, never dropped). The new content is what every handle sees already.
 */
export async function release(ctx: FsContext, fh: number): Promise<void> {
  await ctx.heldWrites?.end({ fh });
  const released = ctx.files.handle(fh);
  if (released) ctx.slabReads?.released(fh, released.seq);
  const closed = ctx.files.closeHandle(fh);
  if (!closed) return;
  // The last handle of a file removed while open: its content goes with it.
  if (!reachable(closed)) {
    if (closed.handles === 0) await abandonFile(ctx, closed);
    return;
  }
  if (closed.seq.isDirty) return ctx.writeback.enqueue(closed); // not waiting for room: the kernel sends releases in the background
  ctx.files.retire(closed);
  ctx.reclaim?.released();
}

export async function truncateOpen(ctx: FsContext, fh: number, size: number): Promise<void> {
  await fileOf(ctx, fh).seq.truncate(size);
}

/** truncate(2) by path: through the open file if there is one; its commit is written back. */
export async function truncatePath(ctx: FsContext, path: string, size: number): Promise<void> {
  const file = await ctx.files.acquire(path, () => loadFile(ctx, path), ctx.meta.linkAt(path));
  try {
    await file.seq.truncate(size);
  } finally {
    ctx.files.unref(file);
    if (!reachable(file) && file.handles === 0) await abandonFile(ctx, file); // removed meanwhile
  }
  if (reachable(file) && file.seq.isDirty) {
    ctx.writeback.enqueue(file);
    await ctx.writeback.room();
  }
}

/** fallocate(2)'s mode bits (linux/falloc.h). */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

const ZEROS = Buffer.alloc(BLOCK);

/**
 * fallocate(2) on an open file, as far as the Sequencer can express it (native-notes/hard-links.md has the
 * table): a sefs file has no preallocated blocks, and a run of zeros is stored as a hole (a chunk of zeros
 * costs no store space), so
 *   mode 0                        extends the size to offset + length (the new bytes are a hole);
 *   KEEP_SIZE                     changes nothing (there is nothing to reserve);
 *   PUNCH_HOLE | KEEP_SIZE        writes zeros over the range inside the file (they become holes);
 *   ZERO_RANGE [| KEEP_SIZE]      zeros over the range, growing the file unless KEEP_SIZE;
 *   anything else (COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE, PUNCH_HOLE alone) is EOPNOTSUPP.
 * Space is never short at allocation time (nothing is reserved): a later write can still fail with ENOSPC.
 * The changes are the open file's, committed as its writes are (at close or fsync).
 */
export async function allocate(ctx: FsContext, fh: number, mode: number, offset: number, length: number): Promise<void> {
  if (offset < 0 || length <= 0) throw fsError(E.EINVAL);
  const seq = fileOf(ctx, fh).seq;
  const end = offset + length;
  const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
  const kind = mode & ~FALLOC_FL_KEEP_SIZE;
  if (kind === 0) {
    if (!keepSize) await seq.extendTo(end);
  } else if (kind === FALLOC_FL_PUNCH_HOLE && keepSize) {
    await writeZeros(seq, offset, Math.min(end, seq.size));
  } else if (kind === FALLOC_FL_ZERO_RANGE) {
    await writeZeros(seq, offset, Math.min(end, seq.size));
    if (!keepSize) await seq.extendTo(end);
  } else throw fsError(E.EOPNOTSUPP);
}

/** Zeros over [from, to), a block at a time (the Sequencer stores whole blocks of zeros as holes). */
async function writeZeros(seq: { write(offset: number, data: Buffer): Promise<void> }, from: number, to: number): Promise<void> {
  for (let at = from; at < to; ) {
    const next = Math.min(to, (Math.floor(at / BLOCK) + 1) * BLOCK);
    await seq.write(at, ZEROS.subarray(0, next - at));
    at = next;
  }
}
