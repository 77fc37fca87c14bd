/** Namespace operations on the metadata tree: readdir, mkdir, rmdir, unlink, rename, symlinks, mknod, fsyncdir. */
import { mkdir, readlink as readLink, rename as renamePath, rmdir, symlink, unlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { fsyncDir } from '../store/disk-store.js';
import type { FsContext } from './context.js';
import type { OpenFile } from './open-files.js';
import { E, fsError } from './errno.js';
import { EMPTY_ENTRY, type MetaEntry } from '../vault/meta-entry.js';
import { dirname } from 'node:path';
import { checkNewName } from '../vault/names.js';

/** A directory's names, with '.' and '..' as a kernel filesystem lists them (ls -a, find, some archivers). */
export async function list(ctx: FsContext, path: string): Promise<string[]> {
  return ['.', '..', ...(await ctx.meta.list(path))];
}

export async function makeDir(ctx: FsContext, path: string, mode: number): Promise<void> {
  checkNewName(path);
  await mkdir(ctx.meta.diskPath(path), mode & 0o7777);
}

export async function removeDir(ctx: FsContext, path: string): Promise<void> {
  await rmdir(ctx.meta.diskPath(path));
  ctx.meta.forget(path);
}

export async function removeFile(ctx: FsContext, path: string): Promise<void> {
  const entry = await entryBeingReplaced(ctx, path);
  await unlink(ctx.meta.diskPath(path));
  ctx.meta.forget(path);
  forgetDetached(ctx, ctx.files.detach(path));
  if (entry) ctx.reclaim?.removed(entry, dirname(ctx.meta.diskPath(path)));
}

/** A file removed while registered but not open (its commit had failed) will never be committed: let it go. */
function forgetDetached(ctx: FsContext, file: OpenFile | undefined): void {
  // Under its lock: a commit of it still running finishes first (and, finding no path, persists nothing).
  if (file && file.handles === 0) void file.seq.exclusive(async () => ctx.reclaim?.abandoned(file.seq.abandon()));
}

export async function rename(ctx: FsContext, from: string, to: string): Promise<void> {
  checkNewName(to);
  const replaced = from === to ? undefined : await entryBeingReplaced(ctx, to);
  await renamePath(ctx.meta.diskPath(from), ctx.meta.diskPath(to));
  ctx.meta.forgetTree(from);
  ctx.meta.forget(to);
  forgetDetached(ctx, ctx.files.detach(to));
  ctx.files.rename(from, to);
  if (replaced) ctx.reclaim?.removed(replaced, dirname(ctx.meta.diskPath(to)));
}

/**
 * The committed entry of the regular file at `path` that an unlink or rename is about to remove (its chunks
 * lose a reference); undefined for other nodes, and for an entry that cannot be read (its chunks then stay).
 */
async function entryBeingReplaced(ctx: FsContext, path: string): Promise<MetaEntry | undefined> {
  if (!ctx.reclaim) return undefined;
  const open = ctx.files.get(path);
  if (open) return open.seq.committedEntry;
  const st = await ctx.meta.lstat(path).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  return ctx.meta.readEntry(path).catch(() => undefined);
}

/**
 * fsync of a directory: each namespace operation above is one plain syscall on the directory's meta/ twin, so
 * syncing that twin makes the ones done in it durable, as on ext4 (a rename across directories needs both
 * synced, as there). A new file whose entry was renamed in unsynced reads as empty if its bytes were lost: decodeStoredEntry.
 */
export async function syncDir(ctx: FsContext, path: string): Promise<void> {
  await fsyncDir(ctx.meta.diskPath(path));
}

export async function makeSymlink(ctx: FsContext, target: string, path: string): Promise<void> {
  checkNewName(path);
  await symlink(ctx.meta.codec.sealLink(target), ctx.meta.diskPath(path));
}

export async function readSymlink(ctx: FsContext, path: string): Promise<string> {
  return ctx.meta.codec.openLink(await readLink(ctx.meta.diskPath(path)));
}

/** Regular files only: device nodes, FIFOs and sockets have no place in an encrypted vault. */
export async function makeNode(ctx: FsContext, path: string, mode: number): Promise<void> {
  if ((mode & constants.S_IFMT) !== constants.S_IFREG) throw fsError(E.EPERM);
  checkNewName(path);
  await ctx.meta.writeEntry(path, EMPTY_ENTRY, { mode }, false);
}
