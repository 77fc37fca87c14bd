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
import { constants as fsc, mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkHashMismatch, ChunkNotFound } from '../core/errors.js';
import { sha3 } from '../core/hash.js';
import type { ChunkStore } from './chunk-store.js';

const TEMP_PREFIX = '.tmp-';
const NAME_RE = /^[0-9a-f]{64}$/;

export interface DiskStoreOptions {
  /** fsync each chunk before it is renamed into place (default true). */
  fsync?: boolean;
  /** Check that fetched bytes hash to their name (default true). */
  verify?: boolean;
  /** Defer fsync and rename to sync() (default false). */
  batch?: boolean;
}

/** Where chunk `hex` lives under `root`: DIR/ab/cd/<hex>. */
export function chunkPath(root: string, hex: string): string {
  return join(root, hex.slice(0, 2), hex.slice(2, 4), hex);
}

/** A fresh temp name beside the chunk's final place (same directory, so the rename is atomic). */
function tempPath(target: string, hex: string): string {
  return join(target, '..', `${TEMP_PREFIX}${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
}

/** Directories a worker thread has already made (a chunk store's fan-out is made once). */
const madeDirs = new Set<string>();

/**
 * What DiskStore.put does before its rename, synchronously, for a worker thread that has just encrypted a
 * chunk: reuse an existing chunk file of the right size (refreshing its mtime), or write a temp file beside
 * it. Returns the temp file, for DiskStore.adopt; undefined when the chunk was already there.
 */
export function writeChunkTempSync(root: string, name: Buffer, content: Uint8Array): string | undefined {
  const hex = name.toString('hex');
  const target = chunkPath(root, hex);
  try {
    if (statSync(target).size === content.length) {
      const now = new Date();
      utimesSync(target, now, now);
      return undefined;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const dir = join(target, '..');
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, { recursive: true });
    madeDirs.add(dir);
  }
  const temp = tempPath(target, hex);
  writeFileSync(temp, content, { flag: 'wx', mode: 0o600 });
  return temp;
}

/** A batch flushes in the background once this many chunks wait. */
const BATCH_FLUSH_AT = 64;
const FSYNC_CONCURRENCY = 8;

export class DiskStore implements ChunkStore {
  private readonly fsync: boolean;
  private readonly verify: boolean;
  private readonly batch: boolean;
  private readonly dirsToSync = new Set<string>();
  private readonly knownDirs = new Set<string>();
  /** Batched chunks not yet renamed into place: hex name -> temp path. */
  private readonly pending = new Map<string, string>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    readonly root: string,
    options: DiskStoreOptions = {},
  ) {
    this.fsync = options.fsync ?? true;
    this.verify = options.verify ?? true;
    this.batch = options.batch ?? false;
  }

  pathOf(name: Buffer | string): string {
    return chunkPath(this.root, typeof name === 'string' ? name : name.toString('hex'));
  }

  /** Chunks may be written by other threads of this process (writeChunkTempSync), then adopted. */
  get localRoot(): string {
    return this.root;
  }

  async get(name: Buffer): Promise<Buffer> {
    let bytes: Buffer;
    try {
      const temp = this.pending.get(name.toString('hex'));
      // A batched chunk may be renamed into place between the lookup and the read: then read it there.
      bytes = temp ? await readFile(temp).catch(() => readFile(this.pathOf(name))) : await readFile(this.pathOf(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw ChunkNotFound.of(name);
      throw err;
    }
    if (this.verify && !sha3(bytes).equals(name)) throw new ChunkHashMismatch(name.toString('hex'), 'dst');
    return bytes;
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

  async put(name: Buffer, content: Buffer): Promise<void> {
    const target = this.pathOf(name);
    if (this.pending.has(name.toString('hex')) || (await this.reuse(target, content.length))) return;
    const dir = join(target, '..');
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.knownDirs.add(dir);
    }
    const hex = name.toString('hex');
    const temp = tempPath(target, hex);
    const fh = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    const syncNow = this.fsync && !this.batch;
    try {
      await fh.writeFile(content);
      if (syncNow) await fh.sync();
    } finally {
      await fh.close();
    }
    await this.takeTemp(hex, temp, syncNow);
  }

  /**
   * Take a chunk whose temp file a worker has written (writeChunkTempSync) as if it had been put. `temp`
   * undefined: the chunk was already in the store.
   */
  async adopt(name: Buffer, temp: string | undefined): Promise<void> {
    if (temp !== undefined) await this.takeTemp(name.toString('hex'), temp, false);
  }

  /** A written temp file: batched, it waits for the next flush; otherwise it goes into place now. */
  private async takeTemp(hex: string, temp: string, synced: boolean): Promise<void> {
    if (!this.batch) return this.placeTemp(hex, temp, synced);
    if (this.pending.has(hex)) await unlink(temp);
    else this.pending.set(hex, temp);
    if (this.pending.size >= BATCH_FLUSH_AT) this.flushing = this.flushing.catch(() => {}).then(() => this.flushPending());
  }

  /** fsync a temp file (unless done) and rename it to the chunk's name; its directory is fsynced by sync(). */
  private async placeTemp(hex: string, temp: string, synced: boolean): Promise<void> {
    if (this.fsync && !synced) {
      const fh = await open(temp, fsc.O_RDONLY);
      await fh.sync().finally(() => fh.close());
    }
    const target = this.pathOf(hex);
    await rename(temp, target);
    this.dirsToSync.add(join(target, '..'));
  }

  /**
   * Use an existing chunk file instead of writing it again (dedup). Its mtime is refreshed, because gc spares
   * young unreferenced chunks and a write about to name an old one must not lose it to a gc running now.
   * A file of the wrong size (torn by a power loss before its fsync) is not reused: it is written again.
   */
  private async reuse(target: string, size: number): Promise<boolean> {
    try {
      const st = await stat(target);
      if (st.size !== size) return false;
      const now = new Date();
      await utimes(target, now, now);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** fsync batched temps, rename them into place (chunks are immutable: the first one wins). */
  private async flushPending(): Promise<void> {
    const batch = [...this.pending];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batch.length) {
        const [hex, temp] = batch[next++]!;
        await this.placeTemp(hex, temp, false);
        this.pending.delete(hex);
      }
    };
    await Promise.all(Array.from({ length: FSYNC_CONCURRENCY }, worker));
  }

  async delete(name: Buffer): Promise<void> {
    const temp = this.pending.get(name.toString('hex'));
    this.pending.delete(name.toString('hex'));
    if (temp) await rm(temp, { force: true });
    await rm(this.pathOf(name), { force: true });
  }

  async sync(): Promise<void> {
    // A failed background flush surfaces here, to the commit that needs the chunks durable.
    this.flushing = this.flushing.catch(() => {}).then(() => this.flushPending());
    await this.flushing;
    if (!this.fsync) return;
    const dirs = [...this.dirsToSync];
    this.dirsToSync.clear();
    await Promise.all(dirs.map(fsyncDir));
  }

  async *names(): AsyncIterable<Buffer> {
    for (const a of await listDir(this.root)) {
      for (const b of await listDir(join(this.root, a))) {
        for (const f of await listDir(join(this.root, a, b))) if (NAME_RE.test(f)) yield Buffer.from(f, 'hex');
      }
    }
  }

  /** Remove temp files left by a crash in the middle of a put. */
  async removeLeftovers(): Promise<number> {
    let removed = 0;
    for (const a of await listDir(this.root)) {
      for (const b of await listDir(join(this.root, a))) {
        for (const f of await listDir(join(this.root, a, b))) {
          if (f.startsWith(TEMP_PREFIX)) {
            await unlink(join(this.root, a, b, f)).catch(() => {});
            removed++;
          }
        }
      }
    }
    return removed;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

/** fsync a directory so the renames inside it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
