/**
 * Fresh metadata inodes, made ahead of need: a create takes one and puts it at its new name with
 * renameat2(RENAME_NOREPLACE) instead of creating its entry in place. On the hosts measured here (ext4 without a
 * journal) an inode allocation skips every inode of its block group freed in the last half minute or so
 * (`recently_deleted`), which made the create's one open(O_CREAT) cost 0.25-1.2 ms on the daemon's JS thread
 * under /tmp (native-notes/small-files.md, sixth and seventh sessions). Here the allocations run in libuv's
 * thread pool, in batches (the addon's makeFresh), ahead of the creates, and a create pays a rename.
 *
 * Only never-written inodes are used: each is created empty and never written while it waits, so whatever a
 * power loss keeps of the rename, the name shows an empty file or the create's own bytes, never another file's
 * (a reused inode renamed in unsynced could show its old bytes). Spares of commits (spare-entries.ts) are the
 * other kind: written over, fsynced, and exchanged in.
 *
 * They wait in two directories of tmp/ (FRESH_DIRS): an allocation holds its directory's lock for as long as it
 * takes, and a rename out of the same directory would wait for it, so refills go to one and creates take from
 * the other, swapping when that one is empty. Each keeps the descriptor it was created with (the create writes
 * its node fields through it: no open by the new name). On ext4 the two directories are placed as top-level
 * directories are (markTopDir): in a quiet block group, where an allocation costs a few tens of microseconds
 * instead of up to a millisecond. Any mount removes them first with what a crash left in them (nothing says
 * what that is, as for the rest of tmp/) and makes them anew; unmount removes them.
 * Without the native addon, or on a host file system that refuses the flag, there is no pool: creates are made
 * in place, as before.
 */
import { closeSync, fstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { native } from '../core/native.js';
import { checkErrno } from './posix-error.js';
import { atNameSync, heldDir, holdDirSync, nameIn } from './safe-fs.js';

/** The directories of tmp/ that hold fresh inodes. */
export const FRESH_DIRS = ['fresh-0', 'fresh-1'];

/**
 * Fresh inodes kept at most, in both directories together (a descriptor each). During a burst of creates the
 * refill keeps up or nearly (an allocation in the quiet group takes tens of microseconds, a create through
 * FUSE 1-5 ms); the pool covers the start of a burst after an idle moment and a batch that waits in the thread
 * pool behind commits' fsyncs (40-170 ms seen under load). Seventh session: 1,000 creates right after a mount
 * found it empty 0-4 times (the first batches were still being made).
 * SEFS_FRESH_INODES sets another size (0: every create in place), for tests and measurements.
 */
const POOL_SIZE = Number(process.env.SEFS_FRESH_INODES ?? 128);

/** Made in one job at most (a batch of allocations in the quiet group takes about a millisecond). */
const BATCH = 32;

const EEXIST = osConstants.errno.EEXIST;

/** renameat2's errors of a host file system that has no RENAME_NOREPLACE (or tmp/ and meta/ apart). */
const UNSUPPORTED = ['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'EXDEV'];

/** A fresh inode put at its new name: open for writing, and its owner and mode as made (a create sets its own). */
export interface FreshInode {
  fd: number;
  made: Pick<Stats, 'uid' | 'gid' | 'mode'>;
}

interface Waiting extends FreshInode {
  name: string;
}

/** One directory of fresh inodes, held open for the mount's life. */
interface Box {
  path: string;
  fd: number;
  files: Waiting[];
}

export class FreshEntries {
  /** The box creates take from; refills go to the other. */
  private takeAt = 0;
  /** The batch of fresh inodes being made. */
  private making?: Promise<void>;
  private refillQueued = false;
  private serial = 0;
  private stopped = false;
  /** Creates that took a fresh inode, and those that found none (and created in place). */
  taken = 0;
  missed = 0;
  /** Of those taken, how many were given away whole (handOver) and used. */
  handedTaken = 0;
  /** Given away whole and not used yet. */
  private out = 0;

  private constructor(
    private readonly tmpArea: string,
    private readonly boxes: Box[],
  ) {}

  /**
   * The pool of vault `tmpArea` (tmp/'s real path), its directories emptied and a refill started; undefined
   * where renameat2(RENAME_NOREPLACE) is not available (no addon, or one built before it).
   */
  static start(tmpArea: string): FreshEntries | undefined {
    if (!native?.noReplace || !native.makeFresh || !(POOL_SIZE > 0)) return undefined;
    markTopDir(tmpArea, tmpArea);
    const boxes = FRESH_DIRS.map((name) => {
      const path = join(tmpArea, name);
      removeBox(path, tmpArea);
      try {
        atNameSync(path, tmpArea, (p) => mkdirSync(p, 0o700));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // not empty (not ours): used as it is
      }
      return { path, fd: holdDirSync(path, tmpArea), files: [] };
    });
    const pool = new FreshEntries(tmpArea, boxes);
    pool.refill();
    return pool;
  }

  /**
   * Put a fresh inode at `target` (a name in a checked directory: atNameSync), unless that name exists (EEXIST,
   * and the inode stays in the pool, as O_EXCL would leave nothing). Undefined when there is none to give: the
   * caller creates in place.
   */
  placeAt(target: string): FreshInode | undefined {
    const box = this.boxToTake();
    const file = box?.files.pop();
    if (!box || !file) {
      this.missed++;
      this.refillSoon();
      return undefined;
    }
    try {
      checkErrno(native!.noReplace!(nameIn(box.fd, file.name), target), 'renameat2(RENAME_NOREPLACE)');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (UNSUPPORTED.includes(code)) {
        box.files.push(file);
        void this.clear(); // this host cannot: creates are made in place from now on
        return undefined;
      }
      if (code === 'ENOENT') {
        // Gone from tmp/ (or the target's directory removed meanwhile): in place says which.
        closeSync(file.fd);
        return undefined;
      }
      box.files.push(file); // EEXIST, or an error the in-place create would have met too
      throw err;
    }
    this.taken++;
    this.refillSoon();
    return file;
  }

  /**
   * A fresh inode given away whole: its descriptor becomes the caller's, and its directory's descriptor stays
   * open until clear() (the FUSE binding renames it to a new name itself: fs/held-creates.ts).
   */
  handOver(): { dirFd: number; name: string; fd: number } | undefined {
    const box = this.boxToTake();
    const file = box?.files.pop();
    if (!box || !file) {
      this.refillSoon();
      return undefined;
    }
    this.out++; // still in its box until used: counted as waiting, so the pool on disk stays POOL_SIZE
    return { dirFd: box.fd, name: file.name, fd: file.fd };
  }

  /** `n` given away by handOver were closed unused (their files stay in tmp/ until clear()). */
  handedGone(n: number): void {
    this.out = Math.max(0, this.out - n);
    this.refillSoon();
  }

  /** One given away by handOver was put in place by a create. */
  handedUsed(): void {
    this.out = Math.max(0, this.out - 1);
    this.taken++;
    this.handedTaken++;
    this.refillSoon();
  }

  /** Close and remove every waiting inode and the directories (unmount); refills stop. */
  async clear(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.making;
    for (const box of this.boxes) {
      for (const file of box.files.splice(0)) closeSync(file.fd);
      closeSync(box.fd);
      removeBox(box.path, this.tmpArea);
    }
  }

  private boxToTake(): Box | undefined {
    if (this.stopped) return undefined;
    if (this.boxes[this.takeAt]!.files.length === 0) this.takeAt = 1 - this.takeAt;
    const box = this.boxes[this.takeAt]!;
    return box.files.length > 0 ? box : undefined;
  }

  private get waiting(): number {
    return this.boxes[0]!.files.length + this.boxes[1]!.files.length + this.out;
  }

  /**
   * refill() once the request at hand has been answered: handing work to the thread pool wakes one of its threads,
   * which on two busy cores often takes the create's core for a while (strace: a 0.3 ms futex wake).
   */
  private refillSoon(): void {
    if (this.refillQueued) return;
    this.refillQueued = true;
    setImmediate(() => {
      this.refillQueued = false;
      this.refill();
    });
  }

  /**
   * Make fresh inodes until the pool is full, a batch at a time in one job of the thread pool (makeFresh), once a
   * batch's worth has been taken: a job per file cost the JS thread about 0.25 ms each on the loaded machine
   * (handing a job over wakes a thread).
   */
  private refill(): void {
    if (this.making || this.stopped || this.waiting > Math.max(0, POOL_SIZE - BATCH)) return;
    const box = this.boxes[1 - this.takeAt]!;
    const first = this.serial;
    const count = Math.min(BATCH, POOL_SIZE - this.waiting);
    this.serial += count;
    this.making = native!.makeFresh!(box.fd, 'f', first, count).then(
      (fds) => {
        this.making = undefined;
        let failed = false;
        fds.forEach((fd, i) => {
          if (fd < 0) failed ||= fd !== -EEXIST; // a full disk, no descriptors left: the next create tries again
          else if (this.stopped) closeSync(fd); // clear() waits for this, then removes it with its directory
          else box.files.push({ name: `f${first + i}`, fd, made: fstatSync(fd) });
        });
        if (!failed) this.refill();
      },
      () => {
        this.making = undefined;
      },
    );
  }
}

/** Remove directory `path` of tmp/ with the files in it, if it is there (anything else in it stays, and so does it). */
function removeBox(path: string, tmpArea: string): void {
  let fd: number;
  try {
    fd = holdDirSync(path, tmpArea);
  } catch {
    return; // not there (or not a directory: removed with tmp/'s leftovers)
  }
  try {
    for (const name of readdirSync(heldDir(fd))) {
      try {
        unlinkSync(nameIn(fd, name));
      } catch {
        // not a file: nothing of ours
      }
    }
  } finally {
    closeSync(fd);
  }
  try {
    atNameSync(path, tmpArea, (p) => rmdirSync(p));
  } catch {
    // something else in it
  }
}

/**
 * Have directories made in vault directory `dir` placed as top-level ones (ext4's FS_TOPDIR_FL), where the host
 * has the flag; elsewhere nothing changes.
 */
function markTopDir(dir: string, area: string): void {
  const fd = holdDirSync(dir, area);
  try {
    native?.markTopDir?.(heldDir(fd));
  } finally {
    closeSync(fd);
  }
}
