/**
 * Chunks as files: DIR/ab/cd/<64 hex>. A put writes a temp file, fsyncs it and renames it into place,
 * so a chunk file under its final name is always complete; the directories touched are fsynced by sync(),
 * which the vault calls before it writes a DataMap naming the chunks.
 *
 * With `batch`, a put only writes the temp file; sync() (or a background flush once enough are waiting)
 * fsyncs the temps together, renames them into place and fsyncs their directories. Until then get/has
 * find them under their temp names. A crash before that leaves only temp files, removed at the next mount.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, lstatSync, mkdirSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_CHUNK_SIZE } from '../core/constants.js';
import { ChunkHashMismatch, ChunkNotFound } from '../core/errors.js';
import { sha3 } from '../core/hash.js';
import { areaOf, atName, atNameSync, atNode, atNodeSync, createExclusive, createExclusiveSync, fsyncDir, mkdirInside, mkdirInsideSync, type ReadOptions, readBounded, sameBytesSync, systemError } from '../vault/safe-fs.js';
import { native } from '../core/native.js';
import type { ChunkStore } from './chunk-store.js';
import type { FaultPlan } from './fault-plan.js';

const TEMP_PREFIX = '.tmp-';
/**
 * The largest chunk file read at all (checked before reading): 1 MiB of plaintext, brotli's worst-case growth
 * (a few bytes per 16 KiB) and the cipher's padding, with room to spare. Anything larger is not a chunk.
 */
export const MAX_CHUNK_FILE = MAX_CHUNK_SIZE + 64 * 1024;
const NAME_RE = /^[0-9a-f]{64}$/;

export interface DiskStoreOptions {
  /** fsync each chunk before it is renamed into place (default true). */
  fsync?: boolean;
  /** Check that fetched bytes hash to their name (default true). */
  verify?: boolean;
  /** Defer fsync and rename to sync() (default false). */
  batch?: boolean;
  /** Injected failures (tests only: store/fault-plan.ts). */
  faults?: FaultPlan;
}

/** Where chunk `hex` lives under `root`: DIR/ab/cd/<hex>. */
export function chunkPath(root: string, hex: string): string {
  return join(root, hex.slice(0, 2), hex.slice(2, 4), hex);
}

/** The directories on a chunk's path below and including the store's root: ab/cd, ab, root. */
function chunkDirs(root: string, hex: string): string[] {
  return [join(root, hex.slice(0, 2), hex.slice(2, 4)), join(root, hex.slice(0, 2)), root];
}

/** A fresh temp name beside the chunk's final place (same directory, so the rename is atomic). */
function tempPath(target: string, hex: string): string {
  return join(target, '..', `${TEMP_PREFIX}${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
}

/** Each store root's area (safe-fs.ts), worked out once per thread. */
const areas = new Map<string, string>();
export const chunkArea = (root: string): string => {
  let area = areas.get(root);
  if (area === undefined) areas.set(root, (area = areaOf(root)));
  return area;
};

/**
 * Whether the chunk file at `target` can be kept instead of written (dedup): it must hold exactly `content`.
 * Its name is the hash of `content`, so equal bytes are what "hashes to its name" means, checked at the cost
 * of one read and a compare; a planted or rotted file (or a link, FIFO, device) is rewritten instead.
 * A kept file's mtime is refreshed: gc spares young unreferenced chunks, and a write about to name an old
 * one must not lose it to a gc running now.
 */
function holdsSync(target: string, area: string, content: Uint8Array): boolean {
  // Most chunks written are new: a stat that says so without an exception (the failed open's ENOENT error, with
  // its stack, was 2% of a worker's time). Only a shortcut: anything else (a path too long for the kernel
  // included) goes to the checked open below.
  if (absentSync(target)) return false;
  try {
    return sameBytesSync(target, area, content, true);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'UnsafeVaultNode') return false;
    throw err;
  }
}

/** Whether lstat(2) says nothing is at `path` (false when it cannot say). */
function absentSync(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) === undefined;
  } catch {
    return false;
  }
}

const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/**
 * A new temp file, made 0600; its directory ab/cd is made only when the create finds it missing, in its parent
 * ab when that is there. Making sure of both first cost a no-follow walk from the store's root per chunk (about
 * fifteen syscalls and an EEXIST exception: 5% of a worker's time in a sequential write), since a GiB spreads
 * over a thousand of the 65,536 ab/cd directories, most of them already there in a used vault.
 */
function createInDirSync(temp: string, area: string): number {
  try {
    return createExclusiveSync(temp, area, 0o600);
  } catch (err) {
    if (codeOf(err) !== 'ENOENT') throw err;
  }
  const dir = join(temp, '..');
  try {
    atNameSync(dir, area, (p) => mkdirSync(p, 0o700));
  } catch (err) {
    if (codeOf(err) === 'ENOENT') mkdirInsideSync(dir, area);
    else if (codeOf(err) !== 'EEXIST') throw err;
  }
  return createExclusiveSync(temp, area, 0o600);
}

/**
 * What DiskStore.put does before its rename, synchronously, for a worker thread that has just encrypted a
 * chunk: reuse an existing chunk file holding the same bytes (refreshing its mtime), or write a temp file
 * beside it. Returns the temp file, for DiskStore.adopt; undefined when the chunk was already there.
 */
export function writeChunkTempSync(root: string, name: Buffer, content: Uint8Array): string | undefined {
  const hex = name.toString('hex');
  const target = chunkPath(root, hex);
  const area = chunkArea(root);
  if (holdsSync(target, area, content)) return undefined;
  const temp = tempPath(target, hex);
  try {
    const fd = createInDirSync(temp, area);
    try {
      writeNewFileSync(fd, content, temp);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    // A full disk: leave no partial temp file behind.
    rmSync(temp, { force: true });
    throw err;
  }
  return temp;
}

/**
 * A new chunk file's bytes, past the page cache where the addon and the file system allow (write-direct.c): its
 * commit fsyncs it and the mount reads it back past the page cache too, so cached pages of it would never be used.
 */
function writeNewFileSync(fd: number, content: Uint8Array, path: string): void {
  const direct = content.length > 0 ? (native?.writeDirect?.(fd, content) ?? 0) : 0;
  if (direct < 0) throw systemError(direct, 'write', path);
  if (direct === content.length) return;
  for (let done = 0; done < content.length; ) done += writeSync(fd, content, done);
}

/** A batch flushes in the background once this many chunks wait. */
const BATCH_FLUSH_AT = 64;
const FSYNC_CONCURRENCY = 8;

export class DiskStore implements ChunkStore {
  private readonly fsync: boolean;
  private readonly verify: boolean;
  private readonly batch: boolean;
  private readonly faults: FaultPlan | undefined;
  private readonly dirsToSync = new Set<string>();
  private readonly knownDirs = new Set<string>();
  /** Batched chunks not yet renamed into place: hex name -> temp path. */
  private readonly pending = new Map<string, string>();
  /** Pending chunks being fsynced and renamed now: hex name -> that work. */
  private readonly placing = new Map<string, Promise<void>>();
  /** Chunks being removed now: a put or a check of the same name waits for the removal first. */
  private readonly removing = new Map<string, Promise<void>>();
  private readonly syncingDirs = new Map<string, Promise<void>>();
  /** Chunk directories known to be in their parents durably (found at start, or whose parents were fsynced). */
  private readonly durableParents = new Set<string>();
  private backgroundFlush: Promise<void> | undefined;
  /** Where a failed background flush is reported (the chunks stay pending; the commits that need them fail). */
  onBackgroundError: (err: Error) => void = () => {};

  constructor(
    readonly root: string,
    options: DiskStoreOptions = {},
  ) {
    this.fsync = options.fsync ?? true;
    this.verify = options.verify ?? true;
    this.batch = options.batch ?? false;
    this.faults = options.faults;
  }

  pathOf(name: Buffer | string): string {
    return chunkPath(this.root, typeof name === 'string' ? name : name.toString('hex'));
  }

  /** The store's real place: no chunk file is reached through a link leading elsewhere (safe-fs.ts). */
  get area(): string {
    return chunkArea(this.root);
  }

  /** Chunks may be written by other threads of this process (writeChunkTempSync), then adopted. */
  get localRoot(): string {
    return this.root;
  }

  async get(name: Buffer): Promise<Buffer> {
    return this.read(name);
  }

  /**
   * The chunk's bytes read into `target` (a slot of the mount's slab): how many. Read past the page cache: the
   * slab caches the plaintext, and a second, encrypted copy in the page cache cost memory and the pool's CPU.
   */
  async getInto(name: Buffer, target: Buffer): Promise<number> {
    return (await this.read(name, target, true)).length;
  }

  /** Part of the chunk's bytes, not verified here: the caller checks them against its piece hashes. */
  async getRange(name: Buffer, start: number, end: number): Promise<Buffer> {
    return this.readFile(name, { range: { start, end } });
  }

  private async read(name: Buffer, into?: Buffer, direct = false): Promise<Buffer> {
    const bytes = await this.readFile(name, { into, direct });
    if (this.verify && !sha3(bytes).equals(name)) throw new ChunkHashMismatch(name.toString('hex'), 'dst');
    return bytes;
  }

  private async readFile(name: Buffer, options: ReadOptions): Promise<Buffer> {
    try {
      const temp = this.pending.get(name.toString('hex'));
      // A batched chunk may be renamed into place between the lookup and the read: then read it there.
      const read = (path: string) => readBounded(path, this.area, MAX_CHUNK_FILE, options);
      return temp ? await read(temp).catch(() => read(this.pathOf(name))) : await read(this.pathOf(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw ChunkNotFound.of(name);
      throw err;
    }
  }

  async has(name: Buffer): Promise<boolean> {
    if (this.pending.has(name.toString('hex'))) return true;
    try {
      await stat(this.pathOf(name));
      return true;
    } catch {
      return false;
    }
  }

  async stillThere(name: Buffer): Promise<boolean> {
    await this.removing.get(name.toString('hex'));
    return this.has(name);
  }

  async put(name: Buffer, content: Buffer): Promise<void> {
    const hex = name.toString('hex');
    await this.removing.get(hex);
    const target = this.pathOf(name);
    if (this.pending.has(hex) || (await this.reuse(target, content))) return;
    const dir = join(target, '..');
    if (!this.knownDirs.has(dir)) {
      await mkdirInside(dir, this.area);
      this.knownDirs.add(dir);
    }
    const temp = tempPath(target, hex);
    const fh = await createExclusive(temp, this.area, 0o600);
    const syncNow = this.fsync && !this.batch;
    try {
      try {
        this.faults?.check('write', hex);
        await fh.writeFile(content);
        if (syncNow) await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      // A full disk: leave no partial temp file behind.
      await rm(temp, { force: true });
      throw err;
    }
    await this.takeTemp(hex, temp, syncNow);
  }

  /**
   * Take a chunk whose temp file a worker has written (writeChunkTempSync) as if it had been put. `temp`
   * undefined: the chunk was already in the store.
   */
  async adopt(name: Buffer, temp: string | undefined): Promise<void> {
    if (temp === undefined) return;
    try {
      this.faults?.check('write', name.toString('hex'));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.takeTemp(name.toString('hex'), temp, false);
  }

  /** A written temp file: batched, it waits for the next flush; otherwise it goes into place now. */
  private async takeTemp(hex: string, temp: string, synced: boolean): Promise<void> {
    // A removal of this chunk decided before the caller held it finishes first, so it cannot take this copy.
    await this.removing.get(hex);
    if (!this.batch) return this.placeTemp(hex, temp, synced);
    if (this.pending.has(hex)) await unlink(temp);
    else this.pending.set(hex, temp);
    if (this.pending.size >= BATCH_FLUSH_AT && !this.backgroundFlush) {
      // One background flush at a time; a failure is reported, never left as an unhandled rejection.
      this.backgroundFlush = this.placePending([...this.pending.keys()])
        .catch((err: Error) => this.onBackgroundError(err))
        .finally(() => (this.backgroundFlush = undefined));
    }
  }

  /** fsync a temp file (unless done) and rename it to the chunk's name; its directory is fsynced by sync(). */
  private async placeTemp(hex: string, temp: string, synced: boolean): Promise<void> {
    if (this.fsync && !synced) {
      const fh = await open(temp, fsc.O_RDONLY);
      await (async () => {
        this.faults?.check('fsync', hex);
        await fh.sync();
      })().finally(() => fh.close());
    }
    const target = this.pathOf(hex);
    this.faults?.check('rename', hex);
    await rename(temp, target);
    for (const dir of this.dirsOf(hex)) this.dirsToSync.add(dir);
  }

  /**
   * The directories whose fsync makes chunk `hex`'s name durable: its own (ab/cd) and, the first time this
   * process places a chunk in a directory it did not find at start (`primeDurableDirs`), the ones holding it
   * (ab, and the store's root): a chunk directory made since must itself be durable before an entry names a
   * chunk in it.
   */
  private dirsOf(hex: string): string[] {
    const dir = join(this.pathOf(hex), '..');
    if (this.durableParents.has(dir)) return [dir];
    this.durableParents.add(dir);
    return chunkDirs(this.root, hex);
  }

  /** Keep an existing chunk file instead of writing it again (dedup), if it holds these bytes: holdsSync. */
  private async reuse(target: string, content: Buffer): Promise<boolean> {
    let bytes: Buffer;
    try {
      bytes = await readBounded(target, this.area, content.length, { touch: true });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT' || code === 'UnsafeVaultNode') return false;
      throw err;
    }
    return bytes.equals(content);
  }

  /**
   * fsync pending temps among `hexes` and rename them into place (chunks are immutable: the first one wins).
   * A chunk that fails stays pending, for the next sync that needs it; the first error is thrown.
   */
  private async placePending(hexes: string[]): Promise<void> {
    const todo = hexes.filter((hex) => this.pending.has(hex) || this.placing.has(hex));
    let next = 0;
    let failure: Error | undefined;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const hex = todo[next++]!;
        await this.placeOne(hex).catch((err: Error) => (failure ??= err));
      }
    };
    await Promise.all(Array.from({ length: FSYNC_CONCURRENCY }, worker));
    if (failure) throw failure;
  }

  private placeOne(hex: string): Promise<void> {
    let work = this.placing.get(hex);
    if (!work) {
      const temp = this.pending.get(hex);
      if (temp === undefined) return Promise.resolve();
      work = this.placeTemp(hex, temp, false)
        .then(() => {
          if (this.pending.get(hex) === temp) this.pending.delete(hex);
        })
        .finally(() => this.placing.delete(hex));
      this.placing.set(hex, work);
    }
    return work;
  }

  async delete(name: Buffer): Promise<void> {
    const hex = name.toString('hex');
    const temp = this.pending.get(hex);
    this.pending.delete(hex);
    const work = (async () => {
      await this.placing.get(hex)?.catch(() => {});
      if (temp) await rm(temp, { force: true });
      await atName(this.pathOf(hex), this.area, (p) => unlink(p)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    })().finally(() => {
      if (this.removing.get(hex) === work) this.removing.delete(hex);
    });
    this.removing.set(hex, work);
    await work;
  }

  async sync(names?: Iterable<Buffer>): Promise<void> {
    const hexes = names ? [...names].map((n) => n.toString('hex')) : [...this.pending.keys(), ...this.placing.keys()];
    await this.placePending(hexes);
    if (!this.fsync) return;
    const ours = names ? new Set(hexes.flatMap((hex) => chunkDirs(this.root, hex))) : new Set(this.dirsToSync);
    await Promise.all([...ours].filter((d) => this.dirsToSync.has(d)).map((dir) => this.syncDir(dir)));
    // Directories another sync is fsyncing now hold some of our renames too: wait for those as well.
    if (names) await Promise.all([...ours].map((d) => this.syncingDirs.get(d)));
  }

  /** fsync a chunk directory once for every rename into it so far (a rename during the fsync marks it again). */
  private syncDir(dir: string): Promise<void> {
    this.dirsToSync.delete(dir);
    const work = fsyncDir(dir)
      .catch((err: Error) => {
        this.dirsToSync.add(dir);
        throw err;
      })
      .finally(() => {
        if (this.syncingDirs.get(dir) === work) this.syncingDirs.delete(dir);
      });
    this.syncingDirs.set(dir, work);
    return work;
  }

  /**
   * Take the chunk directories that exist now as durable in their parents (what a mount finds at start is on
   * disk, or in a page cache that an earlier session's fsyncs of its chunks' directories flushed), so that
   * only directories made from now on cost fsyncs of their parents.
   */
  primeDurableDirs(): void {
    for (const a of listDirSync(this.root, this.area)) for (const b of listDirSync(join(this.root, a), this.area)) this.durableParents.add(join(this.root, a, b));
  }

  async *names(): AsyncIterable<Buffer> {
    for (const a of await listDir(this.root, this.area)) {
      for (const b of await listDir(join(this.root, a), this.area)) {
        for (const f of await listDir(join(this.root, a, b), this.area)) if (NAME_RE.test(f)) yield Buffer.from(f, 'hex');
      }
    }
  }

  /** Remove temp files left by a crash in the middle of a put. */
  async removeLeftovers(): Promise<number> {
    let removed = 0;
    for (const a of await listDir(this.root, this.area)) {
      for (const b of await listDir(join(this.root, a), this.area)) {
        for (const f of await listDir(join(this.root, a, b), this.area)) {
          if (f.startsWith(TEMP_PREFIX)) {
            await atName(join(this.root, a, b, f), this.area, (p) => unlink(p)).catch(() => {});
            removed++;
          }
        }
      }
    }
    return removed;
  }
}

function listDirSync(dir: string, area: string): string[] {
  try {
    return atNodeSync(dir, area, ['dir'], (self) => readdirSync(self)).filter((n) => n.length === 2);
  } catch {
    return [];
  }
}

/**
 * A chunk directory's names (none when it is missing); anything but a directory of the store there (a link
 * planted in the fan-out) is refused, so nothing outside the store is listed or removed.
 */
async function listDir(dir: string, area: string): Promise<string[]> {
  try {
    return await atNode(dir, area, ['dir'], (self) => readdir(self));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

