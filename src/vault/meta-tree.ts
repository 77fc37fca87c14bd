/**
 * The metadata tree: meta/ mirrors the visible tree. Directories and symlinks are themselves; each regular
 * file is a small file holding its entry (size + DataMap or inline bytes), whose own mode, owner and times
 * are the visible file's. Entries are replaced atomically and durably: temp file in tmp/, fsync, rename,
 * fsync of the directory.
 *
 * Everything here but fsync is a synchronous call on the daemon's JS thread: each is a few microseconds on
 * cached metadata, and the thread-pool round trip of an async call (two thread switches, milliseconds on a
 * busy machine) was most of a small file's create, stat and open (native-notes/small-files.md). fsync
 * blocks for milliseconds and stays in the pool.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, type Stats } from 'node:fs';
import { closeSync, fchmodSync, fchownSync, fstatSync, fsync, futimesSync, lstatSync, openSync, readSync, readdirSync, renameSync, rmSync, utimesSync, writeSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { DirSyncs } from '../store/dir-syncs.js';
import type { MetaCodec } from './meta-codec.js';
import { type EntryFacts, type MetaEntry, decodeStoredEntry, decodeStoredFacts, encodeEntry, storedBytesOf } from './meta-entry.js';

export interface EntryAttrs {
  mode: number;
  uid?: number;
  gid?: number;
  /** ms since the epoch; mtime defaults to now. */
  atime?: number;
  mtime?: number;
}

/** Read once: the umask applies to the temp file's mode, and our own ids need no chown. */
const PROCESS_UMASK = process.umask();
const OWN_UID = process.getuid?.() ?? 0;
const OWN_GID = process.getgid?.() ?? 0;

/** A file's next entry, written and waiting to be put in place. */
export interface StagedEntry {
  /** Rename it over `path`'s entry; returns the directory to fsync for the change to be durable. */
  placeAt(path: string): Promise<string>;
  discard(): Promise<void>;
}

export class MetaTree {
  /** Decoded entries by visible path (for opens), bounded by their size in memory. */
  private readonly entries = new LRUCache<string, MetaEntry>({ maxSize: 64 * 1024 * 1024, sizeCalculation: entryMemory });
  /** Size and stored bytes by visible path (for stats: a stat never decodes a DataMap it does not need). */
  private readonly facts = new LRUCache<string, EntryFacts>({ max: 50_000 });

  private readonly dirSyncs = new DirSyncs();

  constructor(
    readonly metaDir: string,
    readonly tmpDir: string,
    readonly codec: MetaCodec,
  ) {}

  /** The meta/ path of a visible path ("/a/b"). */
  diskPath(path: string): string {
    if (path === '/' || path === '') return this.metaDir;
    return join(this.metaDir, ...path.split('/').filter(Boolean).map((n) => this.codec.encodeName(n)));
  }

  lstat(path: string): Promise<Stats> {
    return attempt(() => lstatSync(this.diskPath(path)));
  }

  /** What a stat needs of a file's entry. */
  async readFacts(path: string): Promise<EntryFacts> {
    const known = this.facts.get(path);
    if (known) return known;
    const cached = this.entries.get(path);
    let facts: EntryFacts;
    if (cached) facts = { size: cached.size, storedBytes: storedBytesOf(cached) };
    else {
      const { entry, ...found } = decodeStoredFacts(readNoAtime(this.diskPath(path)), this.codec);
      // Decoded anyway (all but compressed maps): kept, so the open that usually follows a stat reads nothing.
      if (entry) this.entries.set(path, entry);
      facts = found;
    }
    this.facts.set(path, facts);
    return facts;
  }

  async readEntry(path: string): Promise<MetaEntry> {
    const cached = this.entries.get(path);
    if (cached) return cached;
    const entry = decodeStoredEntry(readNoAtime(this.diskPath(path)), this.codec);
    this.entries.set(path, entry);
    return entry;
  }

  /** Visible names in a directory. */
  async list(path: string): Promise<string[]> {
    const names: string[] = [];
    for (const stored of await attempt(() => readdirSync(this.diskPath(path)))) {
      const name = this.codec.decodeName(stored);
      if (name !== undefined) names.push(name);
    }
    return names;
  }

  /**
   * Write a file's next entry to a temp file (fsynced when `durable`), to be put in place later: a commit
   * writes it while its chunks are synced, and places it once they are, under the mount's namespace lock.
   */
  async stageEntry(entry: MetaEntry, attrs: EntryAttrs, durable: boolean): Promise<StagedEntry> {
    const temp = join(this.tmpDir, `meta-${randomBytes(8).toString('hex')}`);
    const mode = attrs.mode & 0o7777;
    const fd = openSync(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
    try {
      writeAll(fd, this.codec.sealEntry(encodeEntry(entry)));
      setAttrs(fd, mode, attrs);
      if (durable) await fsyncFd(fd);
    } catch (err) {
      closeSync(fd);
      rmSync(temp, { force: true });
      throw err;
    }
    closeSync(fd);
    return {
      placeAt: async (path) => {
        const target = this.diskPath(path);
        try {
          renameOver(temp, target);
        } catch (err) {
          rmSync(temp, { force: true });
          throw err;
        }
        this.entries.set(path, entry);
        this.facts.delete(path);
        return dirname(target);
      },
      discard: async () => rmSync(temp, { force: true }),
    };
  }

  /**
   * A new empty file: a zero-length metadata file made in place (it reads as empty: decodeStoredEntry), so a
   * create costs one open and no temp file; EEXIST if the name is taken.
   */
  async createEmpty(path: string, attrs: EntryAttrs): Promise<void> {
    const mode = attrs.mode & 0o7777;
    const fd = await attempt(() => openSync(this.diskPath(path), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode));
    try {
      setAttrs(fd, mode, attrs);
    } finally {
      closeSync(fd);
    }
    this.forget(path);
  }

  /** fsync a directory of meta/ (coalesced with the other callers syncing it now: dir-syncs.ts). */
  syncDir(dir: string): Promise<void> {
    return this.dirSyncs.sync(dir);
  }

  /** Forget the cached entry of `path` (after unlink, rmdir, or a rename onto it). */
  forget(path: string): void {
    this.entries.delete(path);
    this.facts.delete(path);
  }

  /**
   * Forget cached entries at or below `path` (the source of a rename). Only files have entries: a path that
   * had one is a file with nothing below it, and only a directory needs the walk through the caches.
   */
  forgetTree(path: string): void {
    const wasFile = this.entries.delete(path);
    if (this.facts.delete(path) || wasFile) return;
    const prefix = path.endsWith('/') ? path : path + '/';
    for (const cache of [this.entries, this.facts] as LRUCache<string, object>[]) {
      for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
    }
  }

  /** Temp files left by a crash between write and rename. */
  async removeLeftovers(): Promise<number> {
    let n = 0;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      await rm(join(this.tmpDir, name), { force: true, recursive: true });
      n++;
    }
    return n;
  }
}

/**
 * Read a metadata file without updating its atime: its atime is the visible file's, and a plain read would set
 * it to now on the host filesystem (relatime), so a mere stat of a file would change its atime.
 * O_NOATIME needs the file's owner or CAP_FOWNER: without them, read it plainly.
 */
function readNoAtime(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOATIME);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    fd = openSync(file, fsc.O_RDONLY);
  }
  try {
    const size = fstatSync(fd).size;
    const out = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const got = readSync(fd, out, n, size - n, n);
      if (got === 0) break;
      n += got;
    }
    return out.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replace an entry by rename, keeping its directory's times: the rename changes no visible name, and a
 * directory's mtime moves only when its entries change (rsync and tar set directory times, then files are
 * written back). Synchronous, so no other operation of the mount runs in between.
 */
function renameOver(temp: string, target: string): void {
  const dir = dirname(target);
  const times = lstatSync(dir);
  renameSync(temp, target);
  utimesSync(dir, times.atimeMs / 1000, times.mtimeMs / 1000);
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let n = 0; n < bytes.length; ) n += writeSync(fd, bytes, n, bytes.length - n);
}

const fsyncFd = promisify(fsync);

/** A new metadata file's mode (past the umask), owner and times; each call only when it changes something. */
function setAttrs(fd: number, mode: number, attrs: EntryAttrs): void {
  if ((mode & ~PROCESS_UMASK) !== mode || mode & 0o7000) fchmodSync(fd, mode);
  if (attrs.uid !== undefined && attrs.gid !== undefined && (attrs.uid !== OWN_UID || attrs.gid !== OWN_GID)) fchownSync(fd, attrs.uid, attrs.gid);
  if (attrs.atime !== undefined || attrs.mtime !== undefined) {
    const now = Date.now();
    futimesSync(fd, (attrs.atime ?? now) / 1000, (attrs.mtime ?? now) / 1000);
  }
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
