/**
 * Extended attributes with a kernel filesystem's rules (ext4's limits), on the map an entry stores
 * (node-info.ts). Pure: the caller reads the entry, applies one of these, and writes the entry back.
 * The kernel itself checks who may touch which namespace (trusted.* needs CAP_SYS_ADMIN, user.* only on
 * regular files and directories) before the request reaches the mount.
 */
import { posixError } from './posix-error.js';

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** Linux's limits (XATTR_NAME_MAX, XATTR_SIZE_MAX). */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 64 * 1024;
/**
 * All of one node's names and values together. ext4 without ea_inode keeps them in one 4 KiB block; a sefs
 * entry is read whole on every stat, so the bound keeps that read small while leaving room for ACLs, SELinux
 * labels and a few 64 KiB values. Past it: ENOSPC, as ext4 answers when the block is full.
 */
export const XATTR_TOTAL_MAX = 256 * 1024;

/**
 * No system.* names, POSIX ACLs included: setting an access ACL changes the mode, and without FUSE_POSIX_ACL
 * (libfuse 2 cannot ask for it) the kernel keeps showing the old mode for the attribute timeout. cp -a sets
 * modes that way when it can; refused, it falls back to chmod, as on a filesystem without ACLs.
 */
const NAMESPACES = ['user.', 'trusted.', 'security.'];

/**
 * Never stored, and why. The kernel asks for security.capability before every write(2), and ls -l asks for
 * security.selinux of every name: the patched binding answers ENODATA for both without a hop to the JS thread
 * (fuse-native patch level 5), so a stored value could never be read back.
 */
export const UNSTORED_XATTRS: ReadonlyMap<string, string> = new Map([
  ['security.capability', 'file capabilities (the mount is nosuid, where they do nothing)'],
  ['security.selinux', 'SELinux labels (a FUSE mount is labelled by policy, not by its xattrs)'],
]);

export type Xattrs = Map<string, Buffer>;

function checkName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > XATTR_NAME_MAX) throw posixError('ERANGE', 'xattr name length');
  if (!NAMESPACES.some((ns) => name.startsWith(ns) && name.length > ns.length)) throw posixError('EOPNOTSUPP', 'xattr namespace');
}

const sizeOf = (xattrs: Xattrs): number => [...xattrs].reduce((n, [k, v]) => n + Buffer.byteLength(k) + v.length, 0);

/** setxattr(2): a new map, the old one untouched. */
export function setXattr(xattrs: Xattrs | undefined, name: string, value: Buffer, flags: number): Xattrs {
  checkName(name);
  const unstored = UNSTORED_XATTRS.get(name);
  if (unstored) throw posixError('EOPNOTSUPP', unstored);
  if (value.length > XATTR_SIZE_MAX) throw posixError('E2BIG');
  const exists = xattrs?.has(name) ?? false;
  if (flags & XATTR_CREATE && exists) throw posixError('EEXIST');
  if (flags & XATTR_REPLACE && !exists) throw posixError('ENODATA');
  const next = new Map(xattrs);
  next.set(name, Buffer.from(value));
  if (sizeOf(next) > XATTR_TOTAL_MAX) throw posixError('ENOSPC', 'xattrs of one node exceed their bound');
  return next;
}

/** getxattr(2)'s value (the size probe and ERANGE are the binding's: it knows the caller's buffer). */
export function getXattr(xattrs: Xattrs | undefined, name: string): Buffer {
  checkName(name);
  const value = xattrs?.get(name);
  if (!value) throw posixError('ENODATA');
  return value;
}

export function listXattrs(xattrs: Xattrs | undefined): string[] {
  return [...(xattrs?.keys() ?? [])];
}

/** removexattr(2): a new map (undefined when nothing is left). */
export function removeXattr(xattrs: Xattrs | undefined, name: string): Xattrs | undefined {
  checkName(name);
  if (!xattrs?.has(name)) throw posixError('ENODATA');
  const next = new Map(xattrs);
  next.delete(name);
  return next.size > 0 ? next : undefined;
}

