/**
 * fsyncs of directories, coalesced. A caller needs an fsync that started after its call (its rename must be
 * in it): when one is running, every caller arriving meanwhile shares the single one that follows it. A
 * batch of commits placing hundreds of entries in one directory then costs two or three fsyncs, not one each.
 */
import { dirname } from 'node:path';
import { fsyncDir } from '../vault/safe-fs.js';

/**
 * Make a removal in `dir` durable. A directory removed since (rm -r) is durable through the nearest one still
 * there: its own removal is an entry change in that ancestor.
 */
export async function fsyncRemoval(dir: string, fsync: (dir: string) => Promise<void>): Promise<void> {
  for (let at = dir; ; at = dirname(at)) {
    try {
      return await fsync(at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) throw err;
    }
  }
}

export class DirSyncs {
  private readonly running = new Map<string, Promise<void>>();
  private readonly following = new Map<string, Promise<void>>();

  constructor(private readonly fsync: (dir: string) => Promise<void> = fsyncDir) {}

  sync(dir: string): Promise<void> {
    const next = this.following.get(dir);
    if (next) return next;
    const current = this.running.get(dir);
    if (!current) return this.start(dir);
    const after = current
      .catch(() => {})
      .then(() => {
        this.following.delete(dir);
        return this.start(dir);
      });
    this.following.set(dir, after);
    return after;
  }

  private start(dir: string): Promise<void> {
    const work = this.fsync(dir).finally(() => {
      if (this.running.get(dir) === work) this.running.delete(dir);
    });
    this.running.set(dir, work);
    return work;
  }
}
