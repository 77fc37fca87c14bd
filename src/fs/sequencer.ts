/**
 * The Sequencer: the content of one open file, as its committed version plus changes not yet committed.
 *
 * The file is seen as 1 MiB blocks (MAX_CHUNK_SIZE), which are exactly the chunks of any file of 3 MiB or
 * more. A block is either untouched (read from the committed DataMap, or zero past `zeroFrom`), in memory
 * (`mem`: written to since the last commit), or `staged`: already encrypted and put in the chunk store
 * under keys from its neighbours' current hashes. Staging full blocks in the background while a file is
 * being written keeps memory bounded whatever the file size (the encrypted chunks in the vault are the
 * spill area) and leaves little to do at close. Commit re-encrypts only chunks whose plaintext changed or
 * whose neighbours' hashes changed, and reuses every other chunk as it is.
 */
import { MAX_CHUNK_SIZE, MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
import type { Profile } from '../core/compression.js';
import type { ChunkInfo, DataMap } from '../core/data-map.js';
import { neighbours } from '../core/keys.js';
import { chunkSpans, chunksCovering, chunkStart } from '../core/layout.js';
import type { EncryptRequest, WorkerPool } from '../lib/pool.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { ChunkCache } from './chunk-cache.js';
import { type ChunkRef, chunkRefOf as baseRef } from '../core/chunk-ref.js';
import type { MetaEntry } from '../vault/meta-entry.js';
import { Mutex } from './mutex.js';

const BLOCK = MAX_CHUNK_SIZE;
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

type Block =
  | { kind: 'mem'; data: Buffer; version: number; hash?: { version: number; src: Promise<Buffer> } }
  | { kind: 'staged'; ref: ChunkRef };

export interface SequencerDeps {
  store: ChunkStore;
  pool: WorkerPool;
  cache: ChunkCache;
  profile: Profile;
  /** Blocks kept in memory before full ones are staged regardless of the write pattern. */
  memBudgetBlocks: number;
}

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
  private lastWriteEnd = 0;
  private lastReadEnd = -1;
  /** Where the last read-ahead window started (in which committed version). */
  private readAheadFrom: { base?: MetaEntry; chunk: number } = { chunk: -1 };
  /** When the content last changed (ms): the mtime of a file with uncommitted changes. */
  modifiedAt = Date.now();

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

  // ---- reads ----------------------------------------------------------------------------------

  /** Bytes [offset, offset + length) of the current content (clamped to the size). */
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    return this.readInto(offset, Buffer.alloc(end - offset));
  }

  /**
   * Fill `out` with the bytes from `offset` (the FUSE read buffer, so no extra copy); returns the part
   * filled, which is shorter than `out` at the end of the file.
   */
  async readInto(offset: number, out: Buffer): Promise<Buffer> {
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
    this.readAhead(offset, end);
    return out;
  }

  private async readBlockInto(b: number, from: number, to: number, out: Buffer, at: number): Promise<void> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      block.data.copy(out, at, from - b * BLOCK, to - b * BLOCK);
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
      this.throwStagingError();
      const end = offset + bytes.length;
      for (let b = Math.floor(offset / BLOCK); b * BLOCK < end; b++) {
        const block = await this.memBlock(b);
        const from = Math.max(offset, b * BLOCK);
        const to = Math.min(end, (b + 1) * BLOCK);
        bytes.copy(block.data, from - b * BLOCK, from - offset, to - offset);
        block.version++;
      }
      if (end > this.size) this.size = end;
      this.dirty = true;
      this.modifiedAt = Date.now();
      this.lastWriteEnd = end;
      this.stageFullBlocks();
      await this.backpressure();
    });
  }

  truncate(newSize: number): Promise<void> {
    return this.lock.run(async () => {
      this.throwStagingError();
      if (newSize < this.size) {
        for (const b of [...this.blocks.keys()]) {
          if (b * BLOCK >= newSize) {
            this.blocks.delete(b);
            this.memIndices.delete(b);
          }
        }
        const edge = Math.floor(newSize / BLOCK);
        if (newSize % BLOCK !== 0) {
          const block = await this.memBlock(edge);
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

  /** Block `b` as a writable in-memory copy of its current content. */
  private async memBlock(b: number): Promise<Extract<Block, { kind: 'mem' }>> {
    const existing = this.blocks.get(b);
    if (existing?.kind === 'mem') return existing;
    // A plain Buffer: the pool copies it into each job. (A SharedArrayBuffer per block would save the copy,
    // but workers keep every shared buffer they saw until they garbage-collect: native-notes/worker-memory.md.)
    const data = Buffer.alloc(BLOCK);
    const valid = Math.min(BLOCK, this.size - b * BLOCK);
    if (valid > 0) await this.readBlockInto(b, b * BLOCK, b * BLOCK + valid, data, 0);
    const block = { kind: 'mem' as const, data, version: 0 };
    this.blocks.set(b, block);
    this.memIndices.add(b);
    return block;
  }

  // ---- staging (background encryption of full blocks) ------------------------------------------

  /**
   * Encrypt full in-memory blocks whose neighbours are known, in the background, a few at a time.
   * Blocks 0 and 1 wait for the commit: their keys come from the last two chunks. Without memory pressure
   * only blocks a sequential writer has left behind (two blocks back) are staged, so rewrites of a block
   * being written do not waste encryptions.
   */
  private stageFullBlocks(): void {
    const pressure = this.memIndices.size > this.deps.memBudgetBlocks;
    const limit = pressure ? Math.floor(this.size / BLOCK) : Math.floor(this.lastWriteEnd / BLOCK) - 1;
    const ready: number[] = [];
    for (const b of this.memIndices) {
      if (b >= 2 && b < limit && (b + 1) * BLOCK <= this.size && !this.stagingInFlight.has(b)) ready.push(b);
    }
    ready.sort((x, y) => x - y);
    // Whole groups only, unless memory is short: the rest waits for the writer (or the commit).
    while (ready.length >= (pressure ? 1 : STAGE_GROUP) && this.stagingInFlight.size < STAGING_CONCURRENCY) {
      const group = ready.splice(0, STAGE_GROUP);
      const job = this.stageGroup(group)
        .catch((err: Error) => {
          this.stagingError ??= err;
        })
        .finally(() => {
          for (const b of group) this.stagingInFlight.delete(b);
          this.stageFullBlocks();
        });
      for (const b of group) this.stagingInFlight.set(b, job);
    }
  }

  /** Wait until no staging is in flight. */
  private async drainStaging(): Promise<void> {
    while (this.stagingInFlight.size > 0) await Promise.all(this.stagingInFlight.values());
  }

  /** Hold a writer while too many blocks sit in memory and staging can make room. */
  private async backpressure(): Promise<void> {
    while (this.memIndices.size > this.deps.memBudgetBlocks && this.stagingInFlight.size > 0) {
      await Promise.race(this.stagingInFlight.values());
    }
  }

  /** Encrypt full in-memory blocks and put their chunks in the store; blocks written to meanwhile stay in memory. */
  private async stageGroup(group: number[]): Promise<void> {
    const blocks = group.map((b) => this.blocks.get(b) as Extract<Block, { kind: 'mem' }>);
    const versions = blocks.map((block) => block.version);
    const unchanged = (k: number) => this.blocks.get(group[k]!) === blocks[k] && blocks[k]!.version === versions[k];
    // The group's own hashes and those of the two blocks before it (its first blocks' neighbours).
    this.hashBlocks([group[0]! - 2, group[0]! - 1, ...group].filter((b) => b >= 0));
    const keys = await Promise.all(group.map((b) => Promise.all([this.srcOfBlock(b), this.srcOfBlock(b - 1), this.srcOfBlock(b - 2)])));
    const live = group.flatMap((b, k) => (unchanged(k) && (b + 1) * BLOCK <= this.size ? [k] : []));
    const stored = this.encryptAndStore(live.map((k) => ({ data: blocks[k]!.data, own: keys[k]![0], n1: keys[k]![1], n2: keys[k]![2] })));
    await Promise.all(
      live.map(async (k, i) => {
        const name = await stored[i]!;
        if (!unchanged(k)) return;
        const [own, n1, n2] = keys[k]!;
        // Not kept in the chunk cache: the kernel's page cache serves re-reads of what was just written.
        this.blocks.set(group[k]!, { kind: 'staged', ref: { dst: name, size: BLOCK, own, n1, n2 } });
        this.memIndices.delete(group[k]!);
      }),
    );
  }

  /**
   * Encrypt chunks in one worker batch and put them in the store. A store of local files has the workers
   * write the chunk files themselves, so the encrypted bytes never come back to this (the FUSE) thread.
   */
  private encryptAndStore(chunks: EncryptRequest[]): Promise<Buffer>[] {
    const { store, pool, profile } = this.deps;
    if (store.localRoot !== undefined && store.adopt) {
      const adopt = store.adopt.bind(store);
      return pool.storeMany(chunks, profile, store.localRoot).map((p) => p.then(async ({ name, temp }) => (await adopt(name, temp), name)));
    }
    return pool.encryptMany(chunks, profile).map((p) => p.then(async ({ name, content }) => (await store.put(name, content), name)));
  }

  /** Start hashing the full in-memory blocks among `group` whose hash is not known, in one worker batch. */
  private hashBlocks(group: number[]): void {
    const stale = group.flatMap((b) => {
      const block = this.blocks.get(b);
      return block?.kind === 'mem' && block.hash?.version !== block.version ? [block] : [];
    });
    const hashes = this.deps.pool.hashMany(stale.map((block) => block.data));
    stale.forEach((block, i) => {
      block.hash = { version: block.version, src: hashes[i]! };
    });
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
      if (size !== BLOCK) return this.deps.pool.hash(block.data.subarray(0, size));
      if (block.hash?.version !== block.version) block.hash = { version: block.version, src: this.deps.pool.hash(block.data) };
      return block.hash.src;
    }
    if (block?.kind === 'staged' && block.ref.size === size) return Promise.resolve(block.ref.own);
    const baseInfo = this.unchangedBaseChunk(b, size);
    if (baseInfo) return Promise.resolve(baseInfo.srcHash);
    return this.read(b * BLOCK, size).then((plain) => this.deps.pool.hash(plain));
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
   */
  commit(persist: (entry: MetaEntry, chunksDurable: Promise<void>) => Promise<void>): Promise<boolean> {
    return this.lock.run(async () => {
      await this.drainStaging();
      this.throwStagingError();
      if (!this.dirty) return false;
      const entry = await this.buildEntry();
      // The entry may be written while its chunks are synced; it is put in place only after (persist waits).
      const chunksDurable = this.deps.store.sync();
      chunksDurable.catch(() => {}); // awaited below, after persist
      await persist(entry, chunksDurable);
      await chunksDurable;
      this.base = entry;
      this.zeroFrom = entry.size;
      this.blocks.clear();
      this.memIndices.clear();
      this.dirty = false;
      return true;
    });
  }

  private async buildEntry(): Promise<MetaEntry> {
    const size = this.size;
    if (size < MIN_ENCRYPTABLE_BYTES) return { kind: 'inline', size, data: await this.read(0, size) };
    const spans = chunkSpans(size);
    const count = spans.length;
    // Small files: read the whole content (at most 3 MiB); large ones chunk along the blocks.
    const whole = size < 3 * BLOCK ? await this.read(0, size) : undefined;
    const plainOf = (i: number): Promise<Buffer> | Buffer =>
      whole ? whole.subarray(spans[i]!.start, spans[i]!.start + spans[i]!.size) : this.plainOfBlock(i, spans[i]!.size);
    const srcs = await Promise.all(
      whole ? this.deps.pool.hashMany(spans.map((_, i) => plainOf(i) as Buffer)) : spans.map((s, i) => this.srcOf(i, s.size)),
    );
    const infos: ChunkInfo[] = new Array(count);
    const todo: number[] = [];
    for (let i = 0; i < count; i++) {
      const [a, b] = neighbours(i, count);
      const reusable = this.reusableChunk(i, spans[i]!.size, srcs[i]!, srcs[a]!, srcs[b]!, whole !== undefined);
      if (reusable) infos[i] = { index: i, dstHash: reusable, srcHash: srcs[i]!, srcSize: spans[i]!.size };
      else todo.push(i);
    }
    // The rest is encrypted in batches (one worker message each, sharing the four-way hash), a few at once.
    const worker = async (): Promise<void> => {
      while (todo.length > 0) {
        const batch = todo.splice(0, COMMIT_BATCH);
        const plains = await Promise.all(batch.map((i) => plainOf(i)));
        const names = await Promise.all(
          this.encryptAndStore(
            batch.map((i, k) => {
              const [a, b] = neighbours(i, count);
              return { data: plains[k]!, own: srcs[i]!, n1: srcs[a]!, n2: srcs[b]! };
            }),
          ),
        );
        batch.forEach((i, k) => (infos[i] = { index: i, dstHash: names[k]!, srcHash: srcs[i]!, srcSize: spans[i]!.size }));
      }
    };
    await Promise.all(Array.from({ length: COMMIT_CONCURRENCY }, worker));
    const dataMap: DataMap = { chunks: infos };
    return { kind: 'map', size, dataMap };
  }

  private async plainOfBlock(b: number, size: number): Promise<Buffer> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') return block.data.subarray(0, size);
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

