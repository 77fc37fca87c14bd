/** What every FUSE operation works with. */
import type { Logger } from './errno.js';
import type { MetaTree } from '../vault/meta-tree.js';
import { type OpenFile, type OpenFiles, utimensMtime } from './open-files.js';
import type { Reclaimer } from './reclaim.js';
import type { SlabReads } from './slab-reads.js';
import type { SiblingReads } from './sibling-reads.js';
import type { HeldWrites } from './held-writes.js';
import type { HeldCreates } from './held-creates.js';
import type { DirNames } from './dir-names.js';
import type { Persist } from './sequencer.js';
import type { Mutex } from './mutex.js';
import type { Writeback } from './writeback.js';
import { msToNs } from '../vault/file-times.js';
import type { InodeNumbers } from '../vault/inode-numbers.js';
import { withNode } from '../vault/meta-entry.js';
import type { NodeInfo } from '../vault/node-info.js';

export interface FsContext {
  root: string;
  meta: MetaTree;
  files: OpenFiles;
  log: Logger;
  /** Space reclamation; absent when the vault has entries it cannot read (their chunks are unknown). */
  reclaim?: Reclaimer;
  /** Held by unlink, rename and the placing of a committed entry: each sees the others whole. */
  namespace: Mutex;
  /** Commits of closed files, queued (writeback.ts). */
  writeback: Writeback;
  /** Where new files' inode numbers come from (vault/inode-numbers.ts). */
  inodes: InodeNumbers;
  /** Reads the FUSE binding answers from the chunk cache's slab (slab-reads.ts); absent without a mount. */
  slabReads?: SlabReads;
  /** Small files decrypted ahead of a reader walking their directory (sibling-reads.ts); absent without a mount. */
  siblingReads?: SiblingReads;
  /** Writes the FUSE binding holds for new files (held-writes.ts); absent without a mount. */
  heldWrites?: HeldWrites;
  /** Creates the FUSE binding answers (held-creates.ts); absent without a mount, or in a sealed vault. */
  heldCreates?: HeldCreates;
  /** When a FUSE request last reached JS (performance.now()): background work yields to a busy mount. */
  lastRequestMs: number;
  /** Directories listed for the binding's answers to lookups of missing names (dir-names.ts); absent without a mount. */
  dirNames?: DirNames;
}

/** Whether an open file still has somewhere to commit to: a name, or (a hard-linked file) its record. */
export const reachable = (file: OpenFile): boolean => file.path !== '' || file.link !== undefined;

/**
 * The node fields a commit keeps: those of the entry it replaces (xattrs, type), with an inode number
 * given now to an entry that had none (written by an older sefs, or created and lost to a power loss).
 */
async function nodeFor(ctx: FsContext, file: OpenFile): Promise<NodeInfo> {
  // The facts carry the node fields without decoding a large (compressed) DataMap.
  const current: { node?: NodeInfo } | undefined = await (file.path ? ctx.meta.readFacts(file.path) : ctx.meta.recordEntry(file.link!)).catch(() => undefined);
  const node = { ...current?.node };
  node.ino ??= await ctx.inodes.allocate();
  return node;
}

/**
 * How an open file's commit persists its new entry, keeping the metadata file's mode and owner (the commit
 * runs under the file's lock, as chmod/chown/utimens of an open file do, so none of them is undone).
 * Times: an explicit utimens while dirty wins, its mtime until the content changes after it; otherwise the mtime
 * is the moment of the last change (what stat showed while the change was uncommitted) and the atime stays
 * (writing is no access).
 * The entry is written while the chunks it names are synced, then put in place under the namespace lock at
 * the file's path of that moment (a rename or unlink meanwhile moved or removed it), and `placed` records
 * the commit there, before any other namespace change can see the file.
 */
export function persistFor(ctx: FsContext, file: OpenFile): Persist {
  return async (entry, chunksDurable, placed) => {
    if (!reachable(file)) return false; // removed while open: nothing to persist
    const st = file.path ? await ctx.meta.lstatNs(file.path).catch(() => undefined) : undefined;
    const attrs = {
      mode: st ? Number(st.mode) : 0o100644,
      uid: st ? Number(st.uid) : undefined,
      gid: st ? Number(st.gid) : undefined,
      atime: file.times?.atime ?? st?.atimeNs,
      mtime: utimensMtime(file) ?? msToNs(file.seq.modifiedAt),
    };
    const staged = await ctx.meta.stageEntry(withNode(entry, await nodeFor(ctx, file)), attrs, true, file.path || undefined);
    try {
      await chunksDurable;
    } catch (err) {
      await staged.discard();
      throw err;
    }
    const dir = await ctx.namespace.run(async () => {
      if (!reachable(file)) return undefined;
      const where = await staged.placeAt(file.path, file.link).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' && !file.path) return undefined; // the record's last name went meanwhile
        throw err;
      });
      if (where !== undefined) placed(where);
      return where;
    });
    if (dir === undefined) {
      await staged.discard();
      return false;
    }
    file.times = undefined;
    await ctx.meta.syncDir(dir);
    return true;
  };
}

/**
 * Commit an open file's changes (a file removed while open has nowhere to commit to: its data stays readable).
 * Whether there was anything to commit.
 */
export async function commitFile(ctx: FsContext, file: OpenFile): Promise<boolean> {
  if (!reachable(file)) return false;
  return file.seq.commit(persistFor(ctx, file));
}
