/**
 * Mount points and vaults by their real paths: /proc/mounts names a mount by its real path, so a path through a
 * symlink must be resolved before it is compared, recorded or unmounted; and a mount nested in its own vault
 * (or over it) would serve the vault through itself.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, relative, resolve } from 'node:path';
import { VaultError } from '../vault/config.js';

/**
 * The real path of `path`, which need not exist yet: its nearest resolvable ancestor, resolved, with the rest
 * appended. (A stale mount point cannot be resolved itself, ENOTCONN, but its parent can.)
 */
export async function realPath(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : resolve(await realPath(parent), basename(abs));
  }
}

/** Is `inner` `outer` itself or below it? */
function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !rel.startsWith('/'));
}

/**
 * Refuse a mount point inside its vault (the daemon's own files would sit beside or below its mount, and one
 * over meta/ would ask itself for its own tree, each request holding a thread-pool thread: a deadlock) and a
 * vault inside the mount point (the mount would hide the vault from the daemon that serves it).
 */
export async function checkMountPlace(vault: string, mountpoint: string): Promise<void> {
  const [v, m] = await Promise.all([realPath(vault), realPath(mountpoint)]);
  if (within(m, v)) throw new VaultError(`mount point ${m} is ${m === v ? 'the vault itself' : `inside the vault ${v}`}: choose a mount point outside it`);
  if (within(v, m)) throw new VaultError(`vault ${v} is inside the mount point ${m}: the mount would hide it; choose a mount point outside it`);
}
