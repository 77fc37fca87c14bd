/** What every FUSE operation works with. */
import type { Logger } from './errno.js';
import type { MetaTree } from '../vault/meta-tree.js';
import type { OpenFile, OpenFiles } from './open-files.js';
import type { Reclaimer } from './reclaim.js';
import type { Persist } from './sequencer.js';

export interface FsContext {
  root: string;
  meta: MetaTree;
  files: OpenFiles;
  log: Logger;
  /** Space reclamation; absent when the vault has entries it cannot read (their chunks are unknown). */
  reclaim?: Reclaimer;
}

/**
 * How an open file's commit persists its new entry, keeping the metadata file's mode and owner (the commit
 * runs under the file's lock, as chmod/chown/utimens of an open file do, so none of them is undone).
 * Times: an explicit utimens while dirty wins, otherwise atime and mtime are now.
 */
export function persistFor(ctx: FsContext, file: OpenFile): Persist {
  return async (entry, chunksDurable) => {
    if (!file.path) return false; // removed while open: nothing to persist
    const st = await ctx.meta.lstat(file.path).catch(() => undefined);
    const attrs = {
      mode: st?.mode ?? 0o100644,
      uid: st?.uid,
      gid: st?.gid,
      // Without explicit times the new metadata file's own (now) are right for changed content.
      ...(file.times ?? {}),
    };
    await ctx.meta.writeEntry(file.path, entry, attrs, true, chunksDurable);
    file.times = undefined;
    return true;
  };
}

/** Commit an open file's changes. */
export async function commitFile(ctx: FsContext, file: OpenFile): Promise<void> {
  await file.seq.commit(persistFor(ctx, file));
}
