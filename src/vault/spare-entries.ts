/**
 * Spare metadata inodes: a commit swaps its new entry in with renameat2(RENAME_EXCHANGE) instead of renaming it
 * over the old one, so the old entry's inode stays behind in tmp/ under the temp's name, and a later commit
 * writes its entry into that inode instead of creating a file. A commit then neither frees nor allocates an
 * inode. On the hosts measured here (ext4 without a journal) an inode allocation skips every inode of its
 * block group freed in the last half minute or so (`recently_deleted`), so each freed entry made every later
 * create and commit slower, and a tree of thousands of new files paid that quadratically
 * (native-notes/benchmarking.md, sixth session).
 *
 * A replaced entry becomes a spare only once the exchange that replaced it is durable (the fsync of its meta/
 * directory): until then a power loss can bring that entry back under its name, and it must still hold what it
 * held. A spare holds an old entry until it is reused (no name in meta/ reaches it); the mount removes what is
 * left at unmount, and any mount removes tmp/'s leftovers first. Without the native addon (or an old build of
 * it) there is no exchange: commits rename over, as before.
 */
import { lstatSync, renameSync, rmSync } from 'node:fs';
import { native } from '../core/native.js';
import { checkErrno } from './posix-error.js';
import { atNameSync } from './safe-fs.js';

/** Spares kept at most: commits running at once each take one and give one back. */
const MAX_SPARES = 64;

/** renameat2(a, b, RENAME_EXCHANGE): both names exist and swap their nodes atomically. */
export function exchangeSync(a: string, b: string): void {
  checkErrno(native!.exchange!(a, b), 'renameat2(RENAME_EXCHANGE)');
}

export class SpareEntries {
  private readonly spares: string[] = [];
  /** Replaced entries by the meta/ directory whose fsync makes their replacement durable. */
  private readonly unsynced = new Map<string, string[]>();
  /** Whether commits can exchange: the addon offers it, and the host file system has not refused it. */
  private usable = native?.exchange !== undefined;

  constructor(private readonly tmpArea: string) {}

  /**
   * Put entry `temp` in place at `target` (both checked paths): exchanged when it can be (true: `temp` now holds
   * the entry `target` held, for keep()), else renamed over it (false).
   */
  replace(temp: string, target: string): boolean {
    if (this.usable) {
      try {
        exchangeSync(temp, target);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A file system without the exchange says so once; a missing target is made by the rename.
        if (code === 'EINVAL' || code === 'ENOSYS' || code === 'EOPNOTSUPP') this.usable = false;
        else if (code !== 'ENOENT') throw err;
      }
    }
    renameSync(temp, target);
    return false;
  }

  /** A spare's path in tmp/ (to be written over, then exchanged or given back), if there is one. */
  take(): string | undefined {
    return this.spares.pop();
  }

  /**
   * `path` in tmp/ holds an inode nothing else names (the entry an exchange replaced, or a spare not used after
   * all): kept for a later commit, or removed when enough are kept or it is not a plain file with one name.
   */
  keep(path: string): void {
    try {
      const st = atNameSync(path, this.tmpArea, (p) => lstatSync(p));
      if (this.usable && st.isFile() && st.nlink === 1 && this.spares.length < MAX_SPARES) {
        this.spares.push(path);
        return;
      }
    } catch {
      return; // gone: nothing to keep or remove
    }
    this.remove(path);
  }

  /** `path` in tmp/ holds the entry an exchange in meta/ directory `dir` replaced: a spare once `dir` is synced. */
  replacedIn(dir: string, path: string): void {
    const list = this.unsynced.get(dir);
    if (list) list.push(path);
    else this.unsynced.set(dir, [path]);
  }

  /** The replaced entries that a sync of `dir` starting now makes durable: keep() each once it is done. */
  syncing(dir: string): string[] {
    const list = this.unsynced.get(dir) ?? [];
    this.unsynced.delete(dir);
    return list;
  }

  /** Remove every spare and replaced entry (unmount): old entries do not outlive the mount. */
  clear(): void {
    for (const path of this.spares.splice(0)) this.remove(path);
    for (const list of this.unsynced.values()) for (const path of list) this.remove(path);
    this.unsynced.clear();
  }

  private remove(path: string): void {
    try {
      atNameSync(path, this.tmpArea, (p) => rmSync(p, { force: true }));
    } catch {
      // tmp/ is emptied at the next mount anyway
    }
  }
}
