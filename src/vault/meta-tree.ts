/**
 * The metadata tree: meta/ mirrors the visible tree. Directories and symlinks are themselves; each regular
 * file is a small file holding its entry (size + DataMap or inline bytes), whose own mode, owner and times
 * are the visible file's. Entries are replaced atomically and durably: temp file in tmp/, fsync, rename,
 * fsync of the directory.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, type Stats } from 'node:fs';
import { type FileHandle, chmod, lchown, lstat, lutimes, mkdir, open, readdir, readlink, rename, rm, rmdir, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { fsyncDir } from '../store/disk-store.js';
import type { MetaCodec, Place } from './meta-codec.js';
import { DIR_ID_FILE, NO_DIR_ID, createDirId, isHousekeeping, isLongForm, readDirId, sealedNameOf, sideFileOf, storedFormOf } from './meta-dir.js';
import { type EntryFacts, type EntryOpener, type MetaEntry, decodeStoredEntry, decodeStoredFacts, encodeEntry, neverWritten, storedBytesOf } from './meta-entry.js';
import { posixError } from './posix-error.js';

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

  /** Ids of a sealed vault's directories by visible path (meta-dir.ts), read on first use. */
  private readonly dirIds = new LRUCache<string, Uint8Array>({ max: 50_000 });

  /** The meta/ path of a visible path ("/a/b"). */
  diskPath(path: string): string {
    const names = path.split('/').filter(Boolean);
    if (!this.codec.sealed) return join(this.metaDir, ...names);
    let disk = this.metaDir;
    let visible = '';
    for (const name of names) {
      disk = join(disk, storedFormOf(this.codec.encodeName(name, this.dirIdAt(visible || '/', disk))));
      visible += '/' + name;
    }
    return disk;
  }

  /** A sealed directory's id, by its visible path and its meta/ path (a small synchronous read on a miss). */
  private dirIdAt(visible: string, disk: string): Uint8Array {
    let id = this.dirIds.get(visible);
    if (!id) {
      id = readDirId(disk, true);
      this.dirIds.set(visible, id);
    }
    return id;
  }

  /** What a node's sealing is bound to: the id of its directory and its name. */
  placeOf(path: string): Place {
    const cut = path.lastIndexOf('/');
    const name = path.slice(cut + 1);
    if (!this.codec.sealed) return { dir: NO_DIR_ID, name };
    const parent = cut <= 0 ? '/' : path.slice(0, cut);
    return { dir: this.dirIdAt(parent, this.diskPath(parent)), name };
  }

  private opener(path: string): EntryOpener {
    const place = this.placeOf(path);
    return { openEntry: (bytes) => this.codec.openEntry(bytes, place) };
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
      : decodeStoredFacts(await readNoAtime(this.diskPath(path)), this.opener(path));
    this.facts.set(path, facts);
    return facts;
  }

  async readEntry(path: string): Promise<MetaEntry> {
    const cached = this.entries.get(path);
    if (cached) return cached;
    const entry = decodeStoredEntry(await readNoAtime(this.diskPath(path)), this.opener(path));
    this.entries.set(path, entry);
    return entry;
  }

  /** Visible names in a directory (a sealed name that does not decode there is hidden: fsck reports it). */
  async list(path: string): Promise<string[]> {
    const disk = this.diskPath(path);
    const stored = await readdir(disk);
    if (!this.codec.sealed) return stored;
    const id = this.dirIdAt(path === '' ? '/' : path, disk);
    const names: string[] = [];
    for (const s of stored) {
      if (isHousekeeping(s)) continue;
      const sealed = sealedNameOf(disk, s);
      const name = sealed === undefined ? undefined : this.codec.decodeName(sealed, id);
      if (name !== undefined) names.push(name);
    }
    return names;
  }

  async makeDir(path: string, mode: number): Promise<void> {
    const disk = this.diskPath(path);
    const wanted = mode & 0o7777;
    if (!this.codec.sealed) return mkdir(disk, wanted);
    await this.writeLongName(path, disk);
    // Owner rwx while its id is written (a daemon that is not root could not write into a 0500 directory).
    await mkdir(disk, wanted | 0o700);
    try {
      createDirId(disk);
      await fsyncDir(disk);
      if ((wanted & 0o700) !== 0o700) await chmod(disk, wanted & ~PROCESS_UMASK);
    } catch (err) {
      await rm(disk, { recursive: true, force: true });
      throw err;
    }
  }

  async removeDir(path: string): Promise<void> {
    const disk = this.diskPath(path);
    if (this.codec.sealed) {
      await this.emptySealedDir(disk, this.dirIdAt(path, disk), () => rmdir(disk));
      await this.removeLongName(disk);
    } else await rmdir(disk);
    this.forget(path);
  }

  /**
   * Run `remove` (an rmdir, or a rename over the directory) on a sealed directory that holds no node: its id
   * (and any side file a crash left) goes first, and the id comes back if `remove` fails.
   */
  private async emptySealedDir(disk: string, id: Uint8Array, remove: () => Promise<void>): Promise<void> {
    const present = await readdir(disk);
    const nodes = new Set(present.filter((n) => !isHousekeeping(n)));
    if (nodes.size > 0) throw posixError('ENOTEMPTY');
    for (const name of present) if (name !== DIR_ID_FILE) await rm(join(disk, name), { force: true });
    await rm(join(disk, DIR_ID_FILE), { force: true });
    try {
      await remove();
    } catch (err) {
      createDirId(disk, id);
      throw err;
    }
  }

  async makeSymlink(target: string, path: string): Promise<void> {
    const disk = this.diskPath(path);
    await this.writeLongName(path, disk);
    await symlink(this.codec.sealLink(target, this.placeOf(path)), disk);
  }

  async readSymlink(path: string): Promise<string> {
    return this.codec.openLink(await readlink(this.diskPath(path)), this.placeOf(path));
  }

  /** unlink of a file or symlink. */
  async removeNode(path: string): Promise<void> {
    const disk = this.diskPath(path);
    await unlink(disk);
    await this.removeLongName(disk);
    this.forget(path);
  }

  /**
   * rename(2). In a sealed vault a file's entry and a symlink's target are bound to their name and
   * directory, so they are sealed again for the new place: written to a temp file (same mode, owner and
   * times, fsynced), renamed over the target, then the old name removed. A crash between the last two
   * leaves both names (the same content twice), never neither. A directory is renamed as is: what it holds
   * is bound to its id, which moves with it.
   */
  async renameNode(from: string, to: string): Promise<void> {
    const src = this.diskPath(from);
    const dst = this.diskPath(to);
    if (!this.codec.sealed || from === to) return rename(src, dst);
    const st = await lstat(src);
    await this.writeLongName(to, dst);
    if (st.isDirectory()) {
      const target = await lstat(dst).catch(() => undefined);
      if (target?.isDirectory()) await this.emptySealedDir(dst, this.dirIdAt(to, dst), () => rename(src, dst));
      else await rename(src, dst);
    } else await this.moveResealed(from, to, src, dst, st);
    await this.removeLongName(src);
  }

  private async moveResealed(from: string, to: string, src: string, dst: string, st: Stats): Promise<void> {
    if (!st.isFile() && !st.isSymbolicLink()) return rename(src, dst);
    const temp = join(this.tmpDir, `move-${randomBytes(8).toString('hex')}`);
    try {
      if (st.isSymbolicLink()) {
        const target = this.codec.openLink(await readlink(src), this.placeOf(from));
        await symlink(this.codec.sealLink(target, this.placeOf(to)), temp);
        if (st.uid !== OWN_UID || st.gid !== OWN_GID) await lchown(temp, st.uid, st.gid);
        await lutimes(temp, st.atime, st.mtime);
      } else {
        const stored = await readNoAtime(src);
        const bytes = neverWritten(stored) ? stored : this.codec.sealEntry(this.codec.openEntry(stored, this.placeOf(from)), this.placeOf(to));
        const fh = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, st.mode & 0o7777);
        try {
          await fillEntryFile(fh, bytes, { mode: st.mode, uid: st.uid, gid: st.gid, atime: st.atimeMs, mtime: st.mtimeMs }, true);
        } finally {
          await fh.close();
        }
      }
      await rename(temp, dst);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await unlink(src);
  }

  /** A long sealed name's side file (meta-dir.ts), written before the node that needs it. */
  private async writeLongName(path: string, disk: string): Promise<void> {
    const stored = basename(disk);
    if (!this.codec.sealed || !isLongForm(stored)) return;
    const { dir, name } = this.placeOf(path);
    const temp = join(this.tmpDir, `name-${randomBytes(8).toString('hex')}`);
    const fh = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(this.codec.encodeName(name, dir), 'latin1');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, join(dirname(disk), sideFileOf(stored)));
  }

  private async removeLongName(disk: string): Promise<void> {
    const stored = basename(disk);
    if (this.codec.sealed && isLongForm(stored)) await rm(join(dirname(disk), sideFileOf(stored)), { force: true });
  }

  /**
   * Atomically replace (or create) a file's entry with the given attributes; `durable` also fsyncs it and its
   * directory (a new empty file needs no fsync: after a crash it is absent, or its entry is complete or
   * zero-length, which reads as empty: decodeStoredEntry).
   */
  async writeEntry(path: string, entry: MetaEntry, attrs: EntryAttrs, durable = true): Promise<void> {
    const staged = await this.stageEntry(entry, attrs, durable, path);
    const dir = await staged.placeAt(path);
    if (durable) await fsyncDir(dir);
  }

  /**
   * Write a file's next entry to a temp file (fsynced when `durable`), to be put in place later: a commit
   * writes it while its chunks are synced, and places it once they are, under the mount's namespace lock.
   */
  async stageEntry(entry: MetaEntry, attrs: EntryAttrs, durable: boolean, path?: string): Promise<StagedEntry> {
    const temp = join(this.tmpDir, `meta-${randomBytes(8).toString('hex')}`);
    const mode = attrs.mode & 0o7777;
    const plain = encodeEntry(entry);
    // A sealed entry is bound to its place: sealed for `path` now, again at placeAt if it is placed elsewhere.
    const sealedFor = this.codec.sealed && path !== undefined ? this.placeOf(path) : undefined;
    const fh = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
    try {
      await fillEntryFile(fh, sealedFor ? this.codec.sealEntry(plain, sealedFor) : this.codec.sealEntry(plain, this.placeOf('/')), attrs, durable);
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
          const place = this.placeOf(path);
          if (this.codec.sealed && !samePlace(place, sealedFor)) {
            const again = await open(temp, fsc.O_WRONLY | fsc.O_TRUNC);
            try {
              await fillEntryFile(again, this.codec.sealEntry(plain, place), { ...attrs, uid: undefined, gid: undefined }, durable);
            } finally {
              await again.close();
            }
          }
          await this.writeLongName(path, target);
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

  /** Forget the cached entry (or directory id) of `path` (after unlink, rmdir, or a rename onto it). */
  forget(path: string): void {
    this.entries.delete(path);
    this.facts.delete(path);
    this.dirIds.delete(path);
  }

  /**
   * Forget cached entries at or below `path` (the source of a rename). Only files have entries: a path that
   * had one is a file with nothing below it, and only a directory needs the walk through the caches.
   */
  forgetTree(path: string): void {
    const wasFile = this.entries.delete(path);
    if (this.facts.delete(path) || wasFile) return;
    this.dirIds.delete(path);
    const prefix = path.endsWith('/') ? path : path + '/';
    for (const cache of [this.entries, this.facts, this.dirIds] as LRUCache<string, object>[]) {
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

const samePlace = (a: Place, b: Place | undefined): boolean => b !== undefined && a.name === b.name && Buffer.from(a.dir).equals(b.dir);

/** Write an entry file's bytes and give it its attributes (mode, owner, times), fsynced when `durable`. */
async function fillEntryFile(fh: FileHandle, bytes: Uint8Array, attrs: EntryAttrs, durable: boolean): Promise<void> {
  const mode = attrs.mode & 0o7777;
  await fh.writeFile(bytes);
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
  return 200 + (entry.kind === 'inline' ? entry.data.length : 200 * entry.dataMap.chunks.length);
}
