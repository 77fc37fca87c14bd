/** Namespace operations on the metadata tree: readdir, mkdir, rmdir, unlink, rename, link, symlinks, mknod, fsyncdir. */
import { constants } from 'node:fs';
import type { FsContext } from './context.js';
import { type OpenFile, isHiddenName } from './open-files.js';
import { type FuseStat, getattr } from './ops-attr.js';
import { E, fsError } from './errno.js';
import type { MetaEntry } from '../vault/meta-entry.js';
import type { Owner } from '../vault/meta-tree.js';
import type { FuseCaller } from './fuse-binding.js';
import { dirname } from 'node:path';
import { checkNewName, childPath } from '../vault/names.js';
import { SPECIAL_TYPES } from '../vault/node-info.js';

/**
 * How many names of one listing get their attributes with it: the lookups that follow a listing (ls -l,
 * rm -r, cp -r) are then answered by the binding without a round trip here (fuse-native patch level 6). The
 * bound keeps one readdir of a huge directory a short answer; the names past it are looked up as before.
 */
const LISTED_ATTRS_MAX = 4096;

/**
 * A directory's names, with '.' and '..' as a kernel filesystem lists them (ls -a, find, some archivers), and
 * the attributes of each (null for '.', '..', names past the bound and unreadable ones).
 */
export async function listWithAttrs(ctx: FsContext, path: string): Promise<{ names: string[]; stats: (FuseStat | null)[] }> {
  const listed = await ctx.meta.list(path);
  // Their entries read several at once in the thread pool (a cold disk), not one by one on this thread.
  await ctx.meta.prefetchFacts(path, listed.slice(0, LISTED_ATTRS_MAX));
  ctx.siblingReads?.listed(path, listed);
  const names = ['.', '..', ...listed];
  const stats = await Promise.all(
    names.map((name, i) => (i < 2 || i >= LISTED_ATTRS_MAX + 2 ? null : getattr(ctx, childPath(path, name)).catch(() => null))),
  );
  return { names, stats };
}

/**
 * Who a node made for `caller` belongs to. A daemon running as root gives it to the caller (with allow_other,
 * any user of the machine); any other daemon cannot give files away, so everything made through its mount
 * is the mounting user's, whoever asked (as gocryptfs does), and undefined says so.
 */
const DAEMON_IS_ROOT = process.getuid?.() === 0;
export function ownerFor(caller: FuseCaller | undefined): Owner | undefined {
  return DAEMON_IS_ROOT && caller ? { uid: caller.uid, gid: caller.gid } : undefined;
}

export async function makeDir(ctx: FsContext, path: string, mode: number, caller?: FuseCaller): Promise<void> {
  checkNewName(path);
  await ctx.meta.makeDir(path, mode, ownerFor(caller));
}

export async function removeDir(ctx: FsContext, path: string): Promise<void> {
  await ctx.meta.removeDir(path);
}

/**
 * unlink and rename run under the namespace lock, as a commit's placing of its entry does: a commit never
 * writes its entry to a path that is being removed or renamed, and the index of references sees each entry
 * replaced exactly once.
 */
export function removeFile(ctx: FsContext, path: string): Promise<void> {
  return ctx.namespace.run(async () => {
    // libfuse removing the hidden name of a file removed while open: it is only in memory.
    if (ctx.files.unhide(path)) return;
    await removeLocked(ctx, path);
  });
}

/**
 * Remove a file or symlink from the vault (namespace lock held); its open file, if it had one (a hard-linked
 * file with names left goes on committing to its record).
 */
async function removeLocked(ctx: FsContext, path: string): Promise<OpenFile | undefined> {
  const { entry, link, lastName } = await nameBeingRemoved(ctx, path);
  // What fstat keeps showing of a file removed while open.
  const shown = ctx.files.get(path) ? await getattr(ctx, path) : undefined;
  await ctx.meta.removeNode(path);
  const file = ctx.files.detach(path, link, lastName);
  if (file) file.removed = shown;
  if (lastName) forgetDetached(ctx, file);
  if (entry) ctx.reclaim?.removed(entry, dirname(ctx.meta.diskPath(path)));
  return file;
}

/**
 * libfuse hiding a file that is removed (or renamed over) while the kernel has it open: the file leaves the
 * vault now and lives on in memory under its hidden name until its last close (open-files.ts isHiddenName).
 */
async function hide(ctx: FsContext, path: string, hiddenName: string): Promise<void> {
  const file = await removeLocked(ctx, path);
  if (file) ctx.files.hide(hiddenName, file);
}

/** A file removed while registered but not open (its commit had failed) will never be committed: let it go. */
function forgetDetached(ctx: FsContext, file: OpenFile | undefined): void {
  if (file && file.handles === 0) void abandonFile(ctx, file);
}

/**
 * Drop the uncommitted changes of a file no name and no handle reaches any more: its memory goes back, and
 * its stored chunks become candidates for reclamation. Under its lock: a commit of it still running finishes
 * first (and, finding no path, persists nothing).
 */
export async function abandonFile(ctx: FsContext, file: OpenFile): Promise<void> {
  await file.seq.exclusive(async () => {
    const stored = file.seq.abandon();
    ctx.reclaim?.abandoned(stored);
  });
  ctx.files.forget(file);
  ctx.reclaim?.released();
}

export function rename(ctx: FsContext, from: string, to: string): Promise<void> {
  checkNewName(to);
  return ctx.namespace.run(async () => {
    if (isHiddenName(to) && (ctx.files.get(from)?.handles ?? 0) > 0) return hide(ctx, from, to);
    const { entry: replaced, link, lastName, same } = from === to ? { lastName: false } : await nameBeingRemoved(ctx, to, from);
    if (same) return; // two names of one file: rename(2) does nothing
    await ctx.meta.renameNode(from, to);
    ctx.meta.forgetTree(from);
    ctx.meta.forget(to);
    if (from !== to) {
      const detached = ctx.files.detach(to, link, lastName);
      if (lastName) forgetDetached(ctx, detached);
    }
    ctx.files.rename(from, to);
    if (replaced) ctx.reclaim?.removed(replaced, dirname(ctx.meta.diskPath(to)));
  });
}

/**
 * What an unlink of `path` (or a rename from `from` onto it) removes: whether it is the node's last name (a
 * hard-linked file keeps its content while another name is left), its hard-link record, and, for the last
 * name of a regular file, its committed entry (its chunks lose a reference; undefined for other nodes and
 * for an entry that cannot be read: its chunks then stay).
 */
async function nameBeingRemoved(ctx: FsContext, path: string, from?: string): Promise<{ entry?: MetaEntry; link?: number; lastName: boolean; same?: boolean }> {
  const st = await ctx.meta.lstat(path).catch(() => undefined);
  if (!st?.isFile()) return { lastName: true };
  const link = ctx.meta.linkAt(path);
  const same = from !== undefined && (await ctx.meta.lstat(from).catch(() => undefined))?.ino === st.ino;
  if (link !== undefined && (st.nlink > 1 || same)) return { link, lastName: false, same };
  if (!ctx.reclaim) return { link, lastName: true };
  const open = ctx.files.ofName(path, link);
  if (open) return { entry: open.seq.committedEntry, link, lastName: true };
  return { entry: await ctx.meta.readEntry(path).catch(() => undefined), link, lastName: true };
}

/**
 * link(2): under the namespace lock, as a commit's placing is. A file open by `from` commits to the shared
 * record from now on, and opens by the new name share it.
 */
export function link(ctx: FsContext, from: string, to: string): Promise<void> {
  checkNewName(to);
  return ctx.namespace.run(async () => {
    await ctx.meta.link(from, to, () => ctx.inodes.allocate());
    const record = ctx.meta.linkAt(from);
    if (record !== undefined) ctx.files.linkMade(from, record);
  });
}

/**
 * fsync of a directory: each namespace operation above is one plain syscall on the directory's meta/ twin, so
 * syncing that twin makes the ones done in it durable, as on ext4 (a rename across directories needs both
 * synced, as there). A new file whose entry was renamed in unsynced reads as empty if its bytes were lost: decodeStoredEntry.
 */
export async function syncDir(ctx: FsContext, path: string): Promise<void> {
  await ctx.meta.syncDir(ctx.meta.diskPath(path));
}

export async function makeSymlink(ctx: FsContext, target: string, path: string, caller?: FuseCaller): Promise<void> {
  checkNewName(path);
  await ctx.meta.makeSymlink(target, path, ownerFor(caller), () => ctx.inodes.allocate());
}

export async function readSymlink(ctx: FsContext, path: string): Promise<string> {
  return ctx.meta.readSymlink(path);
}

/**
 * A regular file, or a FIFO, socket or device stored as an entry (type and rdev in its node fields, never a
 * real device node in the vault: threat-model.md); the kernel serves FIFOs and devices itself.
 */
export async function makeNode(ctx: FsContext, path: string, mode: number, rdev = 0, caller?: FuseCaller): Promise<void> {
  const type = mode & constants.S_IFMT;
  if (type !== constants.S_IFREG && type !== 0 && !SPECIAL_TYPES.includes(type)) throw fsError(E.EINVAL);
  checkNewName(path);
  const ino = await ctx.inodes.allocate();
  const special = SPECIAL_TYPES.includes(type);
  const node = special ? { ino, type, rdev: type === constants.S_IFCHR || type === constants.S_IFBLK ? rdev : 0 } : { ino };
  await ctx.meta.createEmpty(path, { mode }, node, ownerFor(caller));
}
