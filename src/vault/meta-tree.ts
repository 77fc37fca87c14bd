/**
 * The metadata tree: meta/ mirrors the visible tree. Directories and symlinks are themselves; each regular
 * file is a small file holding its entry (size + DataMap or inline bytes), whose own mode, owner and times
 * are the visible file's. Entries are replaced atomically and durably: temp file in tmp/, fsync, rename,
 * fsync of the directory.
 *
 * Everything here but fsync is a synchronous call on the daemon's JS thread in an unsealed vault: each is a
 * few microseconds on cached metadata, and the thread-pool round trip of an async call (two thread switches,
 * milliseconds on a busy machine) was most of a small file's create, stat and open
 * (native-notes/small-files.md). fsync blocks for milliseconds and stays in the pool.
 */
import { randomBytes } from 'node:crypto';
import { type BigIntStats, chmodSync, chownSync, closeSync, constants as fsc, fchmodSync, fstatSync, ftruncateSync, lchownSync, linkSync, fchownSync, fsync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync, type Stats, statSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { basename, dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { DirSyncs } from '../store/dir-syncs.js';
import type { LinkNode, MetaCodec, Place } from './meta-codec.js';
import { DIR_ID_FILE, NO_DIR_ID, createDirId, isHousekeeping, isLongForm, readDirId, sealedNameOf, sideFileOf, storedFormOf } from './meta-dir.js';
import { type EntryFacts, type EntryOpener, MAX_STORED_ENTRY, type MetaEntry, decodeStoredEntry, decodeStoredFacts, encodeEntry, neverWritten, storedBytesOf, withNode } from './meta-entry.js';
import { type LinkedCheck, areaOf, atName, atNameSync, atNode, atNodeSync, createExclusiveSync, fsyncDir, fsyncDirInside, holdDirSync, lstatInside, mkdirInsideSync, openRewriteSync, readBoundedMany, readBoundedSync, renameInside, sameBytesSync } from './safe-fs.js';
import { RemovedEntries } from './removed-entries.js';
import { SpareEntries } from './spare-entries.js';
import { FreshEntries } from './fresh-entries.js';
import { STUB_PLACE, isStubFile, openAtPlace, recordIno, recordName, recordPlace, stubEntry } from './hard-links.js';
import type { NodeInfo } from './node-info.js';
import { posixError } from './posix-error.js';
import { NAME_MAX, childPath } from './names.js';
import { nowNs, setFdTimesNowSync, setFdTimesNs, setTimesNs } from './file-times.js';

export interface EntryAttrs {
  mode: number;
  /** Owner; a gid of -1 keeps the one the node got (a setgid directory's). */
  uid?: number;
  gid?: number;
  /** ns since the epoch (exact); now when absent and the other is given. */
  atime?: bigint;
  mtime?: bigint;
}

/** The visible parent directory of a visible path ("/a/b" -> "/a", "/b" -> "/"). */
function parentOf(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

/**
 * prefetchFacts: names of one directory read ahead at most; entries read per thread-pool job (one job per file
 * cost the JS thread a queueing and a completion hop each: most of a warm ls -lR's daemon time); jobs at once
 * (libuv's pool has 4 threads: on a cold disk, 4 reads in flight).
 */
const PREFETCH_MAX = 4096;
const PREFETCH_BATCH = 32;
const PREFETCH_JOBS = 4;

/** Who a new node belongs to (the caller of the mount, when the daemon may give files away: ownerFor). */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * The mount root's own mode and owner live on an empty file beside meta/ (meta/ itself stays 0700, the
 * vault's privacy); until chmod or chown of the root creates it, the root shows ROOT_DEFAULT_MODE and
 * meta/'s owner.
 */
export const ROOT_NODE_FILE = 'root-node';
const ROOT_DEFAULT_MODE = 0o755;
const S_ISGID = 0o2000;

/** Read once: the umask applies to the temp file's mode, and our own ids need no chown. */
const PROCESS_UMASK = process.umask();
const OWN_UID = process.getuid?.() ?? 0;
const OWN_GID = process.getgid?.() ?? 0;

/** A file's next entry, written and waiting to be put in place. */
export interface StagedEntry {
  /**
   * Rename it over `path`'s entry, or its hard-link record `link` (found from `path` when not given; a linked
   * file whose open name was removed has only its record); returns the directory to fsync for it to be durable.
   */
  placeAt(path: string, link?: number): Promise<string>;
  discard(): Promise<void>;
}

export class MetaTree {
  /**
   * Renames and links begun, and those running now: a walk of meta/ that began with none running and ended
   * with `moves` unchanged saw every entry where it stays (the mount's count of what files name: session.ts).
   * A running one can move an entry at any moment: a link puts its record in links/ and fsyncs before the stub
   * replaces the entry, a rename over a hard link's last name fsyncs after its rename(2).
   */
  moves = 0;
  movesInFlight = 0;

  /** Run a rename or link, counted in `moves` and `movesInFlight`. */
  private async moving(move: () => Promise<void>): Promise<void> {
    this.moves++;
    this.movesInFlight++;
    try {
      await move();
    } finally {
      this.movesInFlight--;
    }
  }
  /** Decoded entries by visible path (for opens), bounded by their size in memory. */
  private readonly entries = new LRUCache<string, MetaEntry>({ maxSize: 64 * 1024 * 1024, sizeCalculation: entryMemory });
  /** Size and stored bytes by visible path (for stats: a stat never decodes a DataMap it does not need). */
  private readonly facts = new LRUCache<string, EntryFacts>({ max: 50_000 });

  /** Where meta/, tmp/ and links/ really are: nothing reached through them may lead elsewhere (safe-fs.ts). */
  private readonly metaArea: string;
  private readonly tmpArea: string;
  private readonly linksArea: string;
  /** Hard-link records (hard-links.ts), beside meta/. */
  readonly linksDir: string;
  /** safe-fs lets a file with other names through only when it is one of our stubs. */
  private readonly linkedOk: LinkedCheck;

  /** The root's mode and owner (ROOT_NODE_FILE): a file beside meta/. */
  private readonly rootNode: string;
  /** Inodes of replaced entries, reused by later commits (spare-entries.ts). */
  private readonly spares: SpareEntries;
  /** Never-written inodes made ahead for creates (fresh-entries.ts), once startFresh() has run. */
  private fresh?: FreshEntries;
  /** Entries unlinked from meta/, their inodes freed once that is durable (removed-entries.ts). */
  private readonly removed: RemovedEntries;

  constructor(
    readonly metaDir: string,
    readonly tmpDir: string,
    readonly codec: MetaCodec,
  ) {
    this.rootNode = join(dirname(metaDir), ROOT_NODE_FILE);
    this.metaArea = areaOf(metaDir);
    this.tmpArea = areaOf(tmpDir);
    this.linksDir = join(dirname(metaDir), 'links');
    this.linksArea = areaOf(this.linksDir);
    this.linkedOk = (self) => isStubFile(self, codec);
    this.spares = new SpareEntries(this.tmpArea);
    this.removed = new RemovedEntries(tmpDir, this.tmpArea, this.metaArea, (dir) => this.syncDir(dir, true));
  }

  /** Ids of a sealed vault's directories by visible path (meta-dir.ts), read on first use. */
  private readonly dirIds = new LRUCache<string, Uint8Array>({ max: 50_000 });
  /** fsyncs of directories of meta/ and links/ (a commit of a linked file syncs links/), each in its own area. */
  private readonly dirSyncs = new DirSyncs((dir) => fsyncDirInside(dir, dir === this.linksDir ? this.linksArea : this.metaArea));
  /** Entry reads started by prefetchFacts, by visible path. */
  private readonly prefetching = new Map<string, Promise<void>>();
  /** Bumped by every change of an entry or a name: a prefetch that began before one keeps nothing. */
  private changes = 0;
  /**
   * By visible directory path: host ctimes (ns) moved only by commits' renames, and the ctime to show instead
   * (shownDirCtime). A directory renamed since has another ctime, so a record left under its old path is inert.
   */
  private readonly dirCtimes = new LRUCache<string, { after: bigint; shown: bigint }>({ max: 10_000 });

  /** The meta/ path of a visible path ("/a/b"), below meta/'s real path (safe-fs walks a long one from there). */
  diskPath(path: string): string {
    const names = path.split('/').filter(Boolean);
    if (!this.codec.sealed) return join(this.metaArea, ...names);
    let disk = this.metaArea;
    let visible = '';
    for (const name of names) {
      // No such name can exist (the host would say so of a plain name; a sealed one is stored hashed).
      if (name.length > NAME_MAX / 4 && Buffer.byteLength(name) > NAME_MAX) throw posixError('ENAMETOOLONG');
      disk = join(disk, storedFormOf(this.codec.encodeName(name, this.dirIdAt(visible || '/', disk))));
      visible += '/' + name;
    }
    return disk;
  }

  /** A sealed directory's id, by its visible path and its meta/ path (a small synchronous read on a miss). */
  private dirIdAt(visible: string, disk: string): Uint8Array {
    let id = this.dirIds.get(visible);
    if (!id) {
      // Any kind: under a file, the lookup's ENOTDIR.
      id = atNodeSync(disk, this.metaArea, ['dir', 'file', 'symlink'], (self) => readDirId(self, true));
      this.dirIds.set(visible, id);
    }
    return id;
  }

  /** What a node's sealing is bound to: the id of its directory and its name. */
  placeOf(path: string): Place {
    const cut = path.lastIndexOf('/');
    const name = path.slice(cut + 1);
    if (!this.codec.sealed) return { dir: NO_DIR_ID, name };
    const parent = parentOf(path);
    return { dir: this.dirIdAt(parent, this.diskPath(parent)), name };
  }

  /** How the metadata file at `path` opens: sealed for its place, or a hard-link stub. */
  private opener(path: string): EntryOpener {
    return openAtPlace(this.codec, this.placeOf(path));
  }

  private recordPath(ino: number): string {
    return join(this.linksDir, recordName(ino));
  }

  /** lstat of `path`'s metadata node, undefined when there is none. */
  private lstatIfPresent(path: string): Stats | undefined {
    try {
      return lstatInside(this.diskPath(path), this.metaArea);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * The hard-link record a name is a stub for; undefined for any other node, and for no node (read from the
   * entry, cached).
   */
  linkAt(path: string): number | undefined {
    let raw = this.entries.get(path);
    if (!raw) {
      const st = this.lstatIfPresent(path);
      if (!st?.isFile() || st.size > 256) return undefined; // a stub is a few dozen bytes
      raw = decodeStoredEntry(this.readStored(path), this.opener(path));
      this.entries.set(path, raw);
    }
    return raw.node?.link;
  }

  /**
   * Told the inode number of a file with several names after each change to it (mode, owner, times, xattrs,
   * content, a name added, removed or moved): the kernel keeps each name's attributes apart, and only a
   * change made through one name refreshes that one (mount.ts has the kernel drop the others').
   */
  onLinkedChange?: (ino: number) => void;

  /**
   * Told the path of each entry a commit puts in place: its ctime (and, once committed, its stored size)
   * change without a request of the kernel's, so what the binding keeps of its attributes must go (mount.ts).
   */
  onEntryPlaced?: (path: string) => void;

  private linkedChanged(link: number | undefined): void {
    if (link !== undefined) this.onLinkedChange?.(link);
  }

  /** linkAt for a name that may be gone or unreadable (what a rename or unlink is about to change). */
  private linkIfAny(path: string): number | undefined {
    try {
      return this.linkAt(path);
    } catch {
      return undefined;
    }
  }

  /** A hard-link record's entry. */
  async recordEntry(ino: number): Promise<MetaEntry> {
    return this.readRecord(ino);
  }

  /** A hard-link record's entry (cached under "#<ino>": every name shares it). */
  private readRecord(ino: number): MetaEntry {
    const key = `#${ino}`;
    let entry = this.entries.get(key);
    if (!entry) {
      let stored: Buffer;
      try {
        stored = readBoundedSync(this.recordPath(ino), this.linksArea, MAX_STORED_ENTRY, { noAtime: true });
      } catch (err) {
        // A stub whose record is gone is damage (fsck names it), not a missing name.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw posixError('EIO', `hard-link record ${recordName(ino)} is missing`);
        throw err;
      }
      entry = decodeStoredEntry(stored, { openEntry: (b) => this.codec.openEntry(b, recordPlace(ino)) });
      this.entries.set(key, entry);
    }
    return entry;
  }

  /**
   * Plain lstat (the hottest call): through a planted directory link it could report a host file's attributes
   * to the mount's user, but every call that reads, lists or changes anything is checked.
   */
  lstat(path: string): Promise<Stats> {
    return attempt(() => (path === '/' ? this.rootStat() : lstatInside(this.diskPath(path), this.metaArea)));
  }

  /** lstat with times in ns (what getattr shows). */
  lstatNs(path: string): Promise<BigIntStats> {
    return attempt(() => (path === '/' ? this.rootStatNs() : lstatInside(this.diskPath(path), this.metaArea, { bigint: true })));
  }

  /** meta/ as the mount root: its type, size, links and times, with the root's own mode and owner. */
  private rootStat(): Stats {
    const st = lstatSync(this.metaDir);
    const own = this.rootOwnStat();
    st.mode = (st.mode & ~0o7777) | (own ? Number(own.mode) & 0o7777 : ROOT_DEFAULT_MODE);
    if (own) {
      st.uid = Number(own.uid);
      st.gid = Number(own.gid);
    }
    return st;
  }

  private rootStatNs(): BigIntStats {
    const st = lstatSync(this.metaDir, { bigint: true });
    const own = this.rootOwnStat();
    st.mode = (st.mode & ~0o7777n) | (own ? own.mode & 0o7777n : BigInt(ROOT_DEFAULT_MODE));
    if (own) {
      st.uid = own.uid;
      st.gid = own.gid;
      // A chmod or chown of the root is a change of the root (its ctime), as are changes of its entries.
      if (own.ctimeNs > st.ctimeNs) st.ctimeNs = own.ctimeNs;
    }
    return st;
  }

  private rootOwnStat(): BigIntStats | undefined {
    try {
      const st = lstatSync(this.rootNode, { bigint: true });
      return st.isFile() ? st : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Change the root's own mode or owner on ROOT_NODE_FILE (made on first use, starting as what the root
   * showed; never followed if a link). Its mode is a directory's: a chown does not clear setgid there.
   */
  private changeRoot(change: (fd: number) => void, keepMode = false): void {
    const fresh = this.rootOwnStat() === undefined;
    const fd = openSync(this.rootNode, fsc.O_RDONLY | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    try {
      if (fresh) {
        const st = lstatSync(this.metaDir);
        if (st.uid !== OWN_UID || st.gid !== OWN_GID) fchownSync(fd, st.uid, st.gid);
        fchmodSync(fd, ROOT_DEFAULT_MODE);
      }
      const mode = fstatSync(fd).mode & 0o7777;
      change(fd);
      if (keepMode && (fstatSync(fd).mode & 0o7777) !== mode) fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * How a log line names a visible path: as stored in a sealed vault (no plaintext), quoted in a plain one.
   * Never throws (it names the path of a failure): a sealed path that has no stored form is only counted.
   */
  logName(path: string): string {
    if (!this.codec.sealed) return JSON.stringify(path);
    try {
      return JSON.stringify(`meta${this.diskPath(path).slice(this.metaArea.length)}`);
    } catch {
      return `(a path of ${path.split('/').filter(Boolean).length} names)`;
    }
  }

  /** A name in its checked directory (safe-fs.ts), for one synchronous call on it. */
  private atSync<T>(path: string, fn: (at: string, dir: () => Stats) => T): T {
    return atNameSync(this.diskPath(path), this.metaArea, fn);
  }

  async setMode(path: string, mode: number): Promise<void> {
    if (path === '/') return this.changeRoot((fd) => fchmodSync(fd, mode & 0o7777));
    // A symlink's mode means nothing (the kernel never asks for it): refusing one keeps chmod off its target.
    atNodeSync(this.diskPath(path), this.metaArea, ['file', 'dir'], (self) => chmodSync(self, mode), this.linkedOk);
    this.linkedChanged(this.linkIfAny(path));
  }

  /**
   * chown and utimes of a symlink change the link itself; of a file or directory, the pinned node. Synchronous
   * calls, as the other metadata calls (tar and rsync set owner, mode and times of every file they write).
   */
  private async onNode(path: string, direct: (self: string) => void, link: (at: string) => void): Promise<void> {
    const st = path === '/' ? undefined : await this.lstat(path);
    if (st?.isSymbolicLink()) {
      atNameSync(this.diskPath(path), this.metaArea, link);
      if (st.nlink > 1) this.onLinkedChange?.(st.ino); // a plain vault's symlink with other names (linkSymlink)
      return;
    }
    atNodeSync(this.diskPath(path), this.metaArea, ['file', 'dir'], direct, this.linkedOk);
    this.linkedChanged(this.linkIfAny(path));
  }

  setOwner(path: string, uid: number, gid: number): Promise<void> {
    if (path === '/') return attempt(() => this.changeRoot((fd) => fchownSync(fd, uid, gid), true));
    return this.onNode(path, (p) => chownSync(p, uid, gid), (p) => lchownSync(p, uid, gid));
  }

  /** ownerIn() for a new node at `path` (its parent looked at only when the owner is not the daemon). */
  private ownerAt(path: string, owner: Owner | undefined): Owner | undefined {
    if (!owner || (owner.uid === OWN_UID && owner.gid === OWN_GID)) return undefined;
    const parent = parentOf(path);
    return ownerIn(owner, parent === '/' ? lstatSync(this.metaDir) : lstatInside(this.diskPath(parent), this.metaArea));
  }

  /** Times in ns since the epoch, exact (file-times.ts). */
  setTimes(path: string, atime: bigint, mtime: bigint): Promise<void> {
    return this.onNode(
      path,
      (p) => setTimesNs(p, atime, mtime),
      (p) => setTimesNs(p, atime, mtime, true),
    );
  }

  /**
   * After a readdir, read the directory's entries in the background, several at once, as a kernel's
   * readdirplus would: ls -l, rsync, tar and a reader walking the tree stat each name next, and on a cold
   * cache each of those stats would otherwise wait for its entry's disk read in turn. Settles when every
   * read it started has (a readdir that answers with its names' attributes waits for it).
   */
  prefetchFacts(dir: string, names: string[]): Promise<void> {
    const start = this.changes;
    const paths = names
      .slice(0, PREFETCH_MAX)
      .map((name) => childPath(dir, name))
      .filter((p) => !this.facts.has(p) && !this.entries.has(p) && !this.prefetching.has(p));
    // Spread over PREFETCH_JOBS jobs, each of at most PREFETCH_BATCH entries.
    const size = Math.min(PREFETCH_BATCH, Math.max(1, Math.ceil(paths.length / PREFETCH_JOBS)));
    const batches: string[][] = [];
    for (let i = 0; i < paths.length; i += size) batches.push(paths.slice(i, i + size));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length && this.changes === start) {
        const batch = batches[next++]!;
        const read = readBoundedMany(batch.map((p) => this.diskPath(p)), this.metaArea, MAX_STORED_ENTRY, { noAtime: true }).then((stored) => {
          // An entry changed meanwhile (a commit, a rename): what was read may be stale, keep nothing.
          if (this.changes !== start) return;
          stored.forEach((bytes, i) => {
            const path = batch[i]!;
            // A directory, a symlink, a damaged entry: the stat that asks reads it and says why.
            if (bytes instanceof Error || this.facts.has(path)) return;
            try {
              const { entry, ...facts } = decodeStoredFacts(bytes, this.opener(path));
              if (entry) this.entries.set(path, entry);
              this.facts.set(path, facts);
            } catch {
              // damaged: as above
            }
          });
        });
        const settled = read.catch(() => {});
        for (const path of batch) this.prefetching.set(path, settled);
        await settled;
        for (const path of batch) this.prefetching.delete(path);
      }
    };
    return Promise.all(Array.from({ length: Math.min(PREFETCH_JOBS, batches.length) }, worker)).then(() => undefined);
  }

  /**
   * What a stat needs of a file's entry: for a hard-link stub, its record's, and `link` names the record (so a
   * stat or open needs no second look at the stub).
   */
  async readFacts(path: string): Promise<EntryFacts & { link?: number }> {
    const prefetch = this.prefetching.get(path);
    if (prefetch) await prefetch;
    const facts = this.factsAt(path);
    const link = facts.node?.link;
    if (link === undefined) return facts;
    const record = this.readRecord(link);
    return { size: record.size, storedBytes: storedBytesOf(record), node: record.node, link };
  }

  private factsAt(path: string): EntryFacts {
    const known = this.facts.get(path);
    if (known) return known;
    const cached = this.entries.get(path);
    let facts: EntryFacts;
    if (cached) facts = { size: cached.size, storedBytes: storedBytesOf(cached), node: cached.node };
    else {
      const { entry, ...found } = decodeStoredFacts(this.readStored(path), this.opener(path));
      // Decoded anyway (all but compressed maps): kept, so the open that usually follows a stat reads nothing.
      if (entry) this.entries.set(path, entry);
      facts = found;
    }
    this.facts.set(path, facts);
    return facts;
  }

  /** The entry of `path` if it is cached now (a read-ahead's hint: nothing is read, a stub is not followed). */
  cachedEntry(path: string): MetaEntry | undefined {
    return this.entries.get(path);
  }

  /** A file's entry: its own, or for a hard-link stub its record's. */
  async readEntry(path: string): Promise<MetaEntry> {
    let entry = this.entries.get(path);
    if (!entry) {
      entry = decodeStoredEntry(this.readStored(path), this.opener(path));
      this.entries.set(path, entry);
    }
    return entry.node?.link === undefined ? entry : this.readRecord(entry.node.link);
  }

  /**
   * A metadata file as stored: a regular file in meta/, bounded in size, without moving its atime (it is the
   * visible file's atime, and a plain read would set it to now on the host filesystem, relatime).
   */
  private readStored(path: string): Buffer {
    return readBoundedSync(this.diskPath(path), this.metaArea, MAX_STORED_ENTRY, { noAtime: true });
  }

  /** Visible names in a directory (a sealed name that does not decode there is hidden: fsck reports it). */
  async list(path: string): Promise<string[]> {
    return attempt(() => this.listNow(path)!);
  }

  /** list(), synchronously; undefined when the directory holds more than `max` entries (none decoded then). */
  listNow(path: string, max = Infinity): string[] | undefined {
    const disk = this.diskPath(path);
    return atNodeSync(disk, this.metaArea, ['dir'], (self) => {
      const stored = readdirSync(self);
      if (stored.length > max) return undefined;
      if (!this.codec.sealed) return stored;
      const id = this.dirIdAt(path === '' ? '/' : path, disk);
      const names: string[] = [];
      for (const s of stored) {
        if (isHousekeeping(s)) continue;
        const sealed = sealedNameOf(self, s);
        const name = sealed === undefined ? undefined : this.codec.decodeName(sealed, id);
        if (name !== undefined) names.push(name);
      }
      return names;
    });
  }

  /**
   * mkdir with exactly `mode` (the kernel has applied the caller's umask; the daemon's must not apply again),
   * owned by `owner` (ownerAt).
   */
  async makeDir(path: string, mode: number, owner?: Owner): Promise<void> {
    const disk = this.diskPath(path);
    const wanted = mode & 0o7777;
    const ids = this.ownerAt(path, owner);
    // The host adds the setgid bit under a setgid directory; a chmod keeps it.
    const finish = (self: string): void => {
      if (ids) chownSync(self, ids.uid, ids.gid);
      const now = statSync(self).mode & 0o7777;
      const target = wanted | (now & S_ISGID);
      if (now !== target) chmodSync(self, target);
    };
    if (!this.codec.sealed) {
      await attempt(() => this.atSync(path, (p) => void mkdirSync(p, wanted)));
      try {
        if (ids || (wanted & ~PROCESS_UMASK) !== wanted || wanted & 0o7000) atNodeSync(disk, this.metaArea, ['dir'], finish);
      } catch (err) {
        this.atSync(path, (p) => rmdirSync(p));
        throw err;
      }
      return;
    }
    await this.writeLongName(path, disk);
    // Owner rwx while its id is written (a daemon that is not root could not write into a 0500 directory).
    this.atSync(path, (p) => mkdirSync(p, wanted | 0o700));
    try {
      atNodeSync(disk, this.metaArea, ['dir'], (self) => createDirId(self));
      await fsyncDirInside(disk, this.metaArea);
      atNodeSync(disk, this.metaArea, ['dir'], finish);
    } catch (err) {
      this.atSync(path, (p) => rmSync(p, { recursive: true, force: true }));
      throw err;
    }
  }

  async removeDir(path: string): Promise<void> {
    const disk = this.diskPath(path);
    if (this.codec.sealed) {
      this.emptySealedDir(disk, this.dirIdAt(path, disk), () => this.atSync(path, (p) => rmdirSync(p)));
      await this.removeLongName(disk);
    } else this.atSync(path, (p) => rmdirSync(p));
    this.forget(path);
  }

  /**
   * Run `remove` (an rmdir, or a rename over the directory) on a sealed directory that holds no node: its id
   * (and any side file a crash left) goes first, and the id comes back if `remove` fails.
   */
  private emptySealedDir(disk: string, id: Uint8Array, remove: () => void): void {
    atNodeSync(disk, this.metaArea, ['dir'], (self) => {
      const present = readdirSync(self);
      const nodes = new Set(present.filter((n) => !isHousekeeping(n)));
      if (nodes.size > 0) throw posixError('ENOTEMPTY');
      for (const name of present) if (name !== DIR_ID_FILE) rmSync(join(self, name), { force: true });
      rmSync(join(self, DIR_ID_FILE), { force: true });
    });
    try {
      remove();
    } catch (err) {
      atNodeSync(disk, this.metaArea, ['dir'], (self) => createDirId(self, id));
      throw err;
    }
  }

  /**
   * A symlink. Sealed, it keeps an inode number of the vault's (`allocateIno`) in its sealed target: its
   * host symlink is made anew by every rename (moveResealed), so the host's number would not stay.
   */
  async makeSymlink(target: string, path: string, owner: Owner | undefined, allocateIno: () => Promise<number>): Promise<void> {
    const disk = this.diskPath(path);
    await this.writeLongName(path, disk);
    const ino = this.codec.sealed ? await allocateIno() : undefined;
    const stored = this.codec.sealLink(target, this.placeOf(path), ino);
    const ids = this.ownerAt(path, owner);
    this.atSync(path, (p) => {
      symlinkSync(stored, p);
      try {
        if (ids) lchownSync(p, ids.uid, ids.gid);
      } catch (err) {
        unlinkSync(p);
        throw err;
      }
    });
  }

  async readSymlink(path: string): Promise<string> {
    return this.symlinkNode(path).target;
  }

  /** The inode number a symlink shows: its sealed one, else its host symlink's (which a host rename keeps). */
  symlinkIno(path: string, st: BigIntStats): number {
    return (this.codec.sealed ? this.symlinkNode(path).ino : undefined) ?? Number(st.ino);
  }

  private symlinkNode(path: string): LinkNode {
    return this.codec.openLink(this.atSync(path, (p) => readlinkSync(p)), this.placeOf(path));
  }

  /** unlink of a file or symlink (the last name of a linked file takes its record along). */
  async removeNode(path: string): Promise<void> {
    const disk = this.diskPath(path);
    const link = this.linkAt(path);
    const names = link === undefined ? 0 : lstatInside(disk, this.metaArea).nlink;
    const symlinkIno = link === undefined ? this.linkedSymlinkIno(path) : undefined;
    // A stub's host links are its names (st_nlink), and so are a plain vault's linked symlink's: unlinked at
    // once, so the names left show one link less. Any other entry leaves at once and is freed later, off the
    // request path.
    if (link === undefined && symlinkIno === undefined) this.removed.remove(disk);
    else this.atSync(path, (p) => unlinkSync(p));
    await this.removeLongName(disk);
    this.forget(path);
    if (link !== undefined && names <= 1) await this.dropRecord(link, dirname(disk));
    else this.linkedChanged(link);
    if (symlinkIno !== undefined) this.onLinkedChange?.(symlinkIno);
  }

  /** The record of a linked file whose last name was removed from `dir`. */
  private async dropRecord(link: number, dir: string): Promise<void> {
    // The removal durable first: a stub must never outlive its record (a record left alone is an orphan,
    // removed at the next mount: removeOrphanRecords).
    await fsyncDirInside(dir, this.metaArea);
    atNameSync(this.recordPath(link), this.linksArea, (p) => rmSync(p, { force: true }));
    this.entries.delete(`#${link}`);
    this.changes++;
  }

  /** The record a rename onto `to` takes away: its last name, when that is another node than `from`'s. */
  private recordReplaced(from: string, to: string): number | undefined {
    let link: number | undefined;
    try {
      link = this.linkAt(to);
    } catch {
      return undefined;
    }
    if (link === undefined) return undefined;
    const target = lstatInside(this.diskPath(to), this.metaArea);
    const source = lstatInside(this.diskPath(from), this.metaArea);
    return target.nlink <= 1 && target.ino !== source.ino ? link : undefined;
  }

  /** Remove the records no stub names (left by a crash between a last unlink and its record's removal). */
  removeOrphanRecords(named: Set<number>): number {
    let n = 0;
    for (const ino of this.listRecords()) {
      if (named.has(ino)) continue;
      atNameSync(this.recordPath(ino), this.linksArea, (p) => rmSync(p, { force: true }));
      n++;
    }
    return n;
  }

  /** The inode numbers of every record in links/. */
  listRecords(): number[] {
    let names: string[];
    try {
      names = atNodeSync(this.linksDir, this.linksArea, ['dir'], (self) => readdirSync(self));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.map(recordIno).filter((n): n is number => n !== undefined);
  }

  /**
   * rename(2). In a sealed vault a file's entry and a symlink's target are bound to their name and
   * directory, so they are sealed again for the new place: written to a temp file (same mode, owner and
   * times, fsynced), renamed over the target, then the old name removed. A crash between the last two
   * leaves both names (the same content twice), never neither. A directory is renamed as is: what it holds
   * is bound to its id, which moves with it.
   */
  renameNode(from: string, to: string): Promise<void> {
    return this.moving(() => this.renameNodeCounted(from, to));
  }

  private async renameNodeCounted(from: string, to: string): Promise<void> {
    const src = this.diskPath(from);
    const dst = this.diskPath(to);
    const replaced = from === to ? undefined : this.recordReplaced(from, to);
    // A moved name changes its node's ctime; a name renamed over takes one link from its node.
    const moved = this.linkIfAny(from);
    const over = from === to ? undefined : this.linkIfAny(to);
    const symlinks = [from, to].map((p) => this.linkedSymlinkIno(p));
    await this.renameNodeOnly(from, to, src, dst);
    if (replaced !== undefined) await this.dropRecord(replaced, dirname(dst));
    this.linkedChanged(moved);
    if (over !== replaced && over !== moved) this.linkedChanged(over);
    for (const ino of new Set(symlinks)) if (ino !== undefined) this.onLinkedChange?.(ino);
  }

  /** The inode number of a plain vault's symlink with other names (linkSymlink) at `path`, if that is one. */
  private linkedSymlinkIno(path: string): number | undefined {
    if (this.codec.sealed) return undefined;
    const st = this.lstatIfPresent(path);
    return st?.isSymbolicLink() && st.nlink > 1 ? st.ino : undefined;
  }

  private async renameNodeOnly(from: string, to: string, src: string, dst: string): Promise<void> {
    const renameChecked = (): void => renameInside(src, this.metaArea, dst, this.metaArea);
    if (!this.codec.sealed || from === to) return renameChecked();
    const st = this.atSync(from, (p) => lstatSync(p, { bigint: true }));
    await this.writeLongName(to, dst);
    if (st.isDirectory()) {
      let target: Stats | undefined;
      try {
        target = this.atSync(to, (p) => lstatSync(p));
      } catch {
        target = undefined;
      }
      if (target?.isDirectory()) this.emptySealedDir(dst, this.dirIdAt(to, dst), renameChecked);
      else renameChecked();
    } else await this.moveResealed(from, to, src, dst, st, renameChecked);
    await this.removeLongName(src);
  }

  private async moveResealed(from: string, to: string, src: string, dst: string, st: BigIntStats, renameChecked: () => void): Promise<void> {
    // A stub is sealed for no place (and a copy would no longer share the node): moved as it is.
    if (!st.isFile() && !st.isSymbolicLink()) return renameChecked();
    if (st.isFile() && this.linkAt(from) !== undefined) return renameChecked();
    const temp = join(this.tmpDir, `move-${randomBytes(8).toString('hex')}`);
    const inTmp = <T>(fn: (p: string) => T): T => atNameSync(temp, this.tmpArea, fn);
    try {
      if (st.isSymbolicLink()) {
        const { target, ino } = this.symlinkNode(from);
        const sealed = this.codec.sealLink(target, this.placeOf(to), ino);
        inTmp((p) => symlinkSync(sealed, p));
        if (Number(st.uid) !== OWN_UID || Number(st.gid) !== OWN_GID) inTmp((p) => lchownSync(p, Number(st.uid), Number(st.gid)));
        inTmp((p) => setTimesNs(p, st.atimeNs, st.mtimeNs, true));
      } else {
        const stored = readBoundedSync(src, this.metaArea, MAX_STORED_ENTRY, { noAtime: true });
        const bytes = neverWritten(stored) ? stored : this.codec.sealEntry(this.codec.openEntry(stored, this.placeOf(from)), this.placeOf(to));
        const mode = Number(st.mode);
        const fd = createExclusiveSync(temp, this.tmpArea, mode & 0o7777);
        try {
          await fillEntryFile(fd, bytes, { mode, uid: Number(st.uid), gid: Number(st.gid), atime: st.atimeNs, mtime: st.mtimeNs }, true);
        } finally {
          closeSync(fd);
        }
      }
      renameInside(temp, this.tmpArea, dst, this.metaArea);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    this.atSync(from, (p) => unlinkSync(p));
  }

  /** A long sealed name's side file (meta-dir.ts), written before the node that needs it. */
  private async writeLongName(path: string, disk: string): Promise<void> {
    const stored = basename(disk);
    if (!this.codec.sealed || !isLongForm(stored)) return;
    const { dir, name } = this.placeOf(path);
    const bytes = Buffer.from(this.codec.encodeName(name, dir), 'latin1');
    const side = join(dirname(disk), sideFileOf(stored));
    // Names are sealed deterministically: the side file a node has (every commit of a file after its first) is
    // kept, and so are its directory's times, which move only when its names change.
    if (this.holds(side, bytes)) return;
    const temp = join(this.tmpDir, `name-${randomBytes(8).toString('hex')}`);
    const fd = createExclusiveSync(temp, this.tmpArea, 0o600);
    try {
      writeAll(fd, bytes);
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
    renameInside(temp, this.tmpArea, side, this.metaArea);
  }

  /** Whether the file at `disk` holds exactly `bytes` (a missing file holds nothing). */
  private holds(disk: string, bytes: Uint8Array): boolean {
    try {
      return sameBytesSync(disk, this.metaArea, bytes, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  private async removeLongName(disk: string): Promise<void> {
    const stored = basename(disk);
    if (this.codec.sealed && isLongForm(stored)) atNameSync(join(dirname(disk), sideFileOf(stored)), this.metaArea, (p) => rmSync(p, { force: true }));
  }

  /**
   * Write a file's next entry to a temp file (fsynced when `durable`), to be put in place later: a commit
   * writes it while its chunks are synced, and places it once they are, under the mount's namespace lock.
   */
  async stageEntry(entry: MetaEntry, attrs: EntryAttrs, durable: boolean, path?: string): Promise<StagedEntry> {
    const plain = encodeEntry(entry);
    // A sealed entry is bound to its place: sealed for `path` now, again at placeAt if it is placed elsewhere.
    const sealedFor = this.codec.sealed && path !== undefined ? this.placeOf(path) : undefined;
    const { temp, fd, was } = this.openTemp(attrs.mode & 0o7777);
    try {
      await fillEntryFile(fd, sealedFor ? this.codec.sealEntry(plain, sealedFor) : this.codec.sealEntry(plain, this.placeOf('/')), attrs, durable, was);
    } catch (err) {
      closeSync(fd);
      rmSync(temp, { force: true });
      throw err;
    }
    closeSync(fd);
    return {
      placeAt: async (path, link = path ? this.linkAt(path) : undefined) => {
        if (link !== undefined) return this.placeRecord(temp, plain, entry, attrs, link, path);
        const target = this.diskPath(path);
        try {
          const place = this.placeOf(path);
          if (this.codec.sealed && !samePlace(place, sealedFor)) {
            const again = atNameSync(temp, this.tmpArea, (p) => openSync(p, fsc.O_WRONLY | fsc.O_TRUNC | fsc.O_NOFOLLOW));
            try {
              await fillEntryFile(again, this.codec.sealEntry(plain, place), { ...attrs, uid: undefined, gid: undefined }, durable);
            } finally {
              closeSync(again);
            }
          }
          await this.writeLongName(path, target);
          const { before, after, result: exchanged } = renameInside(temp, this.tmpArea, target, this.metaArea, (a, b) => this.keepingDirTimes(b, () => this.spares.replace(a, b)));
          this.keepDirCtime(parentOf(path), before, after);
          if (exchanged) this.spares.replacedIn(dirname(target), temp); // the replaced entry's inode, for a later commit
        } catch (err) {
          rmSync(temp, { force: true });
          throw err;
        }
        this.changes++;
        this.entries.set(path, entry);
        this.facts.delete(path);
        this.onEntryPlaced?.(path);
        return dirname(target);
      },
      discard: async () => this.spares.keep(temp),
    };
  }

  /**
   * Where a commit writes its entry: a spare inode (`was`: what it held, for fillEntryFile to make its attributes
   * exact), or a new temp file when there is none.
   */
  private openTemp(mode: number): { temp: string; fd: number; was?: Stats } {
    const spare = this.spares.take();
    if (spare) {
      try {
        const { fd, st } = openRewriteSync(spare, this.tmpArea);
        return { temp: spare, fd, was: st };
      } catch {
        rmSync(spare, { force: true }); // not what it was: a new file instead
      }
    }
    const temp = join(this.tmpDir, `meta-${randomBytes(8).toString('hex')}`);
    return { temp, fd: createExclusiveSync(temp, this.tmpArea, mode) };
  }

  /**
   * A fresh inode prepared for a create the FUSE binding answers itself (fs/held-creates.ts), written with the
   * entry createEmpty would write there: an empty file of inode number `allocateIno()` (a plain vault's entry is
   * the same wherever it is placed). Never written again before its rename, so a power loss shows its name empty or as
   * this, as createEmpty's. Undefined in a sealed vault (names and entries are sealed for their place) or when
   * there is no fresh inode at hand.
   */
  async prepareCreate(allocateIno: () => Promise<number>): Promise<{ dirFd: number; name: string; fd: number; ino: number } | undefined> {
    if (this.codec.sealed) return undefined;
    const fresh = this.fresh?.handOver(); // first: no inode number is spent when there is none
    if (!fresh) return undefined;
    try {
      const ino = await allocateIno();
      writeAll(fresh.fd, this.codec.sealEntry(encodeEntry(withNode(EMPTY_ENTRY_NODE, { ino })), this.placeOf('/')));
      return { ...fresh, ino };
    } catch (err) {
      closeSync(fresh.fd);
      this.preparedGone(1);
      throw err;
    }
  }

  /** `n` inodes prepareCreate gave were closed unused. */
  preparedGone(n: number): void {
    if (n > 0) this.fresh?.handedGone(n);
  }

  /**
   * Runs each replacement of an entry that keeps its directory's times (keepingDirTimes), so that nothing else
   * changes the directory meanwhile: the mount has the creates its FUSE binding answers wait (held-creates.ts).
   */
  dirTimesGuard: <T>(fn: () => T) => T = (fn) => fn();

  private keepingDirTimes<T>(target: string, change: () => T): { before: BigIntStats; after: BigIntStats; result: T } {
    return this.dirTimesGuard(() => keepingDirTimes(target, change));
  }

  /** An O_PATH descriptor of meta/ itself, checked (holdDirSync); the caller closes it. */
  holdRoot(): number {
    return holdDirSync(this.metaArea, this.metaArea);
  }

  /** A create the binding answered at `path` with a prepared inode of number `ino`: known as createEmpty leaves it. */
  adoptCreated(path: string, ino: number): void {
    this.knowCreated(path, withNode(EMPTY_ENTRY_NODE, { ino }));
    this.dirCtimes.delete(parentOf(path)); // its names changed: a ctime a commit kept is not shown any more
    this.fresh?.handedUsed();
  }

  /** Remove the spare and fresh inodes (unmount): old entries do not outlive the mount. */
  async dropSpares(): Promise<void> {
    await this.removed.free();
    this.spares.clear();
    await this.fresh?.clear();
  }

  /** Make fresh inodes for creates from now on (a mount that writes; tmp/ emptied of leftovers first). */
  startFresh(): void {
    this.fresh ??= FreshEntries.start(this.tmpArea);
  }

  /** How creates got their inodes (the op trace's report). */
  freshUse(): string {
    const f = this.fresh;
    return f ? `creates: ${f.taken} took a fresh inode, ${f.missed} found none and created in place (${f.handedTaken} answered in the binding)` : 'creates: no fresh inodes (created in place)';
  }

  /**
   * Put a staged entry in place as hard-link record `link` (sealed again for the record's place), then give
   * the node (the stub every name shares) the commit's times. ENOENT once the record is gone (its last name
   * was removed: nowhere to commit to).
   */
  private async placeRecord(temp: string, plain: Buffer, entry: MetaEntry, attrs: EntryAttrs, link: number, path: string): Promise<string> {
    try {
      readBoundedSync(this.recordPath(link), this.linksArea, MAX_STORED_ENTRY); // still there
      if (this.codec.sealed) {
        const again = atNameSync(temp, this.tmpArea, (p) => openSync(p, fsc.O_WRONLY | fsc.O_TRUNC | fsc.O_NOFOLLOW));
        try {
          await fillEntryFile(again, this.codec.sealEntry(plain, recordPlace(link)), { mode: attrs.mode }, true);
        } finally {
          closeSync(again);
        }
      }
      renameInside(temp, this.tmpArea, this.recordPath(link), this.linksArea);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    this.changes++;
    this.entries.set(`#${link}`, entry);
    if (path) {
      const now = nowNs();
      await this.setTimes(path, attrs.atime ?? now, attrs.mtime ?? now).catch(() => {});
    }
    this.linkedChanged(link); // its size and blocks (setTimes told it too when there was a name to set them on)
    return this.linksDir;
  }

  /**
   * A new empty file: a zero-length metadata file (it reads as empty: decodeStoredEntry) put at its name, a fresh
   * inode renamed there (fresh-entries.ts) or, when there is none, made in place; no temp file. EEXIST if the
   * name is taken. Its node fields (inode number, type) are written unsynced, as the create itself: lost, it
   * reads as empty.
   */
  async createEmpty(path: string, attrs: EntryAttrs, node?: NodeInfo, owner?: Owner): Promise<void> {
    const disk = this.diskPath(path);
    await this.writeLongName(path, disk);
    const entry = node ? withNode(EMPTY_ENTRY_NODE, node) : EMPTY_ENTRY_NODE;
    const bytes = node ? this.codec.sealEntry(encodeEntry(entry), this.placeOf(path)) : undefined;
    await attempt(() =>
      this.atSync(path, (p, dirStat) => {
        const dir = dirStat();
        const fresh = this.fresh?.placeAt(p);
        const fd = fresh?.fd ?? createExclusiveSync(p, this.metaArea, attrs.mode & 0o7777);
        try {
          if (bytes) writeAll(fd, bytes);
          // A fresh inode's owner, mode and times are as it was made: made what the host gives a new file here.
          if (fresh) resetAttrs(fd, { mode: attrs.mode, ...hostOwner(owner, dir) }, fresh.made);
          else setAttrs(fd, { ...attrs, ...ownerIn(owner, dir) });
        } finally {
          closeSync(fd);
        }
      }),
    );
    this.knowCreated(path, entry);
  }

  /** A file just created empty at `path` with `entry`: what the stat and open that follow a create read back. */
  private knowCreated(path: string, entry: MetaEntry): void {
    this.forget(path);
    this.entries.set(path, entry);
    this.facts.set(path, { size: 0, storedBytes: 0, node: entry.node });
  }

  /**
   * link(2): `to` becomes another name of file `from` (native-notes/hard-links.md). A file's first link moves
   * its entry to a record in links/ (durable) and puts a stub in its place (durable); each further name is a
   * host hard link of the stub. `ino` gives the inode number an entry without one gets.
   */
  link(from: string, to: string, ino: () => Promise<number>): Promise<void> {
    return this.moving(() => this.linkCounted(from, to, ino));
  }

  private async linkCounted(from: string, to: string, ino: () => Promise<number>): Promise<void> {
    const src = this.diskPath(from);
    const dst = this.diskPath(to);
    const st = lstatInside(src, this.metaArea, { bigint: true });
    if (st.isSymbolicLink() && !this.codec.sealed) return this.linkSymlink(to, src, dst, Number(st.ino));
    if (!st.isFile()) throw posixError('EPERM', this.codec.sealed ? 'only files have hard links in a sealed vault' : 'only files and symlinks have hard links here');
    if (this.linkAt(from) === undefined) await this.makeRecord(from, src, st, await this.readEntry(from), ino);
    await this.writeLongName(to, dst);
    renameInside(src, this.metaArea, dst, this.metaArea, linkSync);
    this.forget(to);
    this.linkedChanged(this.linkIfAny(from));
  }

  /**
   * A plain vault's symlink is a host symlink whose host inode number is the one the mount shows: its names are
   * host links of it, as a linked file's are of its stub, and the host keeps its nlink, owner and times. (A sealed
   * symlink's target is sealed for its one name: refused there.)
   */
  private linkSymlink(to: string, src: string, dst: string, ino: number): void {
    renameInside(src, this.metaArea, dst, this.metaArea, linkSync);
    this.forget(to);
    this.onLinkedChange?.(ino);
  }

  private async makeRecord(path: string, disk: string, st: BigIntStats, entry: MetaEntry, ino: () => Promise<number>): Promise<void> {
    const number = entry.node?.ino ?? (await ino());
    const record = withNode(entry, { ...entry.node, ino: number });
    if (!lstatSync(this.linksDir, { throwIfNoEntry: false })) {
      mkdirInsideSync(this.linksDir, this.linksArea);
      await fsyncDir(dirname(this.linksDir)); // links/ itself durable before a record in it counts
    }
    const recordTemp = await this.writeTemp(this.codec.sealEntry(encodeEntry(record), recordPlace(number)), { mode: 0o600 });
    renameInside(recordTemp, this.tmpArea, this.recordPath(number), this.linksArea);
    await fsyncDir(this.linksDir);
    if (LINK_TEST_PAUSE_MS > 0) await new Promise((r) => setTimeout(r, LINK_TEST_PAUSE_MS));
    // The stub keeps the file's own mode, owner and times: they are the node's from now on, for every name.
    const attrs = { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), atime: st.atimeNs, mtime: st.mtimeNs };
    const stubTemp = await this.writeTemp(this.codec.sealEntry(encodeEntry(stubEntry(number)), STUB_PLACE), attrs);
    const { before, after } = renameInside(stubTemp, this.tmpArea, disk, this.metaArea, (temp, target) => this.keepingDirTimes(target, () => renameSync(temp, target)));
    this.keepDirCtime(parentOf(path), before, after);
    await fsyncDirInside(dirname(disk), this.metaArea);
    this.entries.set(`#${number}`, record);
    this.forget(path);
  }

  /** A new temp file in tmp/ holding `bytes`, with `attrs`, fsynced; its path. */
  private async writeTemp(bytes: Uint8Array, attrs: EntryAttrs): Promise<string> {
    const temp = join(this.tmpDir, `meta-${randomBytes(8).toString('hex')}`);
    const fd = createExclusiveSync(temp, this.tmpArea, attrs.mode & 0o7777);
    try {
      await fillEntryFile(fd, bytes, attrs, true);
    } catch (err) {
      closeSync(fd);
      rmSync(temp, { force: true });
      throw err;
    }
    closeSync(fd);
    return temp;
  }

  /**
   * Rewrite a file's node fields (xattrs) around its committed content, durably: the entry at `path`, or a
   * stub's record. The metadata file keeps its mode, owner and times; its ctime moves, as the change's should.
   */
  async updateNode(path: string, change: (node: NodeInfo) => NodeInfo): Promise<void> {
    const entry = await this.readEntry(path);
    const next = withNode(entry, change({ ...entry.node }));
    const link = this.linkAt(path);
    if (link !== undefined) {
      const temp = await this.writeTemp(this.codec.sealEntry(encodeEntry(next), recordPlace(link)), { mode: 0o600 });
      renameInside(temp, this.tmpArea, this.recordPath(link), this.linksArea);
      this.entries.set(`#${link}`, next);
      await fsyncDir(this.linksDir);
      // The node's ctime is the stub's: touch it (times unchanged, ctime now).
      const st = lstatInside(this.diskPath(path), this.metaArea, { bigint: true });
      await this.setTimes(path, st.atimeNs, st.mtimeNs);
      return;
    }
    const st = lstatInside(this.diskPath(path), this.metaArea, { bigint: true });
    const staged = await this.stageEntry(next, { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), atime: st.atimeNs, mtime: st.mtimeNs }, true, path);
    await this.syncDir(await staged.placeAt(path));
  }

  /**
   * A directory's ctime as the mount shows it. A commit's rename changes no visible name, but it moves the
   * host directory's ctime (its mtime is put back; a ctime cannot be), and tar reading a tree while files
   * in it are written back would say "file changed as we read it". So the ctime before the commit is shown
   * for as long as nothing else has changed the directory (its host ctime is still the one the commit left).
   */
  shownDirCtime(path: string, st: BigIntStats): bigint {
    const kept = this.dirCtimes.get(path);
    return kept && kept.after === st.ctimeNs ? kept.shown : st.ctimeNs;
  }

  private keepDirCtime(dir: string, before: BigIntStats, after: BigIntStats): void {
    const kept = this.dirCtimes.get(dir);
    // Commits in a row keep the ctime from before the first of them.
    const shown = kept && kept.after === before.ctimeNs ? kept.shown : before.ctimeNs;
    this.dirCtimes.set(dir, { after: after.ctimeNs, shown });
  }

  /**
   * fsync a directory of meta/ (coalesced with the other callers syncing it now: dir-syncs.ts); the entries
   * replaced in it before the sync become spares after it. `heldSynced`: the caller has just synced tmp/ (the
   * removed entries' own pass), so it is not synced again here.
   */
  async syncDir(dir: string, heldSynced = false): Promise<void> {
    const replaced = this.spares.syncing(dir);
    try {
      // Entries unlinked from meta/ wait in tmp/: their renames are durable once tmp/ is synced too.
      if (!heldSynced && this.removed.holding) await this.removed.syncHeld();
      await this.dirSyncs.sync(dir);
    } catch (err) {
      for (const path of replaced) this.spares.replacedIn(dir, path); // not durable yet: a later sync decides
      throw err;
    }
    for (const path of replaced) this.spares.keep(path);
  }

  /** Forget the cached entry (or directory id) of `path` (after unlink, rmdir, or a rename onto it). */
  forget(path: string): void {
    this.changes++;
    this.entries.delete(path);
    this.facts.delete(path);
    this.dirIds.delete(path);
  }

  /**
   * Forget cached entries at or below `path` (the source of a rename). Only files have entries: a path that
   * had one is a file with nothing below it, and only a directory needs the walk through the caches.
   */
  forgetTree(path: string): void {
    this.changes++;
    const wasFile = this.entries.delete(path);
    if (this.facts.delete(path) || wasFile) return;
    this.dirIds.delete(path);
    const prefix = path.endsWith('/') ? path : path + '/';
    for (const cache of [this.entries, this.facts, this.dirIds] as LRUCache<string, object>[]) {
      for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
    }
  }

  /**
   * Temp files left by a crash between write and rename. tmp/ itself must be a directory of the vault (a
   * symlink there is refused: its target would be emptied), and only files and links in it are removed.
   */
  async removeLeftovers(): Promise<number> {
    let n = 0;
    const names = await atNode(this.tmpDir, this.tmpArea, ['dir'], (self) => readdir(self)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    for (const name of names) {
      const removed = await atName(join(this.tmpDir, name), this.tmpArea, (p) => unlink(p)).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EISDIR' || err.code === 'ENOENT') return false;
          throw err;
        },
      );
      if (removed) n++;
    }
    return n;
  }
}

/** An empty file's content, to carry node fields. */
const EMPTY_ENTRY_NODE: MetaEntry = { kind: 'inline', size: 0, data: Buffer.alloc(0) };

const samePlace = (a: Place, b: Place | undefined): boolean => b !== undefined && a.name === b.name && Buffer.from(a.dir).equals(b.dir);

/**
 * Write an entry file's bytes and give it its attributes (mode, owner, times), fsynced when `durable`; `was`:
 * the file is a spare inode (spare-entries.ts) holding an old entry with these attributes, written over.
 */
async function fillEntryFile(fd: number, bytes: Uint8Array, attrs: EntryAttrs, durable: boolean, was?: Stats): Promise<void> {
  writeAll(fd, bytes);
  if (was) {
    if (was.size > bytes.length) ftruncateSync(fd, bytes.length);
    resetAttrs(fd, attrs, was);
  } else setAttrs(fd, attrs);
  if (durable) await fsyncFd(fd);
}

/**
 * A new metadata file's owner, mode (past the umask) and times; each call only when it changes something.
 * The owner first: a chown clears the setuid and setgid bits.
 */
function setAttrs(fd: number, attrs: EntryAttrs): void {
  const mode = attrs.mode & 0o7777;
  if (attrs.uid !== undefined && attrs.gid !== undefined && (attrs.uid !== OWN_UID || attrs.gid !== OWN_GID)) fchownSync(fd, attrs.uid, attrs.gid);
  if ((mode & ~PROCESS_UMASK) !== mode || mode & 0o7000) fchmodSync(fd, mode);
  if (attrs.atime !== undefined || attrs.mtime !== undefined) {
    const now = nowNs();
    setFdTimesNs(fd, attrs.atime ?? now, attrs.mtime ?? now);
  }
}

/**
 * A reused inode's owner, mode and times made exactly `attrs` (an absent owner is the daemon's, absent times are
 * now), as a new file would have them. After a chown the mode is set again: a chown clears setuid and setgid.
 */
function resetAttrs(fd: number, attrs: EntryAttrs, was: Pick<Stats, 'uid' | 'gid' | 'mode'>): void {
  const uid = attrs.uid ?? OWN_UID;
  const gid = attrs.gid === undefined || attrs.gid === -1 ? OWN_GID : attrs.gid;
  const mode = attrs.mode & 0o7777;
  const chowned = was.uid !== uid || was.gid !== gid;
  if (chowned) fchownSync(fd, uid, gid);
  if (chowned || (was.mode & 0o7777) !== mode) fchmodSync(fd, mode);
  // Last: the calls above move the ctime. Without times given, all three the kernel's one now, as a new file's.
  if (attrs.atime === undefined && attrs.mtime === undefined) return setFdTimesNowSync(fd);
  const now = nowNs();
  setFdTimesNs(fd, attrs.atime ?? now, attrs.mtime ?? now);
}

/**
 * The owner to give a new node in host directory `dir` when `owner` (the caller) is not the daemon: the caller,
 * but in a directory with the setgid bit the group is the directory's, which the node already has on the host
 * (gid -1 keeps it), as a kernel filesystem does.
 */
function ownerIn(owner: Owner | undefined, dir: Stats): Owner | undefined {
  if (!owner || (owner.uid === OWN_UID && owner.gid === OWN_GID)) return undefined;
  return { uid: owner.uid, gid: dir.mode & S_ISGID ? -1 : owner.gid };
}

/** The owner the host gives a node created in `dir` by the daemon for `owner` (ownerIn, gid -1 resolved). */
function hostOwner(owner: Owner | undefined, dir: Stats): Owner {
  return { uid: owner?.uid ?? OWN_UID, gid: dir.mode & S_ISGID ? dir.gid : (owner?.gid ?? OWN_GID) };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let n = 0; n < bytes.length; ) n += writeSync(fd, bytes, n, bytes.length - n);
}

const fsyncFd = promisify(fsync);

/**
 * Tests only (test/fuse/space.test.ts): a file's first link waits this long between its record's fsync and the
 * stub's replacing its entry (a slow disk's fsyncs), the moment a count of what files name must not walk in.
 */
const LINK_TEST_PAUSE_MS = Number(process.env.SEFS_TEST_LINK_PAUSE_MS ?? 0);

/**
 * Tests only (test/fuse/binding-answers.test.ts): the JS thread stops this long between a replacement and the
 * restore of its directory's times, so that a create the binding answers would land in between if nothing held it.
 */
const DIR_TIMES_TEST_PAUSE_MS = Number(process.env.SEFS_TEST_DIR_TIMES_PAUSE_MS ?? 0);

/**
 * Run `change` (a rename or exchange onto `target`: an entry replaced), putting the times of `target`'s directory
 * back: the change shows no new name, and a directory's mtime moves only when its entries change (rsync and tar
 * set directory times, then files are written back). Synchronous, so no other operation of the JS thread runs in
 * between; creates the FUSE binding answers wait meanwhile (MetaTree.dirTimesGuard).
 */
function keepingDirTimes<T>(target: string, change: () => T): { before: BigIntStats; after: BigIntStats; result: T } {
  const dir = dirname(target); // a pinned directory's /proc/self/fd path (safe-fs.ts): followed to it, never beyond
  const before = statSync(dir, { bigint: true });
  const result = change();
  if (DIR_TIMES_TEST_PAUSE_MS > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, DIR_TIMES_TEST_PAUSE_MS);
  setTimesNs(dir, before.atimeNs, before.mtimeNs);
  return { before, after: statSync(dir, { bigint: true }), result };
}

/** A synchronous call as a promise: its error a rejection, as the async fs calls it replaces. */
export async function attempt<T>(fn: () => T): Promise<T> {
  return fn();
}

/** About what a decoded entry costs in memory (a chunk's info with its two hashes, or the inline bytes). */
function entryMemory(entry: MetaEntry): number {
  if (entry.kind === 'inline') return 200 + entry.data.length;
  return 200 + 200 * entry.dataMap.chunks.length + (entry.packed?.reduce((n, c) => n + c.length, 0) ?? 0);
}
