/**
 * The Sequencer: one open file, as its committed version plus changes not yet committed, behind one lock.
 * Its pieces, one job each:
 *   file-content.ts  the block buffer (what the file holds now, block by block, and the src hash of any chunk)
 *   chunk-writer.ts  encryption and storage of chunks, and the names stored since the last commit
 *   stager.ts        background encryption of full blocks, so memory stays bounded whatever the file size
 *   committer.ts     the new entry: re-encrypts only chunks whose plaintext or neighbours changed
 * Writes, truncates, commits and the attribute changes of an open file (`exclusive`) run one at a time.
 *
 * Failures never stick: a failed staging leaves its blocks in memory (reported once to the next write or
 * commit), a failed hash is forgotten, and a failed commit leaves the file dirty, to be committed again.
 */
import type { ChunkRef } from '../core/chunk-ref.js';
import type { Profile } from '../core/compression.js';
import type { WorkerPool } from '../lib/pool.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { type MetaEntry, entryChunkNames, pieceKeyFor } from '../vault/meta-entry.js';
import { posixError } from '../vault/posix-error.js';
import type { BlockBuffers } from './block-buffers.js';
import type { ChunkCache } from './chunk-cache.js';
import { ChunkWriter } from './chunk-writer.js';
import { buildEntry } from './committer.js';
import { FileContent } from './file-content.js';
import type { MemoryBudget } from './memory-budget.js';
import { Mutex } from './mutex.js';
import { Stager } from './stager.js';
import { chunksCovering } from '../core/layout.js';

/**
 * The largest file a vault holds: 1 TiB. An open file keeps its whole DataMap in memory (a hole costs one
 * small object per MiB, written data about 300 bytes per MiB), so this bounds the daemon's memory per file.
 */
export const MAX_FILE_SIZE = 2 ** 40;
/** How far from the last read still counts as sequential (the window itself is the chunk cache's readAhead). */
const READ_AHEAD_SLACK = 1024 * 1024;

/** What a commit changed, for the space reclamation of the mount (src/fs/reclaim.ts). */
export interface CommitOutcome {
  /** The entry replaced, and the one that replaced it. */
  previous: MetaEntry;
  next: MetaEntry;
  /** The chunk names `next` holds, once each (entryChunkNames). */
  nextNames: Map<string, Buffer>;
  /** Chunks this file put in the store since its previous commit (some may be unused by `next`). */
  stored: Set<string>;
  /** False when persist wrote nothing (the file was removed while open). */
  persisted: boolean;
  /** The directory of the new entry: fsynced before the old entry's chunks may go. */
  dir?: string;
}

export interface SequencerDeps {
  store: ChunkStore;
  pool: WorkerPool;
  cache: ChunkCache;
  profile: Profile;
  /** Blocks kept in memory per file before full ones are staged regardless of the write pattern. */
  memBudgetBlocks: number;
  /** The daemon-wide budget of plaintext held in memory (optional for library use and tests). */
  budget?: MemoryBudget;
  /** Recycled whole-block buffers shared by every open file (optional: without them, new buffers). */
  buffers?: BlockBuffers;
  /** Told of every successful commit (space reclamation). */
  committed?: (outcome: CommitOutcome) => void;
}

/**
 * Writes the committed entry; false when there is nowhere to write it (a file removed while open). It calls
 * `placed(dir)` the moment the entry is in place (`dir`: its directory, fsynced before it returns), so the
 * commit is recorded then, under whatever lock the placing holds.
 */
export type Persist = (entry: MetaEntry, chunksDurable: Promise<void>, placed: (dir: string) => void) => Promise<boolean | void>;

export class Sequencer {
  private readonly content: FileContent;
  private readonly writer: ChunkWriter;
  private readonly stager: Stager;
  private readonly lock = new Mutex();
  private dirty = false;
  private baseNames: Set<string> | undefined;
  private lastReadEnd = -1;
  /** Where the last read-ahead window started (in which committed version). */
  private readAheadFrom: { base?: MetaEntry; chunk: number } = { chunk: -1 };
  /** When the content last changed (ms): the mtime of a file with uncommitted changes. */
  modifiedAt = Date.now();
  /** Bumped by every change of the content: a read that saw none while it ran may be remembered (slab-reads.ts). */
  version = 0;
  /** Told of every change of the content, before the request making it is answered. */
  onChange?: () => void;
  /** How a commit forced by memory pressure persists (set by the mount; without it no early commit). */
  persist?: Persist;

  constructor(
    entry: MetaEntry,
    private readonly deps: SequencerDeps,
  ) {
    this.content = new FileContent(entry, deps.pool, deps.cache, deps.budget, deps.buffers);
    this.writer = new ChunkWriter(deps.store, deps.pool, deps.profile, deps.buffers, pieceKeyFor(entry));
    this.stager = new Stager(this.content, this.writer, deps.memBudgetBlocks, deps.budget);
  }

  /** Logical size, including uncommitted changes. */
  get size(): number {
    return this.content.size;
  }

  get isDirty(): boolean {
    return this.dirty;
  }

  /** Bytes outside holes, for st_blocks (an estimate while changes are uncommitted). */
  get storedBytes(): number {
    return this.content.storedBytes;
  }

  /** The entry as last committed (what the vault holds for this file). */
  get committedEntry(): MetaEntry {
    return this.content.base;
  }

  /** Run `fn` under this file's lock: no commit, write or truncate runs meanwhile. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  /**
   * Give up the uncommitted changes of a file removed while nobody has it open: its memory goes back to the
   * budget, and the chunks it stored for them are returned (for space reclamation).
   */
  abandon(): Set<string> {
    this.content.dropAll();
    this.dirty = false;
    return this.writer.take();
  }

  /** Whether this file holds chunk `hex`: named by its committed entry, or stored for changes not yet committed. */
  holds(hex: string): boolean {
    if (this.writer.holds(hex)) return true;
    this.baseNames ??= new Set(entryChunkNames(this.content.base).keys());
    return this.baseNames.has(hex);
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** The committed chunks overlapping [from, to) with their file ranges, while nothing is uncommitted (else none). */
  committedRanges(from: number, to: number): { start: number; length: number; ref: ChunkRef }[] {
    return this.dirty ? [] : this.content.committedRanges(from, to);
  }

  /** Bytes [offset, offset + length) of the current content (clamped to the size). */
  read(offset: number, length: number): Promise<Buffer> {
    return this.content.read(offset, length);
  }

  /**
   * Fill `out` with the bytes from `offset` (the FUSE read buffer, so no extra copy); returns the part
   * filled, which is shorter than `out` at the end of the file. Sequential readers get read-ahead.
   */
  async readInto(offset: number, out: Buffer): Promise<Buffer> {
    const filled = await this.content.readRange(offset, out);
    if (filled.length > 0) this.readAhead(offset, offset + filled.length);
    return filled;
  }

  /**
   * On sequential reads of committed chunks, start decrypting the next few. The kernel's readahead sends
   * several reads at once, slightly out of order, so "sequential" means near the end of the last read.
   */
  private readAhead(offset: number, end: number): void {
    const sequential = Math.abs(offset - this.lastReadEnd) <= READ_AHEAD_SLACK;
    this.lastReadEnd = Math.max(end, offset === this.lastReadEnd ? end : this.lastReadEnd);
    const base = this.content.base;
    if (!sequential || base.kind !== 'map') return;
    const next = chunksCovering(base.size, end, 1);
    // The window only moves once per chunk (eight 128 KiB reads): skip the reads that would ask again.
    if (!next || (this.readAheadFrom.base === base && this.readAheadFrom.chunk === next.first)) return;
    this.readAheadFrom = { base, chunk: next.first };
    // Read-ahead starts once a group's worth of its window is missing: those are decrypted as batches.
    const { chunks, group } = this.deps.cache.readAhead;
    this.deps.cache.prefetch(this.content.committedRefs(next.first, chunks), group);
  }

  // ---- writes ---------------------------------------------------------------------------------

  write(offset: number, data: Buffer): Promise<void> {
    // No copy of `data`: the FUSE request buffer stays valid until this promise settles and the op answers.
    return this.lock.run(async () => {
      const end = offset + data.length;
      if (end > MAX_FILE_SIZE) throw posixError('EFBIG', `files are limited to ${MAX_FILE_SIZE} bytes`);
      this.stager.throwError();
      // Dirty first: a write that fails halfway has still changed blocks, which a commit must see.
      this.changed();
      await this.content.write(offset, data);
      this.stager.wrote(offset, end);
      await this.stager.waitForRoom();
      await this.relieveMemory();
    });
  }

  truncate(newSize: number): Promise<void> {
    return this.lock.run(async () => {
      if (newSize > MAX_FILE_SIZE) throw posixError('EFBIG', `files are limited to ${MAX_FILE_SIZE} bytes`);
      this.stager.throwError();
      if (newSize === this.content.size) return;
      await this.content.truncate(newSize);
      this.changed();
    });
  }

  /** Make the file at least `minSize` long (fallocate): the new part reads as zeros. */
  extendTo(minSize: number): Promise<void> {
    return this.lock.run(async () => {
      if (minSize > MAX_FILE_SIZE) throw posixError('EFBIG', `files are limited to ${MAX_FILE_SIZE} bytes`);
      this.stager.throwError();
      if (minSize <= this.content.size) return;
      await this.content.truncate(minSize);
      this.changed();
    });
  }

  private changed(): void {
    this.dirty = true;
    this.modifiedAt = Date.now();
    this.version++;
    this.onChange?.();
  }

  /**
   * Over the daemon's memory budget, what staging cannot free (blocks 0 and 1, files under 3 MiB) is
   * committed early, as a kernel filesystem writes dirty pages back before close under memory pressure.
   */
  private async relieveMemory(): Promise<void> {
    if (!this.deps.budget?.over || !this.persist || this.content.memBlockCount === 0) return;
    await this.stager.drain();
    this.stager.throwError();
    if (this.deps.budget.over) await this.commitLocked(this.persist);
  }

  // ---- commit ---------------------------------------------------------------------------------

  /**
   * Self-encrypt the current content into a new entry, storing only chunks that changed. `persist`
   * writes the entry durably; only after it succeeds does the new content become the committed one.
   * On failure the file stays dirty with all its changes, and the next commit tries again.
   */
  commit(persist: Persist): Promise<boolean> {
    return this.lock.run(() => this.commitLocked(persist));
  }

  private async commitLocked(persist: Persist): Promise<boolean> {
    await this.stager.drain();
    this.stager.throwError();
    if (!this.dirty) return false;
    const entry = await buildEntry(this.content, this.writer, this.deps.pool);
    // The entry may be written while its chunks are synced; it is put in place only after (persist waits).
    // Its names once (a large file names thousands): for the sync, the reclaimer and `holds`.
    const names = entryChunkNames(entry);
    const chunksDurable = this.deps.store.sync(names.values());
    chunksDurable.catch(() => {}); // awaited below, after persist
    let recorded = false;
    const record = (persisted: boolean, dir?: string): void => {
      if (recorded) return;
      recorded = true;
      const previous = this.content.base;
      this.content.rebase(entry);
      this.baseNames = new Set(names.keys());
      this.dirty = false;
      this.deps.committed?.({ previous, next: entry, nextNames: names, stored: this.writer.take(), persisted, dir });
    };
    const persisted = (await persist(entry, chunksDurable, (dir) => record(true, dir))) !== false;
    await chunksDurable;
    record(persisted);
    return true;
  }
}
