/**
 * Extended attributes: get, list, set and remove, with a kernel filesystem's rules (vault/xattrs.ts), stored
 * in the file's entry (sealed with it in a sealed vault) or a hard-linked file's record, kept by commits.
 * Directories and symlinks have none (native-notes/hard-links.md says why): they list none, a get is
 * ENODATA, a set is EOPNOTSUPP.
 * The binding's contract (native-notes/fuse-native-patch.md): getxattr resolves to the value (a missing
 * attribute is ENODATA), listxattr to the names; the size probe and ERANGE are the binding's.
 */
import type { FsContext } from './context.js';
import { type Xattrs, getXattr as getOne, listXattrs as listAll, removeXattr as removeOne, setXattr as setOne } from '../vault/xattrs.js';
import { posixError } from '../vault/posix-error.js';
import { underFileLock } from './ops-attr.js';

/** A file's xattrs; undefined for a directory or symlink. */
async function xattrsOf(ctx: FsContext, path: string): Promise<{ xattrs?: Xattrs; file: boolean }> {
  const st = await ctx.meta.lstat(path);
  if (!st.isFile()) return { file: false };
  // The facts carry the node fields without decoding a large (compressed) DataMap: ls -l asks every file.
  return { xattrs: (await ctx.meta.readFacts(path)).node?.xattrs, file: true };
}

export async function getXattr(ctx: FsContext, path: string, name: string): Promise<Buffer> {
  return getOne((await xattrsOf(ctx, path)).xattrs, name);
}

export async function listXattrs(ctx: FsContext, path: string): Promise<string[]> {
  return listAll((await xattrsOf(ctx, path)).xattrs);
}

/**
 * A change runs under the file's lock (a commit of an open file rewrites its entry with the node fields it
 * reads, and must not undo this) and then the namespace lock (the order commits take them in).
 */
function change(ctx: FsContext, path: string, apply: (xattrs: Xattrs | undefined) => Xattrs | undefined): Promise<void> {
  const run = async (): Promise<void> => {
    const { file } = await xattrsOf(ctx, path);
    if (!file) throw posixError('EOPNOTSUPP', 'xattrs of directories and symlinks are not stored');
    await ctx.namespace.run(() =>
      ctx.meta.updateNode(path, (node) => {
        const xattrs = apply(node.xattrs);
        if (xattrs) node.xattrs = xattrs;
        else delete node.xattrs;
        return node;
      }),
    );
  };
  return underFileLock(ctx, path, run);
}

/** flags: XATTR_CREATE (1) or XATTR_REPLACE (2), or 0. */
export function setXattr(ctx: FsContext, path: string, name: string, value: Buffer, flags: number): Promise<void> {
  return change(ctx, path, (xattrs) => setOne(xattrs, name, value, flags));
}

export function removeXattr(ctx: FsContext, path: string, name: string): Promise<void> {
  return change(ctx, path, (xattrs) => removeOne(xattrs, name));
}
