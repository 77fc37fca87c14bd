/**
 * The metadata tree: meta/ mirrors the visible tree. Directories and symlinks are themselves; each regular
 * file is a small file holding its entry (size + DataMap or inline bytes), whose own mode, owner and times
 * are the visible file's. Entries are replaced atomically and durably: temp file in tmp/, fsync, rename,
 * fsync of the directory.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, type Stats } from 'node:fs';
import { lstat, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { fsyncDir } from '../store/disk-store.js';
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
    return lstat(this.diskPath(path));
  }

  /** What a stat needs of a file's entry. */
  async readFacts(path: string): Promise<EntryFacts> {
    const known = this.facts.get(path);
    if (known) return known;
    const cached = this.entries.get(path);
    const facts = cached
      ? { size: cached.size, storedBytes: storedBytesOf(cached) }
      : decodeStoredFacts(await readNoAtime(this.diskPath(path)), this.codec);
    this.facts.set(path, facts);
    return facts;
  }

  async readEntry(path: string): Promise<MetaEntry> {
    const cached = this.entries.get(path);
    if (cached) return cached;
    const entry = decodeStoredEntry(await readNoAtime(this.diskPath(path)), this.codec);
    this.entries.set(path, entry);
    return entry;
  }

  /** Visible names in a directory. */
  async list(path: string): Promise<string[]> {
    const names: string[] = [];
    for (const stored of await readdir(this.diskPath(path))) {
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
    const fh = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
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
          await rename(temp, target);
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
async function readNoAtime(file: string): Promise<Buffer> {
  const fh = await open(file, fsc.O_RDONLY | fsc.O_NOATIME).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EPERM') return open(file, fsc.O_RDONLY);
    throw err;
  });
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** About what a decoded entry costs in memory (a chunk's info with its two hashes, or the inline bytes). */
function entryMemory(entry: MetaEntry): number {
  if (entry.kind === 'inline') return 200 + entry.data.length;
  return 200 + 200 * entry.dataMap.chunks.length + (entry.packed?.reduce((n, c) => n + c.length, 0) ?? 0);
}
