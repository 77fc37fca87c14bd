/**
 * Finding and clearing mounts: a stale one left by a killed daemon answers ENOTCONN. Only sefs mounts are
 * ever cleared, known by their type (fuse.sefs) and source (sefs-<vault id>: mountSource).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { realPath } from './mount-paths.js';

const run = promisify(execFile);

/** Is `mnt` (or what it leads to through symlinks) a mount point right now, per /proc/mounts? */
export async function isMounted(mnt: string): Promise<boolean> {
  return isMountedAt(await realPath(mnt));
}

/**
 * The same for a path already resolved, touching no file system: what the daemon asks of its own mount point,
 * since resolving that path stats the mount's root, a request to the daemon itself, which a daemon that has
 * stopped serving (unmounting) would never answer.
 */
export async function isMountedAt(target: string): Promise<boolean> {
  return (await mountEntryAt(target)) !== undefined;
}

export interface MountEntry {
  source: string;
  fstype: string;
}

/** The topmost mount at `target` (already resolved), per /proc/mounts. */
async function mountEntryAt(target: string): Promise<MountEntry | undefined> {
  const mounts = await readFile('/proc/mounts', 'utf8');
  // /proc/mounts escapes spaces and other characters as octal.
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  let found: MountEntry | undefined;
  for (const line of mounts.split('\n')) {
    const [source = '', point = '', fstype = ''] = line.split(' ');
    if (unescape(point) === target) found = { source: unescape(source), fstype };
  }
  return found;
}

/** What is mounted at `mnt` (resolved first), if anything. */
export async function mountEntry(mnt: string): Promise<MountEntry | undefined> {
  return mountEntryAt(await realPath(mnt));
}

/** The source a vault's mount shows in /proc/mounts (its fsname): sefs and a digest of the vault's real path. */
export function mountSource(vaultRoot: string): string {
  return `sefs-${createHash('sha256').update(vaultRoot).digest('hex').slice(0, 16)}`;
}

/** A sefs mount (of vault `vaultRoot`, when given)? */
export function isSefsMount(entry: MountEntry | undefined, vaultRoot?: string): boolean {
  if (entry?.fstype !== 'fuse.sefs') return false;
  return vaultRoot === undefined || entry.source === mountSource(vaultRoot);
}

/** True when `mnt` is a FUSE mount whose daemon is gone. */
export async function isStale(mnt: string): Promise<boolean> {
  try {
    await stat(mnt);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' || code === 'ECONNABORTED' || code === 'ENXIO';
  }
}

/** Detach a mount (lazily, so busy shells do not block it). */
export async function forceUnmount(mnt: string): Promise<void> {
  await forceUnmountAt(await realPath(mnt));
}

/** The same for a path already resolved (the daemon's own mount point: see isMountedAt). */
export async function forceUnmountAt(target: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', target]);
  } catch {
    await run('umount', ['-l', target]);
  }
}
