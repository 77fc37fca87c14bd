import { readFile, stat, writeFile } from 'node:fs/promises';
/**
 * libfuse mount options. big_writes is what makes writes fast: without it the kernel sends 4 KiB writes
 * (about 30 MB/s through fuse-native); with it, up to max_write. Requests of up to 1 MiB (MAX_REQUEST) need
 * the kernel's FUSE_MAX_PAGES, which libfuse 2.9 does not know: fuse-native patch level 7 offers it in the
 * INIT reply (without it the kernel keeps to 128 KiB whatever these say). Each request is a round trip through
 * the JS thread, so a MiB per request is an eighth of the round trips of 128 KiB ones, for writes and reads.
 * kernel_cache keeps file pages across opens: safe because every change to a vault goes
 * through this mount. use_ino: stat shows our inode numbers (stable across commits, renames and remounts:
 * vault/inode-numbers.ts), not libfuse's. Measurements: native-notes/. The mount adds fsname=<its vault's source> (stale-mount.ts):
 * with subtype=sefs, /proc/mounts then says which mounts are sefs's and of which vault.
 */
/** Attributes and names stay cached in the kernel this long (s): we are the only writer. */
export const ATTR_TIMEOUT_S = 1;
/**
 * negative_timeout: the kernel also keeps "no such name" for ATTR_TIMEOUT_S, so the lookup before each create (tar,
 * cp, git) and the existence checks of build tools are not a round trip to the daemon each. Every name that
 * appears comes through this mount (create, mkdir, link, rename), and the kernel replaces the negative entry then.
 */
/** The largest read or write request the kernel sends (the patched binding's SEFS_MAX_PAGES pages). */
export const MAX_REQUEST = 1024 * 1024;
export const KERNEL_OPTIONS = ['big_writes', `max_write=${MAX_REQUEST}`, `max_read=${MAX_REQUEST}`, 'kernel_cache', 'default_permissions', 'subtype=sefs', 'use_ino', `negative_timeout=${ATTR_TIMEOUT_S}`];

/**
 * Kernel readahead of the mount, in KiB. A FUSE mount starts with 128 KiB, so a sequential reader has one
 * 128 KiB request in flight at a time; with 1 MiB the kernel sends several at once (reads from the chunk
 * cache: about 650 MB/s -> 1.1 GB/s; native-notes/mount.md). It is a sysfs setting that only root may write.
 */
export const READ_AHEAD_KB = 1024;

/** The sysfs file of a mount's readahead: /sys/class/bdi/MAJOR:MINOR/read_ahead_kb of its device number. */
export async function readAheadFile(mountpoint: string): Promise<string> {
  const dev = (await stat(mountpoint, { bigint: true })).dev;
  // glibc's major()/minor() encoding of dev_t.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `/sys/class/bdi/${major}:${minor}/read_ahead_kb`;
}

/** Raise the mount's readahead to READ_AHEAD_KB; returns why not when it cannot (not root, no sysfs). */
export async function raiseReadAhead(mountpoint: string): Promise<string | undefined> {
  try {
    const file = await readAheadFile(mountpoint);
    const current = Number((await readFile(file, 'utf8')).trim());
    if (current < READ_AHEAD_KB) await writeFile(file, `${READ_AHEAD_KB}\n`);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
