/**
 * A vault whose chunks live in an S3 bucket, served through a local chunk cache (VAULT/chunks, a DiskStore)
 * bounded in bytes, least recently used first out. Write-back:
 *   - a new chunk is written to the cache as today (durable at the commit's sync, native-notes/power-loss.md)
 *     and queued for upload; a commit never waits for the bucket;
 *   - an uploaded chunk's file is marked read-only (0400): the upload queue is the set of cache files still
 *     writable, so it survives a crash and is found again at the next mount. A mark lost in a crash costs
 *     one more upload (a 412: the object is there already), never a chunk;
 *   - only marked chunks leave the cache: every chunk is always in the cache or in the bucket;
 *   - writers wait while the chunks not yet uploaded alone fill the cache, and fail (EIO) once uploads
 *     have made no progress for SEFS_S3_STALL_MS (default 60 s): a stopped server is an error or a wait,
 *     never a hang, and the queue resumes by itself when the server returns.
 * Reads try the cache, then the bucket (the fetched chunk is cached as uploaded, in the background; not when
 * fetched ahead of a sequential reader: streaming a large file would only flush the cache).
 */
import { chmod, stat } from 'node:fs/promises';
import { ChunkNotFound } from '../core/errors.js';
import type { ChunkStore, GetOptions, ReadAhead } from './chunk-store.js';
import { DiskStore } from './disk-store.js';
import { S3Error, type S3Store } from './s3-store.js';
import { UploadBytes } from './upload-bytes.js';

export const DEFAULT_DISK_CACHE_MB = 1024;
/** Uploads in flight at most. */
const UPLOADS = 16;
/** Encrypted bytes of queued chunks kept in memory for their upload (UploadBytes): the uploads in flight and as many queued. */
const UPLOAD_BYTES = 2 * UPLOADS * 1024 * 1024;
const UPLOADED_MODE = 0o400;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5_000;
const STALL_MS = Number(process.env.SEFS_S3_STALL_MS) || 60_000;
/** Chunks fetched from the bucket being written to the cache at once; more are not cached (the bucket has them). */
const FILLS = 16;

interface Entry {
  size: number;
  /** In the bucket (its file is marked, or will be once the chmod lands). */
  uploaded: boolean;
}

export interface CachedStoreOptions {
  capacityBytes: number;
  /** A read-only mount writes nothing into the vault: chunks read from the bucket are not cached. */
  readOnly?: boolean;
  log: (line: string) => void;
}

export interface UploadProgress {
  pendingChunks: number;
  pendingBytes: number;
  cachedChunks: number;
  cachedBytes: number;
  lastError?: string;
}

export class CachedStore implements ChunkStore {
  /** Chunks in the cache, least recently used first (a Map keeps insertion order). */
  private readonly entries = new Map<string, Entry>();
  private cachedBytes = 0;
  private pendingBytes = 0;
  private readonly queue = new Set<string>();
  private readonly uploading = new Map<string, Promise<void>>();
  /** Uploaded chunks whose files were still temp files (batched, not placed) when their upload finished. */
  private readonly unmarked = new Set<string>();
  private readonly removing = new Map<string, Promise<void>>();
  /** Where fetched chunks are written: no fsync (the bucket has them), placed at once. */
  private readonly fills: DiskStore;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private lastError: string | undefined;
  private lastProgress = Date.now();
  private readonly roomWaiters = new Set<() => void>();
  private readonly idleWaiters = new Set<() => void>();
  private closed = false;
  private uploadsOn = false;
  private readonly outgoing = new UploadBytes(UPLOAD_BYTES);
  /** Workers hand back new chunks' bytes (ChunkStore.wantsContent): most uploads need not read the cache. */
  readonly wantsContent = true;
  /**
   * Sequential readers fetch further ahead, in groups of four (one four-way SHA3 pass each) decrypted as soon
   * as their GETs are in (a local store's 16 in batches of 8 waited for each batch's slowest GET, about 10 ms
   * apiece, and kept too few in flight).
   */
  readonly readAhead: ReadAhead = { chunks: 24, group: 4 };
  /** Fetched chunks being written to the cache (fillLater). */
  private readonly filling = new Set<Promise<void>>();

  constructor(
    readonly local: DiskStore,
    readonly remote: S3Store,
    private readonly options: CachedStoreOptions,
  ) {
    this.fills = new DiskStore(local.root, { fsync: false, verify: false });
  }

  get localRoot(): string {
    return this.local.root;
  }

  /** Take the cache's files as found at mount (oldest first): the writable ones are the upload queue. */
  load(files: Iterable<{ hex: string; size: number; mtimeMs: number; mode: number }>): void {
    const sorted = [...files].sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of sorted) this.record(f.hex, f.size, (f.mode & 0o200) === 0);
  }

  /** Start uploading (not in a read-only mount: the queue stays for the next one). */
  startUploads(): void {
    this.uploadsOn = true;
    if (this.queue.size > 0) this.options.log(`resuming the upload of ${this.queue.size} chunks (${mib(this.pendingBytes)} MiB) to ${this.remote.url}`);
    this.pump();
    void this.evict();
  }

  progress(): UploadProgress {
    return { pendingChunks: this.queue.size + this.uploading.size, pendingBytes: this.pendingBytes, cachedChunks: this.entries.size, cachedBytes: this.cachedBytes, lastError: this.lastError };
  }

  /** From the cache, else the bucket: kept in the cache unless fetched ahead of a sequential reader (GetOptions). */
  async get(name: Buffer, options?: GetOptions): Promise<Buffer> {
    const cached = await this.readCached(name, () => this.local.get(name));
    if (cached) return cached;
    const bytes = await this.remote.get(name);
    if (!options?.readAhead) this.fillLater(name, bytes);
    return bytes;
  }

  /**
   * Part of a chunk (a small read's pieces, core/pieces.ts): from the cache, else one ranged GET, not cached (a
   * random reader's ranges would fill the cache with partial interest; a whole read of the chunk caches it).
   */
  async getRange(name: Buffer, start: number, end: number): Promise<Buffer> {
    return (await this.readCached(name, () => this.local.getRange(name, start, end))) ?? this.remote.getRange(name, start, end);
  }

  /** `read` of the cached copy when the cache has the chunk (it is touched), else undefined: it is in the bucket. */
  private async readCached(name: Buffer, read: () => Promise<Buffer>): Promise<Buffer | undefined> {
    const hex = name.toString('hex');
    if (!this.entries.has(hex)) return undefined;
    try {
      const bytes = await read();
      this.touch(hex);
      return bytes;
    } catch (err) {
      if (!(err instanceof ChunkNotFound)) throw err;
      return undefined; // evicted meanwhile: it is in the bucket
    }
  }

  /**
   * Keep a copy of a chunk fetched from the bucket in the cache, in the background: the reader decrypts
   * meanwhile (the caller moves `bytes` to a worker thread, hence the copy). At most FILLS at once.
   */
  private fillLater(name: Buffer, bytes: Buffer): void {
    const hex = name.toString('hex');
    if (this.entries.has(hex) || this.removing.has(hex) || this.closed || this.options.readOnly || this.filling.size >= FILLS) return;
    const work = this.fill(name, Buffer.from(bytes))
      .catch((err: Error) => this.options.log(`caching chunk ${hex}: ${err.message}`))
      .finally(() => this.filling.delete(work));
    this.filling.add(work);
  }

  /** Keep a chunk fetched from the bucket in the cache, marked as uploaded. */
  private async fill(name: Buffer, bytes: Buffer): Promise<void> {
    const hex = name.toString('hex');
    if (this.entries.has(hex) || this.removing.has(hex) || this.closed) return;
    await this.fills.put(name, bytes);
    await chmod(this.local.pathOf(hex), UPLOADED_MODE);
    if (!this.entries.has(hex)) this.record(hex, bytes.length, true);
    await this.evict();
  }

  async put(name: Buffer, content: Buffer): Promise<void> {
    const hex = name.toString('hex');
    await this.removing.get(hex);
    await this.local.put(name, content);
    await this.added(hex, content.length);
  }

  async adopt(name: Buffer, temp: string | undefined, content?: Buffer): Promise<void> {
    const hex = name.toString('hex');
    if (temp === undefined) {
      this.touch(hex);
      return;
    }
    await this.removing.get(hex);
    const size = content?.length ?? (await stat(temp)).size;
    await this.local.adopt(name, temp);
    if (!this.entries.get(hex)?.uploaded) this.outgoing.offer(hex, content);
    await this.added(hex, size);
  }

  /** A chunk written to the cache: queue its upload, then hold the writer while the cache is full of uploads. */
  private async added(hex: string, size: number): Promise<void> {
    const known = this.entries.get(hex);
    // Written again over a chunk already in the bucket: nothing to upload; the new file is marked once placed.
    if (known?.uploaded) {
      this.touch(hex);
      this.unmarked.add(hex);
    } else if (!known) this.record(hex, size, false);
    this.pump();
    await this.evict();
    await this.waitForRoom();
  }

  async has(name: Buffer): Promise<boolean> {
    return (await this.local.has(name)) || (await this.remote.has(name));
  }

  async stillThere(name: Buffer): Promise<boolean> {
    await this.removing.get(name.toString('hex'));
    return (await this.local.stillThere(name)) || (await this.remote.has(name));
  }

  delete(name: Buffer): Promise<void> {
    return this.deleteMany([name.toString('hex')]);
  }

  /**
   * Remove chunks from the cache and the bucket (reclamation, sefs gc): the bucket's in DeleteObjects batches.
   * A writer about to store one of them again waits until the removal is done (as DiskStore's).
   */
  deleteMany(hexes: string[]): Promise<void> {
    const work = (async () => {
      for (const hex of hexes) {
        this.queue.delete(hex);
        // An upload under way finishes first, so the object it makes is deleted too.
        await this.uploading.get(hex)?.catch(() => {});
        await this.local.delete(Buffer.from(hex, 'hex'));
        this.forget(hex);
      }
      await this.remote.deleteMany(hexes);
    })();
    for (const hex of hexes) this.removing.set(hex, work);
    const settle = (): void => {
      for (const hex of hexes) if (this.removing.get(hex) === work) this.removing.delete(hex);
    };
    work.then(settle, settle);
    return work;
  }

  async sync(names?: Iterable<Buffer>): Promise<void> {
    const list = names ? [...names] : undefined;
    await this.local.sync(list);
    // Uploaded before they were placed: their files exist now.
    const placed = list ? list.map((n) => n.toString('hex')).filter((hex) => this.unmarked.has(hex)) : [...this.unmarked];
    if (placed.length > 0) await this.mark(placed).catch((err: Error) => this.options.log(`marking uploaded chunks: ${err.message}`));
  }

  /** Every chunk, in the bucket or only in the cache so far. */
  async *names(): AsyncIterable<Buffer> {
    const seen = new Set<string>();
    for await (const o of this.remote.objects()) {
      seen.add(o.hex);
      yield Buffer.from(o.hex, 'hex');
    }
    for (const hex of [...this.entries.keys()]) if (!seen.has(hex)) yield Buffer.from(hex, 'hex');
  }

  /** Every chunk with its stored size: the bucket's objects, then the cached chunks not uploaded yet. */
  async *list(): AsyncGenerator<{ hex: string; size: number }> {
    const seen = new Set<string>();
    for await (const o of this.remote.objects()) {
      seen.add(o.hex);
      yield o;
    }
    for (const [hex, e] of [...this.entries]) if (!seen.has(hex)) yield { hex, size: e.size };
  }

  /**
   * Resolves once every queued chunk is in the bucket, or once uploads have failed without progress for
   * SEFS_S3_STALL_MS (then the queue waits on disk for the next mount); `onProgress` is called meanwhile.
   */
  async drain(onProgress?: (p: UploadProgress) => void): Promise<void> {
    await Promise.all(this.filling);
    const started = Date.now();
    while (this.queue.size > 0 || this.uploading.size > 0) {
      if (this.lastError && Date.now() - Math.max(started, this.lastProgress) >= STALL_MS) {
        this.options.log(`${this.queue.size + this.uploading.size} chunks (${mib(this.pendingBytes)} MiB) not uploaded: ${this.lastError}; they upload at the next mount`);
        return;
      }
      onProgress?.(this.progress());
      await new Promise<void>((res) => {
        const done = (): void => {
          clearTimeout(t);
          this.idleWaiters.delete(done);
          res();
        };
        const t = setTimeout(done, 1000);
        this.idleWaiters.add(done);
      });
    }
    // Every chunk placed, so every uploaded one gets its mark before the daemon ends.
    await this.sync().catch((err: Error) => this.options.log(`placing chunks at unmount: ${err.message}`));
    onProgress?.(this.progress());
  }

  /** Stop uploading (what is queued stays queued on disk for the next mount). */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const wake of this.roomWaiters) wake();
  }

  private record(hex: string, size: number, uploaded: boolean): void {
    this.entries.set(hex, { size, uploaded });
    this.cachedBytes += size;
    if (!uploaded) {
      this.pendingBytes += size;
      this.queue.add(hex);
    }
  }

  private forget(hex: string): void {
    this.unmarked.delete(hex);
    this.outgoing.drop(hex);
    const e = this.entries.get(hex);
    if (!e) return;
    this.entries.delete(hex);
    this.cachedBytes -= e.size;
    if (!e.uploaded) this.pendingBytes -= e.size;
    this.wake();
  }

  private touch(hex: string): void {
    const e = this.entries.get(hex);
    if (!e) return;
    this.entries.delete(hex);
    this.entries.set(hex, e);
  }

  /** Start uploads up to the limit (unless waiting out a failure). */
  private pump(): void {
    if (this.retryTimer || this.closed || !this.uploadsOn) return;
    for (const hex of this.queue) {
      if (this.uploading.size >= UPLOADS) break;
      if (this.uploading.has(hex)) continue;
      this.queue.delete(hex);
      const work = this.upload(hex)
        .then(
          () => {
            this.retryMs = RETRY_MIN_MS;
            this.lastError = undefined;
          },
          (err: Error) => this.failed(hex, err),
        )
        .finally(() => {
          this.uploading.delete(hex);
          this.pump();
          this.wake();
        });
      this.uploading.set(hex, work);
    }
  }

  /**
   * Upload a chunk from the cache (a batched chunk from its temp file: uploads never wait for the placement's
   * fsyncs) and mark its file. A chunk not yet placed is marked once a sync places it (sync, drain); until
   * then a crash costs its upload again (a 412), never the chunk.
   */
  private async upload(hex: string): Promise<void> {
    const name = Buffer.from(hex, 'hex');
    let bytes: Buffer;
    try {
      bytes = this.outgoing.take(hex) ?? (await this.local.get(name));
    } catch (err) {
      if (err instanceof ChunkNotFound) return this.forget(hex); // removed (reclaimed) meanwhile
      throw err;
    }
    await this.remote.put(name, bytes);
    const e = this.entries.get(hex);
    if (e && !e.uploaded) {
      e.uploaded = true;
      this.pendingBytes -= e.size;
    }
    this.lastProgress = Date.now();
    await this.mark([hex]);
    await this.evict();
  }

  /** Mark uploaded chunks' files read-only; those still temp files wait for a sync to place them. */
  private async mark(hexes: Iterable<string>): Promise<void> {
    for (const hex of hexes) {
      try {
        await chmod(this.local.pathOf(hex), UPLOADED_MODE);
        this.unmarked.delete(hex);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (this.entries.has(hex)) this.unmarked.add(hex);
        else this.unmarked.delete(hex); // reclaimed or evicted meanwhile
      }
    }
  }

  /** A failed upload goes back to the queue; uploads pause, with backoff, then resume by themselves. */
  private failed(hex: string, err: Error): void {
    if (this.entries.has(hex) && !this.removing.has(hex)) this.queue.add(hex);
    const message = err.message;
    if (message !== this.lastError) this.options.log(`uploading chunks: ${message} (retrying)`);
    this.lastError = message;
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** Remove uploaded chunks, least recently used first, until the cache is within its bound. */
  private async evict(): Promise<void> {
    if (this.cachedBytes <= this.options.capacityBytes) return;
    const victims: string[] = [];
    let over = this.cachedBytes - this.options.capacityBytes;
    for (const [hex, e] of this.entries) {
      if (over <= 0) break;
      if (!e.uploaded || this.removing.has(hex)) continue;
      victims.push(hex);
      over -= e.size;
    }
    for (const hex of victims) {
      this.forget(hex);
      await this.local.delete(Buffer.from(hex, 'hex')).catch((err: Error) => this.options.log(`evicting chunk ${hex}: ${err.message}`));
    }
  }

  /**
   * Hold a writer while chunks waiting for upload alone fill the cache; fail once no upload has succeeded for
   * STALL_MS since it began waiting (each writer waits that long before it fails).
   */
  private async waitForRoom(): Promise<void> {
    const since = Date.now();
    while (this.pendingBytes > this.options.capacityBytes && !this.closed) {
      const stalled = Date.now() - Math.max(this.lastProgress, since);
      if (stalled >= STALL_MS) {
        throw new S3Error(`the chunk cache is full of chunks waiting for upload and uploads made no progress for ${Math.round(STALL_MS / 1000)} s${this.lastError ? ` (${this.lastError})` : ''}`);
      }
      await new Promise<void>((res) => {
        const done = (): void => {
          clearTimeout(t);
          this.roomWaiters.delete(done);
          res();
        };
        const t = setTimeout(done, Math.min(1000, STALL_MS - stalled));
        this.roomWaiters.add(done);
      });
    }
  }

  private wake(): void {
    for (const wake of [...this.roomWaiters]) wake();
    if (this.queue.size === 0 && this.uploading.size === 0) for (const done of [...this.idleWaiters]) done();
  }
}

const mib = (n: number): string => (n / 1048576).toFixed(1);
