/** What every FUSE operation works with. */
import type { Logger } from './errno.js';
import type { MetaTree } from '../vault/meta-tree.js';
import type { OpenFile, OpenFiles } from './open-files.js';

export interface FsContext {
  root: string;
  meta: MetaTree;
  files: OpenFiles;
  log: Logger;
}

/**
 * Commit an open file's changes and persist its new entry, keeping the metadata file's mode and owner.
 * Times: an explicit utimens while dirty wins, otherwise atime and mtime are now.
 */
export async function commitFile(ctx: FsContext, file: OpenFile): Promise<void> {
  await file.seq.commit(async (entry, chunksDurable) => {
    if (!file.path) return; // removed while open: nothing to persist
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
  });
}
