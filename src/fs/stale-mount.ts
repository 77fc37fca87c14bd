/** Finding and clearing mounts: a stale one left by a killed daemon answers ENOTCONN. */
import { execFile } from 'node:child_process';
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
  const mounts = await readFile('/proc/mounts', 'utf8');
  // /proc/mounts escapes spaces and other characters as octal.
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return mounts.split('\n').some((line) => unescape(line.split(' ')[1] ?? '') === target);
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
