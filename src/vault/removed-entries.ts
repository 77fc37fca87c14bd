/**
 * Entries removed from meta/ by an unlink: renamed into tmp/ at once, their inodes freed later, off the request
 * path. On the hosts measured here (ext4 mounted with `discard`) the host's unlink of an entry file costs
 * 290-345 µs, most of an unlink request, against 11-13 µs for a rename (native-notes/small-files.md, tenth session).
 *
 * What a power loss may leave stays what the unlink left: the name gone, or the name with its entry whole. So an
 * inode is freed only once its rename out of meta/ is durable: after an fsync of tmp/ (a rename across directories
 * is durable once both are synced) and of the directory it left, or of the nearest one still there when that one
 * was removed too (its removal is an entry change in that ancestor). For the same reason an fsync of a directory
 * of meta/ syncs tmp/ first while removed entries wait (MetaTree.syncDir): unlink + fsync(dir) stays durable.
 * Only entries with one host name come here: a hard-link stub's other names count its host links (st_nlink).
 * What a crash leaves in tmp/ is removed by the next mount, with the rest of tmp/ (MetaTree.removeLeftovers).
 */
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { closeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { native } from '../core/native.js';
import { fsyncRemoval } from '../store/dir-syncs.js';
import { atName, fsyncDirInside, holdDirSync, renameInside } from './safe-fs.js';

/** How long removed entries wait for others of their directory (rm -r removes thousands in a row). */
const FREE_AFTER_MS = 500;
/** Held entries freed per job of the thread pool. */
const UNLINK_BATCH = 256;

export class RemovedEntries {
  /** Removed entries in tmp/ by the meta/ directory whose fsync makes their removal durable. */
  private readonly byDir = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  private freeing: Promise<void> | undefined;

  constructor(
    private readonly tmpDir: string,
    private readonly tmpArea: string,
    private readonly metaArea: string,
    /** fsync of a directory of meta/ (ENOENT when it was removed), tmp/ left alone: a pass syncs that first. */
    private readonly syncDir: (dir: string) => Promise<void>,
  ) {}

  /** Whether removed entries wait in tmp/: an fsync of a directory of meta/ then syncs tmp/ first (syncHeld). */
  get holding(): boolean {
    return this.byDir.size > 0 || this.freeing !== undefined;
  }

  /** fsync tmp/, so that the renames into it so far are durable on its side. */
  syncHeld(): Promise<void> {
    return fsyncDirInside(this.tmpDir, this.tmpArea);
  }

  /** Take entry `disk` (a file of meta/ with one host name) out of meta/ now; its inode is freed later. */
  remove(disk: string): void {
    const held = join(this.tmpDir, `gone-${randomBytes(8).toString('hex')}`);
    renameInside(disk, this.metaArea, held, this.tmpArea);
    this.keep(dirname(disk), [held]);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.free();
    }, FREE_AFTER_MS).unref();
  }

  /** Make the removals so far durable and free their inodes (also at unmount); settles when done. */
  async free(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // One pass at a time: a pass frees what was removed before it began.
    while (this.freeing) await this.freeing;
    if (this.byDir.size === 0) return;
    const batch = [...this.byDir];
    this.byDir.clear();
    this.freeing = this.freeBatch(batch).finally(() => (this.freeing = undefined));
    await this.freeing;
  }

  private async freeBatch(batch: [string, string[]][]): Promise<void> {
    try {
      await this.syncHeld();
    } catch {
      for (const [dir, held] of batch) this.keep(dir, held); // the next pass tries again
      return;
    }
    for (const [dir, held] of batch) {
      try {
        await fsyncRemoval(dir, this.syncDir);
      } catch {
        // Not durable: never freed while the old name may come back. The next pass tries again; at unmount, what
        // is left stays in tmp/ for the next mount to remove.
        this.keep(dir, held);
        continue;
      }
      await this.unlinkHeld(held); // what is left, the next mount removes
    }
  }

  /**
   * Free the held entries' inodes: in one job of the thread pool per batch where the addon has it (a job per
   * file cost the JS thread a queueing and a completion wake-up each, thousands under an rm -r), else one by one.
   * Failures are left alone: the next mount removes what is left in tmp/.
   */
  private async unlinkHeld(held: string[]): Promise<void> {
    const removeNames = native?.removeNames;
    if (!removeNames) {
      for (const path of held) await atName(path, this.tmpArea, (p) => unlink(p)).catch(() => {});
      return;
    }
    let fd: number;
    try {
      fd = holdDirSync(this.tmpDir, this.tmpArea);
    } catch {
      return;
    }
    try {
      for (let i = 0; i < held.length; i += UNLINK_BATCH) await removeNames(fd, held.slice(i, i + UNLINK_BATCH).map((path) => basename(path))).catch(() => {});
    } finally {
      closeSync(fd);
    }
  }

  private keep(dir: string, held: string[]): void {
    const list = this.byDir.get(dir);
    if (list) list.push(...held);
    else this.byDir.set(dir, [...held]);
  }
}
