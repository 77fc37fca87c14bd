/**
 * Extended attributes (setxattr, getxattr, listxattr, removexattr). Entries store none yet, so each answers
 * ENOSYS: the kernel then stops asking for the rest of the mount (one round trip, not one per write for
 * security.capability) and tells the caller EOPNOTSUPP, as before the binding had these operations.
 * The binding's contract (native-notes/fuse-native-patch.md): getxattr resolves to the value (a missing
 * attribute is ENODATA), listxattr to the names; the size probe and ERANGE are the binding's.
 */
import type { FsContext } from './context.js';
import { E, fsError } from './errno.js';

const unsupported = (): never => {
  throw fsError(E.ENOSYS);
};

/** flags: XATTR_CREATE (1) or XATTR_REPLACE (2), or 0. */
export async function setXattr(_ctx: FsContext, _path: string, _name: string, _value: Buffer, _flags: number): Promise<void> {
  unsupported();
}

export async function getXattr(_ctx: FsContext, _path: string, _name: string): Promise<Buffer> {
  return unsupported();
}

export async function listXattrs(_ctx: FsContext, _path: string): Promise<string[]> {
  return unsupported();
}

export async function removeXattr(_ctx: FsContext, _path: string, _name: string): Promise<void> {
  unsupported();
}
