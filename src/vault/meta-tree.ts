/**
 * The metadata tree: meta/ mirrors the visible tree. Directories and symlinks are themselves; each regular
 * file is a small file holding its entry (size + DataMap or inline bytes), whose own mode, owner and times
 * are the visible file's. Entries are replaced atomically and durably: temp file in tmp/, fsync, rename,
 * fsync of the directory.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chmod, chown, lchown, lstat, lutimes, mkdir, readdir, readlink, rename, rm, rmdir, symlink, unlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { fsyncDir } from '../store/disk-store.js';
import type { MetaCodec } from './meta-codec.js';
import { type EntryFacts, type MetaEntry, MAX_STORED_ENTRY, decodeStoredEntry, decodeStoredFacts, encodeEntry, storedBytesOf } from './meta-entry.js';
import { areaOf, atName, atNode, createExclusive, readBounded, renameInside } from './safe-fs.js';

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

  /** Where meta/ and tmp/ really are: nothing reached through them may lead elsewhere (safe-fs.ts). */
  private readonly metaArea: string;
  private readonly tmpArea: string;

  constructor(
    readonly metaDir: string,
    readonly tmpDir: string,
    readonly codec: MetaCodec,
  ) {
    this.metaArea = areaOf(metaDir);
    this.tmpArea = areaOf(tmpDir);
  }

  /** The meta/ path of a visible path ("/a/b"). */
  diskPath(path: string): string {
    if (path === '/' || path === '') return this.metaDir;
    return join(this.metaDir, ...path.split('/').filter(Boolean).map((n) => this.codec.encodeName(n)));
  }

  /**
   * Plain lstat (the hottest call): through a planted directory link it could report a host file's attributes
   * to the mount's user, but every call that reads, lists or changes anything is checked.
   */
  lstat(path: string): Promise<Stats> {
    return lstat(this.diskPath(path));
  }

  /** How a log line names a visible path: as stored in a sealed vault (no plaintext), quoted in a plain one. */
  logName(path: string): string {
    return this.codec.sealed ? JSON.stringify(`meta${this.diskPath(path).slice(this.metaDir.length)}`) : JSON.stringify(path);
  }

  // Namespace and attribute changes, each reaching its node through checked directories (safe-fs.ts).
  private at<T>(path: string, fn: (at: string) => Promise<T>): Promise<T> {
    return atName(this.diskPath(path), this.metaArea, fn);
  }

  async setMode(path: string, mode: number): Promise<void> {
    // A symlink's mode means nothing (the kernel never asks for it): refusing one keeps chmod off its target.
    await atNode(this.diskPath(path), this.metaArea, ['file', 'dir'], (self) => chmod(self, mode));
  }

  /** chown and utimes of a symlink change the link itself; of a file or directory, the pinned node. */
  private async onNode(path: string, direct: (self: string) => Promise<void>, link: (at: string) => Promise<void>): Promise<void> {
    if (path !== '/' && (await this.lstat(path)).isSymbolicLink()) return this.at(path, link);
    return atNode(this.diskPath(path), this.metaArea, ['file', 'dir'], direct);
  }

  setOwner(path: string, uid: number, gid: number): Promise<void> {
    return this.onNode(path, (p) => chown(p, uid, gid), (p) => lchown(p, uid, gid));
  }

  /** Times in seconds since the epoch. */
  setTimes(path: string, atime: number, mtime: number): Promise<void> {
    return this.onNode(path, (p) => utimes(p, atime, mtime), (p) => lutimes(p, atime, mtime));
  }

  mkdir(path: string, mode: number): Promise<void> {
    return this.at(path, (p) => mkdir(p, mode));
  }

  rmdir(path: string): Promise<void> {
    return this.at(path, (p) => rmdir(p));
  }

  unlink(path: string): Promise<void> {
    return this.at(path, (p) => unlink(p));
  }

  rename(from: string, to: string): Promise<void> {
    return renameInside(this.diskPath(from), this.metaArea, this.diskPath(to), this.metaArea, rename);
  }

  symlink(stored: string, path: string): Promise<void> {
    return this.at(path, (p) => symlink(stored, p));
  }

  readlink(path: string): Promise<string> {
    return this.at(path, (p) => readlink(p));
  }

  /** What a stat needs of a file's entry. */
  async readFacts(path: string): Promise<EntryFacts> {
    const known = this.facts.get(path);
    if (known) return known;
    const cached = this.entries.get(path);
    const facts = cached
      ? { size: cached.size, storedBytes: storedBytesOf(cached) }
      : decodeStoredFacts(await this.readStored(path), this.codec);
    this.facts.set(path, facts);
    return facts;
  }

  async readEntry(path: string): Promise<MetaEntry> {
    const cached = this.entries.get(path);
    if (cached) return cached;
    const entry = decodeStoredEntry(await this.readStored(path), this.codec);
    this.entries.set(path, entry);
    return entry;
  }

  /**
   * A metadata file as stored: a regular file in meta/, bounded in size, without moving its atime (it is the
   * visible file's atime, and a plain read would set it to now on the host filesystem, relatime).
   */
  private readStored(path: string): Promise<Buffer> {
    return readBounded(this.diskPath(path), this.metaArea, MAX_STORED_ENTRY, { noAtime: true });
  }

  /** Visible names in a directory. */
  async list(path: string): Promise<string[]> {
    const names: string[] = [];
    for (const stored of await atNode(this.diskPath(path), this.metaArea, ['dir'], (self) => readdir(self))) {
      const name = this.codec.decodeName(stored);
      if (name !== undefined) names.push(name);
    }
    return names;
  }

  /**
   * Atomically replace (or create) a file's entry with the given attributes; `durable` also fsyncs it and its
   * directory (a new empty file needs no fsync: after a crash it is absent, or its entry is complete or
   * zero-length, which reads as empty: decodeStoredEntry).
   */
  async writeEntry(path: string, entry: MetaEntry, attrs: EntryAttrs, durable = true): Promise<void> {
    const staged = await this.stageEntry(entry, attrs, durable);
    const dir = await staged.placeAt(path);
    if (durable) await fsyncDir(dir);
  }

  /**
   * Write a file's next entry to a temp file (fsynced when `durable`), to be put in place later: a commit
   * writes it while its chunks are synced, and places it once they are, under the mount's namespace lock.
   */
  async stageEntry(entry: MetaEntry, attrs: EntryAttrs, durable: boolean): Promise<StagedEntry> {
    const temp = join(this.tmpDir, `meta-${randomBytes(8).toString('hex')}`);
    const mode = attrs.mode & 0o7777;
    const fh = await createExclusive(temp, this.tmpArea, mode);
    try {
      await fh.writeFile(this.codec.sealEntry(encodeEntry(entry)));
      // Each call here is a thread-pool round trip: skip the ones that would change nothing.
      if ((mode & ~PROCESS_UMASK) !== mode || mode & 0o7000) await fh.chmod(mode);
      if (attrs.uid !== undefined && attrs.gid !== undefined && (attrs.uid !== OWN_UID || attrs.gid !== OWN_GID)) {
        await fh.chown(attrs.uid, attrs.gid);
      }
      if (attrs.atime !== undefined || attrs.mtime !== undefined) {
        const now = Date.now();
        await fh.utimes((attrs.atime ?? now) / 1000, (attrs.mtime ?? now) / 1000);
      }
      if (durable) await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(temp, { force: true });
      throw err;
    }
    await fh.close();
    return {
      placeAt: async (path) => {
        const target = this.diskPath(path);
        try {
          await renameInside(temp, this.tmpArea, target, this.metaArea, rename);
        } catch (err) {
          await rm(temp, { force: true });
          throw err;
        }
        this.entries.set(path, entry);
        this.facts.delete(path);
        return dirname(target);
      },
      discard: () => rm(temp, { force: true }),
    };
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

/** About what a decoded entry costs in memory (a chunk's info with its two hashes, or the inline bytes). */
function entryMemory(entry: MetaEntry): number {
  return 200 + (entry.kind === 'inline' ? entry.data.length : 200 * entry.dataMap.chunks.length);
}
