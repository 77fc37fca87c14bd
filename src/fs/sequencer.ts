/**
 * The Sequencer: the content of one open file, as its committed version plus changes not yet committed.
 *
 * The file is seen as 1 MiB blocks (MAX_CHUNK_SIZE), which are exactly the chunks of any file of 3 MiB or
 * more. A block is either untouched (read from the committed DataMap, or zero past `zeroFrom`: a hole), in
 * memory (`mem`: written to since the last commit, grown only as far as it was written), or `staged`:
 * already encrypted and put in the chunk store under keys from its neighbours' current hashes. Staging full
 * blocks in the background while a file is being written keeps memory bounded whatever the file size (the
 * encrypted chunks in the vault are the spill area) and leaves little to do at close. Commit re-encrypts
 * only chunks whose plaintext changed or whose neighbours' hashes changed, and reuses every other chunk.
 *
 * Failures never stick: a failed staging leaves its blocks in memory (reported once to the next write or
 * commit, and not retried until the file changes again), a failed hash is forgotten, and a failed commit
 * leaves the file dirty, to be committed again.
 */
import { MAX_CHUNK_SIZE, MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
import type { Profile } from '../core/compression.js';
import type { ChunkInfo, DataMap } from '../core/data-map.js';
import { neighbours } from '../core/keys.js';
import { chunkSize, chunksCovering, chunkStart, numChunks } from '../core/layout.js';
import type { EncryptRequest, WorkerPool } from '../lib/pool.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { type ChunkRef, chunkRefOf as baseRef } from '../core/chunk-ref.js';
import { type MetaEntry, storedBytesOf } from '../vault/meta-entry.js';
import { posixError } from '../vault/posix-error.js';
import type { ChunkCache } from './chunk-cache.js';
import type { MemoryBudget } from './memory-budget.js';
import { Mutex } from './mutex.js';
import { ZEROS, zeroSrc } from '../core/zeros.js';

const BLOCK = MAX_CHUNK_SIZE;
/**
 * The largest file a vault holds: 1 TiB. An open file keeps its whole DataMap in memory (a hole costs one
 * small object per MiB, written data about 300 bytes per MiB), so this bounds the daemon's memory per file.
 */
export const MAX_FILE_SIZE = 2 ** 40;
/** A commit encrypts chunks in batches of four, two batches at once: bounds memory to 8 MiB per file. */
const COMMIT_BATCH = 4;
const COMMIT_CONCURRENCY = 2;
/** Chunks decrypted ahead of a sequential reader, and how far from the last read still counts as sequential. */
const READ_AHEAD_CHUNKS = 16;
/** Read-ahead starts once this many chunks of its window are missing: they are decrypted as batches. */
const READ_AHEAD_GROUP = 8;
const READ_AHEAD_SLACK = 1024 * 1024;
/**
 * Blocks staged together: hashed in one worker message and encrypted in another, so their SHA3 passes share
 * the four-way hash. Up to three groups are in flight, enough for both workers.
 */
const STAGE_GROUP = 4;
const STAGING_CONCURRENCY = 3 * STAGE_GROUP;
/** A block's buffer starts this small and doubles as writes reach further (small files cost little). */
const MIN_BLOCK_CAPACITY = 16 * 1024;

type MemBlock = { kind: 'mem'; data: Buffer; version: number; hash?: { version: number; src: Promise<Buffer> } };
type Block = MemBlock | { kind: 'staged'; ref: ChunkRef };

/** What a commit changed, for the space reclamation of the mount (src/fs/reclaim.ts). */
export interface CommitOutcome {
  /** The entry replaced, and the one that replaced it. */
  previous: MetaEntry;
  next: MetaEntry;
  /** Chunks this file put in the store since its previous commit (some may be unused by `next`). */
  stored: Set<string>;
  /** False when persist wrote nothing (the file was removed while open). */
  persisted: boolean;
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
  /** Told of every successful commit (space reclamation). */
  committed?: (outcome: CommitOutcome) => void;
}

/** Writes the committed entry; false when there is nowhere to write it (a file removed while open). */
export type Persist = (entry: MetaEntry, chunksDurable: Promise<void>) => Promise<boolean | void>;

export class Sequencer {
  /** Logical size, including uncommitted changes. */
  size: number;
  private base: MetaEntry;
  /** Committed bytes at or past this offset read as zero (the file was truncated below them). */
  private zeroFrom: number;
  private readonly blocks = new Map<number, Block>();
  /** Indices of the `mem` blocks, so per-write bookkeeping does not walk every block of a large file. */
  private readonly memIndices = new Set<number>();
  private dirty = false;
  private readonly lock = new Mutex();
  private readonly stagingInFlight = new Map<number, Promise<void>>();
  private stagingError: Error | undefined;
  /** Set by a failed staging: nothing is staged again until the file is written to (no retry loop). */
  private stagingHalted = false;
  /** Chunk names this file stored since its last commit (held against space reclamation). */
  private stored = new Set<string>();
  private baseNames: Set<string> | undefined;
  private lastWriteEnd = 0;
  private sequentialWriter = true;
  private lastReadEnd = -1;
  /** Where the last read-ahead window started (in which committed version). */
  private readAheadFrom: { base?: MetaEntry; chunk: number } = { chunk: -1 };
  /** When the content last changed (ms): the mtime of a file with uncommitted changes. */
  modifiedAt = Date.now();
  /** How a commit forced by memory pressure persists (set by the mount; without it no early commit). */
  persist?: Persist;

  constructor(
    entry: MetaEntry,
    private readonly deps: SequencerDeps,
  ) {
    this.base = entry;
    this.size = entry.size;
    this.zeroFrom = entry.size;
  }

  get isDirty(): boolean {
    return this.dirty;
  }

  /**
   * Bytes of content outside holes, for st_blocks: the committed ones still in the file, plus the blocks
   * changed since (an estimate until the commit, which may find some of them all zeros).
   */
  get storedBytes(): number {
    let n = Math.min(storedBytesOf(this.base), this.zeroFrom);
    for (const block of this.blocks.values()) n += block.kind === 'mem' ? block.data.length : block.ref.size;
    return Math.min(n, this.size);
  }

  /** The entry as last committed (what the vault holds for this file). */
  get committedEntry(): MetaEntry {
    return this.base;
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
    for (const b of [...this.blocks.keys()]) this.dropBlock(b);
    this.dirty = false;
    const stored = this.stored;
    this.stored = new Set();
    return stored;
  }

  /** Whether this file holds chunk `hex`: named by its committed entry, or stored for changes not yet committed. */
  holds(hex: string): boolean {
    if (this.stored.has(hex)) return true;
    const base = this.base;
    if (base.kind !== 'map') return false;
    this.baseNames ??= new Set(entryNames(base).keys());
    return this.baseNames.has(hex);
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** Bytes [offset, offset + length) of the current content (clamped to the size). */
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    return this.readRange(offset, Buffer.alloc(end - offset));
  }

  /**
   * Fill `out` with the bytes from `offset` (the FUSE read buffer, so no extra copy); returns the part
   * filled, which is shorter than `out` at the end of the file. Sequential readers get read-ahead.
   */
  async readInto(offset: number, out: Buffer): Promise<Buffer> {
    const filled = await this.readRange(offset, out);
    if (filled.length > 0) this.readAhead(offset, offset + filled.length);
    return filled;
  }

  private async readRange(offset: number, out: Buffer): Promise<Buffer> {
    const end = Math.min(this.size, offset + out.length);
    if (end <= offset) return out.subarray(0, 0);
    out = out.subarray(0, end - offset);
    const parts: Promise<void>[] = [];
    for (let b = Math.floor(offset / BLOCK); b * BLOCK < end; b++) {
      const from = Math.max(offset, b * BLOCK);
      const to = Math.min(end, (b + 1) * BLOCK);
      parts.push(this.readBlockInto(b, from, to, out, from - offset));
    }
    await Promise.all(parts);
    return out;
  }

  private async readBlockInto(b: number, from: number, to: number, out: Buffer, at: number): Promise<void> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      // Past the block's capacity nothing was written: zeros.
      const start = from - b * BLOCK;
      const copied = start < block.data.length ? block.data.copy(out, at, start, Math.min(to - b * BLOCK, block.data.length)) : 0;
      out.fill(0, at + copied, at + (to - from));
    } else if (block?.kind === 'staged') {
      const plain = await this.deps.cache.get(block.ref);
      plain.copy(out, at, from - b * BLOCK, to - b * BLOCK);
    } else {
      const baseTo = Math.max(from, Math.min(to, this.zeroFrom));
      if (baseTo > from) await this.readBaseInto(from, baseTo, out, at);
      // Past the committed bytes (a hole, or a file shrunk and grown again): zeros.
      out.fill(0, at + (baseTo - from), at + (to - from));
    }
  }

  /** Committed bytes, through the chunk cache. */
  private async readBaseInto(from: number, to: number, out: Buffer, at: number): Promise<void> {
    const base = this.base;
    if (base.kind === 'inline') {
      base.data.copy(out, at, from, to);
      return;
    }
    const span = chunksCovering(base.size, from, to - from);
    if (!span) return;
    const jobs: Promise<void>[] = [];
    for (let i = span.first; i <= span.last; i++) {
      const start = chunkStart(base.size, i);
      jobs.push(
        this.deps.cache.get(baseRef(base.dataMap, i)).then((plain) => {
          const s = Math.max(from, start);
          const e = Math.min(to, start + plain.length);
          plain.copy(out, at + (s - from), s - start, e - start);
        }),
      );
    }
    await Promise.all(jobs);
  }

  /**
   * On sequential reads of committed chunks, start decrypting the next few. The kernel's readahead sends
   * several reads at once, slightly out of order, so "sequential" means near the end of the last read.
   */
  private readAhead(offset: number, end: number): void {
    const sequential = Math.abs(offset - this.lastReadEnd) <= READ_AHEAD_SLACK;
    this.lastReadEnd = Math.max(end, offset === this.lastReadEnd ? end : this.lastReadEnd);
    const base = this.base;
    if (!sequential || base.kind !== 'map') return;
    const next = chunksCovering(base.size, end, 1);
    // The window only moves once per chunk (eight 128 KiB reads): skip the reads that would ask again.
    if (!next || (this.readAheadFrom.base === base && this.readAheadFrom.chunk === next.first)) return;
    this.readAheadFrom = { base, chunk: next.first };
    const refs: ChunkRef[] = [];
    for (let i = next.first; i < Math.min(next.first + READ_AHEAD_CHUNKS, base.dataMap.chunks.length); i++) {
      if (chunkStart(base.size, i) < this.zeroFrom && !this.blocks.has(i)) refs.push(baseRef(base.dataMap, i));
    }
    this.deps.cache.prefetch(refs, READ_AHEAD_GROUP);
  }

  // ---- writes ---------------------------------------------------------------------------------

  write(offset: number, data: Buffer): Promise<void> {
    // No copy of `data`: the FUSE request buffer stays valid until this promise settles and the op answers.
    const bytes = data;
    return this.lock.run(async () => {
      const end = offset + bytes.length;
      if (end > MAX_FILE_SIZE) throw posixError('EFBIG', `files are limited to ${MAX_FILE_SIZE} bytes`);
      this.throwStagingError();
      this.stagingHalted = false;
      for (let b = Math.floor(offset / BLOCK); b * BLOCK < end; b++) {
        const from = Math.max(offset, b * BLOCK);
        const to = Math.min(end, (b + 1) * BLOCK);
        const block = await this.memBlock(b, to - b * BLOCK);
        bytes.copy(block.data, from - b * BLOCK, from - offset, to - offset);
        block.version++;
      }
      if (end > this.size) this.size = end;
      this.dirty = true;
      this.modifiedAt = Date.now();
      // Only a sequential writer leaves blocks behind for good; random writes come back to blocks.
      this.sequentialWriter = offset === this.lastWriteEnd;
      this.lastWriteEnd = end;
      this.stageFullBlocks();
      await this.backpressure();
    });
  }

  truncate(newSize: number): Promise<void> {
    return this.lock.run(async () => {
      if (newSize > MAX_FILE_SIZE) throw posixError('EFBIG', `files are limited to ${MAX_FILE_SIZE} bytes`);
      this.throwStagingError();
      if (newSize < this.size) {
        for (const b of [...this.blocks.keys()]) {
          if (b * BLOCK >= newSize) this.dropBlock(b);
        }
        const edge = Math.floor(newSize / BLOCK);
        if (newSize % BLOCK !== 0) {
          const block = await this.memBlock(edge, newSize - edge * BLOCK);
          block.data.fill(0, newSize - edge * BLOCK);
          block.version++;
        }
        this.zeroFrom = Math.min(this.zeroFrom, newSize);
      }
      if (newSize !== this.size) {
        this.dirty = true;
        this.modifiedAt = Date.now();
      }
      this.size = newSize;
    });
  }

  private dropBlock(b: number): void {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') this.deps.budget?.give(block.data.length);
    this.blocks.delete(b);
    this.memIndices.delete(b);
  }

  /** Block `b` as a writable in-memory copy of its current content, at least `need` bytes long. */
  private async memBlock(b: number, need: number): Promise<MemBlock> {
    const existing = this.blocks.get(b);
    if (existing?.kind === 'mem') {
      this.grow(existing, need);
      // Most recently written last: memory pressure stages the blocks written longest ago first.
      this.memIndices.delete(b);
      this.memIndices.add(b);
      return existing;
    }
    const valid = Math.max(0, Math.min(BLOCK, this.size - b * BLOCK));
    // A plain Buffer: the pool copies it into each job. (A SharedArrayBuffer per block would save the copy,
    // but workers keep every shared buffer they saw until they garbage-collect: native-notes/worker-memory.md.)
    const data = Buffer.alloc(capacityFor(Math.max(need, valid)));
    this.deps.budget?.take(data.length);
    try {
      if (valid > 0) await this.readBlockInto(b, b * BLOCK, b * BLOCK + valid, data, 0);
    } catch (err) {
      this.deps.budget?.give(data.length);
      throw err;
    }
    const block: MemBlock = { kind: 'mem', data, version: 0 };
    this.blocks.set(b, block);
    this.memIndices.add(b);
    return block;
  }

  /** Make a block's buffer at least `need` bytes (the bytes past its old end are zeros, as they read). */
  private grow(block: MemBlock, need: number): void {
    if (block.data.length >= need) return;
    const data = Buffer.alloc(capacityFor(Math.max(need, 2 * block.data.length)));
    block.data.copy(data);
    this.deps.budget?.give(block.data.length);
    this.deps.budget?.take(data.length);
    block.data = data;
  }

  // ---- staging (background encryption of full blocks) ------------------------------------------

  /**
   * Encrypt full in-memory blocks whose neighbours are known, in the background, a few at a time.
   * Blocks 0 and 1 wait for the commit: their keys come from the last two chunks. Without memory pressure
   * only blocks a sequential writer has left behind (two blocks back) are staged, so rewrites of a block
   * being written, and random writes that come back to blocks, do not waste encryptions and chunk files.
   */
  private stageFullBlocks(): void {
    if (this.stagingHalted) return;
    const excess = Math.max(this.memIndices.size - this.deps.memBudgetBlocks, this.deps.budget?.over ? STAGE_GROUP : 0);
    const pressure = excess > 0;
    if (!pressure && !this.sequentialWriter) return;
    const limit = pressure ? Math.floor(this.size / BLOCK) : Math.floor(this.lastWriteEnd / BLOCK) - 1;
    let ready: number[] = [];
    // Under pressure, the blocks written longest ago (memIndices is in write order), only as many as needed:
    // a block being rewritten is not encrypted and stored again and again.
    for (const b of this.memIndices) {
      if (b >= 2 && b < limit && (b + 1) * BLOCK <= this.size && !this.stagingInFlight.has(b)) ready.push(b);
    }
    if (pressure) ready = ready.slice(0, Math.max(0, excess - this.stagingInFlight.size));
    ready.sort((x, y) => x - y);
    // Whole groups only, unless memory is short: the rest waits for the writer (or the commit).
    while (ready.length >= (pressure ? 1 : STAGE_GROUP) && this.stagingInFlight.size < STAGING_CONCURRENCY) {
      const group = ready.splice(0, STAGE_GROUP);
      const job = this.stageGroup(group)
        .then(
          () => this.stageFullBlocks(),
          (err: Error) => {
            // Reported once; the blocks stay in memory and are staged again only after the next write.
            this.stagingError ??= err;
            this.stagingHalted = true;
          },
        )
        .finally(() => {
          for (const b of group) this.stagingInFlight.delete(b);
        });
      for (const b of group) this.stagingInFlight.set(b, job);
    }
  }

  /** Wait until no staging is in flight. */
  private async drainStaging(): Promise<void> {
    while (this.stagingInFlight.size > 0) await Promise.all(this.stagingInFlight.values());
  }

  /** Hold a writer while too many blocks sit in memory and staging can make room; over the daemon's budget, commit. */
  private async backpressure(): Promise<void> {
    while (this.memIndices.size > this.deps.memBudgetBlocks && this.stagingInFlight.size > 0) {
      await Promise.race(this.stagingInFlight.values());
    }
    if (this.deps.budget?.over && this.persist && this.memIndices.size > 0) {
      await this.drainStaging();
      this.throwStagingError();
      // What staging cannot free (blocks 0 and 1, files under 3 MiB) is committed early, as a kernel
      // filesystem writes dirty pages back before close under memory pressure.
      if (this.deps.budget.over) await this.commitLocked(this.persist);
    }
  }

  /** Encrypt full in-memory blocks and put their chunks in the store; blocks written to meanwhile stay in memory. */
  private async stageGroup(group: number[]): Promise<void> {
    const blocks = group.map((b) => this.blocks.get(b) as MemBlock);
    const versions = blocks.map((block) => block.version);
    const unchanged = (k: number) => this.blocks.get(group[k]!) === blocks[k] && blocks[k]!.version === versions[k];
    // The group's own hashes and those of the two blocks before it (its first blocks' neighbours).
    this.hashBlocks([group[0]! - 2, group[0]! - 1, ...group].filter((b) => b >= 0));
    const keys = await Promise.all(group.map((b) => Promise.all([this.srcOfBlock(b), this.srcOfBlock(b - 1), this.srcOfBlock(b - 2)])));
    const live = group.flatMap((b, k) => (unchanged(k) && (b + 1) * BLOCK <= this.size ? [k] : []));
    const stored = this.encryptAndStore(live.map((k) => ({ data: this.fullData(blocks[k]!), own: keys[k]![0], n1: keys[k]![1], n2: keys[k]![2] })));
    await Promise.all(
      live.map(async (k, i) => {
        const name = await stored[i]!;
        if (!unchanged(k)) return;
        const [own, n1, n2] = keys[k]!;
        // Not kept in the chunk cache: the kernel's page cache serves re-reads of what was just written.
        this.dropBlock(group[k]!);
        this.blocks.set(group[k]!, { kind: 'staged', ref: { dst: name, size: BLOCK, own, n1, n2 } });
      }),
    );
  }

  /**
   * Encrypt chunks in one worker batch and put them in the store. A store of local files has the workers
   * write the chunk files themselves, so the encrypted bytes never come back to this (the FUSE) thread.
   * Every name is held (`stored`) before the store is asked whether the chunk is already there, and a chunk
   * found there is checked once more after that: space reclamation may have removed it in between, and then
   * it is written again from the plaintext, which the caller still holds.
   */
  private encryptAndStore(chunks: EncryptRequest[]): Promise<Buffer>[] {
    const { store, pool, profile } = this.deps;
    const viaPut = (chunk: EncryptRequest): Promise<Buffer> =>
      pool.encryptMany([chunk], profile)[0]!.then(async ({ name, content }) => {
        this.stored.add(name.toString('hex'));
        await store.put(name, content);
        return name;
      });
    if (store.localRoot !== undefined && store.adopt) {
      const adopt = store.adopt.bind(store);
      return pool.storeMany(chunks, profile, store.localRoot).map((p, i) =>
        p.then(async ({ name, temp }) => {
          this.stored.add(name.toString('hex'));
          if (temp !== undefined || (await store.stillThere?.(name)) !== false) {
            await adopt(name, temp);
            return name;
          }
          return viaPut(chunks[i]!);
        }),
      );
    }
    return chunks.map(viaPut);
  }

  /** Start hashing the full in-memory blocks among `group` whose hash is not known, in one worker batch. */
  private hashBlocks(group: number[]): void {
    const stale = group.flatMap((b) => {
      const block = this.blocks.get(b);
      return block?.kind === 'mem' && block.hash?.version !== block.version ? [block] : [];
    });
    const hashes = this.deps.pool.hashMany(stale.map((block) => this.fullData(block)));
    stale.forEach((block, i) => this.rememberHash(block, hashes[i]!));
  }

  /** Keep a block's hash for its current version; a failed one is forgotten, so the next asks again. */
  private rememberHash(block: MemBlock, src: Promise<Buffer>): Promise<Buffer> {
    const hash = { version: block.version, src };
    block.hash = hash;
    src.catch(() => {
      if (block.hash === hash) block.hash = undefined;
    });
    return src;
  }

  /** A mem block's whole 1 MiB (grown to it: the hash and encryption of a full block see every byte). */
  private fullData(block: MemBlock): Buffer {
    this.grow(block, BLOCK);
    return block.data;
  }

  private throwStagingError(): void {
    if (this.stagingError) {
      const err = this.stagingError;
      this.stagingError = undefined;
      throw err;
    }
  }

  /** The src hash of full block b as it is now. */
  private srcOfBlock(b: number): Promise<Buffer> {
    return this.srcOf(b, BLOCK);
  }

  /** The src hash of chunk b of size `size` (chunk b starts at b * BLOCK: files of 3 MiB or more). */
  private srcOf(b: number, size: number): Promise<Buffer> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      if (size !== BLOCK) {
        this.grow(block, size);
        return this.deps.pool.hash(block.data.subarray(0, size));
      }
      if (block.hash?.version === block.version) return block.hash.src;
      return this.rememberHash(block, this.deps.pool.hash(this.fullData(block)));
    }
    if (block?.kind === 'staged' && block.ref.size === size) return Promise.resolve(block.ref.own);
    const baseInfo = this.unchangedBaseChunk(b, size);
    if (baseInfo) return Promise.resolve(baseInfo.srcHash);
    if (this.isHole(b, size)) return Promise.resolve(zeroSrc(size));
    return this.read(b * BLOCK, size).then((plain) => this.deps.pool.hash(plain));
  }

  /** Chunk b (of `size` bytes, block-aligned) reads as zeros without being stored anywhere: past the committed bytes. */
  private isHole(b: number, size: number): boolean {
    return !this.blocks.has(b) && b * BLOCK >= this.zeroFrom && b * BLOCK + size <= this.size;
  }

  /** The committed chunk b when it is block-aligned, the same size, and untouched since the commit. */
  private unchangedBaseChunk(b: number, size: number): ChunkInfo | undefined {
    const base = this.base;
    if (base.kind !== 'map' || base.size < 3 * BLOCK || this.blocks.has(b)) return undefined;
    const info = base.dataMap.chunks[b];
    if (!info || info.srcSize !== size || b * BLOCK + size > this.zeroFrom) return undefined;
    return info;
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
    await this.drainStaging();
    this.throwStagingError();
    if (!this.dirty) return false;
    const entry = await this.buildEntry();
    // The entry may be written while its chunks are synced; it is put in place only after (persist waits).
    const chunksDurable = this.deps.store.sync([...entryNames(entry).values()]);
    chunksDurable.catch(() => {}); // awaited below, after persist
    const persisted = (await persist(entry, chunksDurable)) !== false;
    await chunksDurable;
    const previous = this.base;
    const stored = this.stored;
    this.base = entry;
    this.baseNames = undefined;
    this.stored = new Set();
    this.zeroFrom = entry.size;
    for (const b of [...this.blocks.keys()]) this.dropBlock(b);
    this.dirty = false;
    this.deps.committed?.({ previous, next: entry, stored, persisted });
    return true;
  }

  private async buildEntry(): Promise<MetaEntry> {
    const size = this.size;
    if (size < MIN_ENCRYPTABLE_BYTES) return { kind: 'inline', size, data: await this.read(0, size) };
    const count = numChunks(size);
    // Small files: read the whole content (at most 3 MiB); large ones chunk along the blocks.
    const whole = size < 3 * BLOCK ? await this.read(0, size) : undefined;
    const plainOf = (i: number): Promise<Buffer> | Buffer => {
      const start = chunkStart(size, i);
      return whole ? whole.subarray(start, start + chunkSize(size, i)) : this.plainOfBlock(i, chunkSize(size, i));
    };
    // Hashes known without reading (holes, untouched and staged chunks) are taken as they are: a 1 TiB file
    // has a million chunks, and a promise for each would cost more memory than the whole DataMap.
    const srcs: Buffer[] = new Array(count);
    if (whole) (await Promise.all(this.deps.pool.hashMany([0, 1, 2].map((i) => plainOf(i) as Buffer)))).forEach((h, i) => (srcs[i] = h));
    else {
      const waits: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const known = this.knownSrc(i, chunkSize(size, i));
        if (known) srcs[i] = known;
        else waits.push(this.srcOf(i, chunkSize(size, i)).then((h) => void (srcs[i] = h)));
      }
      await Promise.all(waits);
    }
    const infos: ChunkInfo[] = new Array(count);
    const info = (i: number, dst: Buffer): ChunkInfo => ({ index: i, dstHash: dst, srcHash: srcs[i]!, srcSize: chunkSize(size, i) });
    const request = (i: number, data: Buffer): EncryptRequest => {
      const [a, b] = neighbours(i, count);
      return { data, own: srcs[i]!, n1: srcs[a]!, n2: srcs[b]! };
    };
    const todo: number[] = [];
    // Holes with the same neighbours encrypt to the same chunk: each such context is encrypted once.
    const holes = new Map<string, { name?: Buffer; first: number; chunks: number[] }>();
    for (let i = 0; i < count; i++) {
      const [a, b] = neighbours(i, count);
      const reusable = this.reusableChunk(i, chunkSize(size, i), srcs[i]!, srcs[a]!, srcs[b]!, whole !== undefined);
      if (reusable) infos[i] = info(i, reusable);
      else if (!whole && this.isHole(i, chunkSize(size, i))) {
        const own = srcs[i]!;
        // Inside a run of holes all three are the one zero-hash object: no hex for each of a million chunks.
        const key = own === srcs[a] && own === srcs[b] ? `${chunkSize(size, i)}:run` : `${chunkSize(size, i)}:${own.toString('hex')}${srcs[a]!.toString('hex')}${srcs[b]!.toString('hex')}`;
        const context = holes.get(key);
        if (context) context.chunks.push(i);
        else holes.set(key, { first: i, chunks: [i] });
      } else todo.push(i);
    }
    // The rest is encrypted in batches (one worker message each, sharing the four-way hash), a few at once.
    const contexts = [...holes.values()];
    const holeJobs = contexts.map(async (context) => {
      const i = context.first;
      context.name = await this.encryptAndStore([request(i, ZEROS.subarray(0, chunkSize(size, i)))])[0]!;
    });
    const worker = async (): Promise<void> => {
      while (todo.length > 0) {
        const batch = todo.splice(0, COMMIT_BATCH);
        const plains = await Promise.all(batch.map((i) => plainOf(i)));
        const names = await Promise.all(this.encryptAndStore(batch.map((i, k) => request(i, plains[k]!))));
        batch.forEach((i, k) => (infos[i] = info(i, names[k]!)));
      }
    };
    await Promise.all([...Array.from({ length: COMMIT_CONCURRENCY }, worker), ...holeJobs]);
    for (const context of contexts) for (const i of context.chunks) infos[i] = info(i, context.name!);
    const dataMap: DataMap = { chunks: infos };
    return { kind: 'map', size, dataMap };
  }

  /** Chunk b's src hash when it is known without reading or hashing (staged, untouched, or a hole). */
  private knownSrc(b: number, size: number): Buffer | undefined {
    const block = this.blocks.get(b);
    if (block?.kind === 'staged') return block.ref.size === size ? block.ref.own : undefined;
    if (block) return undefined;
    return this.unchangedBaseChunk(b, size)?.srcHash ?? (this.isHole(b, size) ? zeroSrc(size) : undefined);
  }

  private async plainOfBlock(b: number, size: number): Promise<Buffer> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      this.grow(block, size);
      return block.data.subarray(0, size);
    }
    return this.read(b * BLOCK, size);
  }

  /** The name of an existing chunk with exactly this plaintext and these keys, if there is one. */
  private reusableChunk(i: number, size: number, own: Buffer, n1: Buffer, n2: Buffer, small: boolean): Buffer | undefined {
    // Equal src hashes mean equal plaintext, so a chunk with the same hashes of itself and its neighbours is reusable.
    const block = small ? undefined : this.blocks.get(i);
    if (block?.kind === 'staged') {
      const r = block.ref;
      if (r.size === size && r.own.equals(own) && r.n1.equals(n1) && r.n2.equals(n2)) return r.dst;
    }
    const base = this.base;
    if (base.kind !== 'map') return undefined;
    const chunks = base.dataMap.chunks;
    const info = chunks[i];
    if (!info || info.srcSize !== size || !info.srcHash.equals(own)) return undefined;
    const [a, b] = neighbours(i, chunks.length);
    if (chunks[a]!.srcHash.equals(n1) && chunks[b]!.srcHash.equals(n2)) return info.dstHash;
    return undefined;
  }
}

/** Buffers grow in powers of two from MIN_BLOCK_CAPACITY up to a whole block. */
function capacityFor(bytes: number): number {
  let cap = MIN_BLOCK_CAPACITY;
  while (cap < bytes) cap *= 2;
  return Math.min(cap, BLOCK);
}

/** The chunk names an entry holds, once each: hex -> name. */
export function entryNames(entry: MetaEntry): Map<string, Buffer> {
  const seen = new Map<string, Buffer>();
  if (entry.kind !== 'map') return seen;
  let previous: Buffer | undefined;
  for (const c of entry.dataMap.chunks) {
    // Runs of holes share one name object: skip the hex of each repeat.
    if (c.dstHash === previous) continue;
    previous = c.dstHash;
    const hex = c.dstHash.toString('hex');
    if (!seen.has(hex)) seen.set(hex, c.dstHash);
  }
  return seen;
}
