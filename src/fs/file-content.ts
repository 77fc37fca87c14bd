/**
 * One open file's content as 1 MiB blocks over its committed entry: the block buffer of the Sequencer.
 *
 * The blocks are exactly the chunks of any file of 3 MiB or more. A block is either untouched (read from the
 * committed DataMap, or zero past `zeroFrom`: a hole), in memory (`mem`: written to since the last commit,
 * grown only as far as it was written, its bytes counted in the daemon's MemoryBudget), or `staged`: already
 * encrypted and stored under keys from its neighbours' hashes of the time. It answers reads of the current
 * content and the src hash of any chunk, from what it knows before reading anything when it can (holes,
 * untouched and staged chunks). All chunk offset arithmetic comes from core/layout.ts.
 */
import { MAX_CHUNK_SIZE } from '../core/constants.js';
import type { ChunkRef } from '../core/chunk-ref.js';
import { copyBytes } from '../core/copy-bytes.js';
import type { ChunkInfo } from '../core/data-map.js';
import { chunksCovering, chunkSize, chunkStart } from '../core/layout.js';
import { zeroSrc } from '../core/zeros.js';
import type { WorkerPool } from '../lib/pool.js';
import { type MetaEntry, entryChunkRef, storedBytesOf } from '../vault/meta-entry.js';
import type { BlockBuffers } from './block-buffers.js';
import type { ChunkCache } from './chunk-cache.js';
import type { MemoryBudget } from './memory-budget.js';

export const BLOCK = MAX_CHUNK_SIZE;
/** A block's buffer starts this small and doubles as writes reach further (small files cost little). */
const MIN_BLOCK_CAPACITY = 16 * 1024;

export type MemBlock = { kind: 'mem'; data: Buffer; version: number; hash?: { version: number; src: Promise<Buffer> } };
export type Block = MemBlock | { kind: 'staged'; ref: ChunkRef };

export class FileContent {
  /** Logical size, including uncommitted changes. */
  size: number;
  private committed: MetaEntry;
  /** Committed bytes at or past this offset read as zero (the file was truncated below them). */
  private zeroFrom: number;
  private readonly blocks = new Map<number, Block>();
  /** Indices of the `mem` blocks, least recently written first (memory pressure stages from the front). */
  private readonly memIndices = new Set<number>();

  constructor(
    entry: MetaEntry,
    private readonly pool: WorkerPool,
    private readonly cache: ChunkCache,
    private readonly budget?: MemoryBudget,
    /** Where whole-block buffers come from (recycled: block-buffers.ts); without it, new ones. */
    private readonly buffers?: BlockBuffers,
  ) {
    this.committed = entry;
    this.size = entry.size;
    this.zeroFrom = entry.size;
  }

  /** The entry as last committed (what the vault holds for this file). */
  get base(): MetaEntry {
    return this.committed;
  }

  get memBlockCount(): number {
    return this.memIndices.size;
  }

  /** The mem blocks, least recently written first. */
  memBlockIndices(): Iterable<number> {
    return this.memIndices;
  }

  block(b: number): Block | undefined {
    return this.blocks.get(b);
  }

  /** A new committed version: every change is now in it. */
  rebase(entry: MetaEntry): void {
    this.committed = entry;
    this.zeroFrom = entry.size;
    this.size = entry.size;
    this.dropAll();
  }

  dropAll(): void {
    for (const b of [...this.blocks.keys()]) this.dropBlock(b);
  }

  /**
   * Bytes of content outside holes, for st_blocks: the committed ones still in the file, plus the blocks
   * changed since (an estimate until the commit, which may find some of them all zeros).
   */
  get storedBytes(): number {
    let n = Math.min(storedBytesOf(this.committed), this.zeroFrom);
    for (const block of this.blocks.values()) n += block.kind === 'mem' ? block.data.length : block.ref.size;
    return Math.min(n, this.size);
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** Fill `out` with the bytes from `offset`; returns the part filled (shorter at the end of the file). */
  async readRange(offset: number, out: Buffer): Promise<Buffer> {
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

  /** Bytes [offset, offset + length) as a new buffer (clamped to the size). */
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    return this.readRange(offset, Buffer.alloc(end - offset));
  }

  private async readBlockInto(b: number, from: number, to: number, out: Buffer, at: number): Promise<void> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      // Past the block's capacity nothing was written: zeros.
      const start = from - b * BLOCK;
      const copied = start < block.data.length ? copyBytes(block.data, out, at, start, Math.min(to - b * BLOCK, block.data.length)) : 0;
      out.fill(0, at + copied, at + (to - from));
    } else if (block?.kind === 'staged') {
      await this.cache.copyInto(block.ref, from - b * BLOCK, to - b * BLOCK, out, at);
    } else {
      const baseTo = Math.max(from, Math.min(to, this.zeroFrom));
      if (baseTo > from) await this.readBaseInto(from, baseTo, out, at);
      // Past the committed bytes (a hole, or a file shrunk and grown again): zeros.
      out.fill(0, at + (baseTo - from), at + (to - from));
    }
  }

  /** Committed bytes, through the chunk cache. */
  private async readBaseInto(from: number, to: number, out: Buffer, at: number): Promise<void> {
    const base = this.committed;
    if (base.kind === 'inline') {
      base.data.copy(out, at, from, to);
      return;
    }
    const span = chunksCovering(base.size, from, to - from);
    if (!span) return;
    // A packed file's chunks are in its entry: decrypted together, as one batch (ChunkCache.prefetch).
    if (base.packed && span.last > span.first) this.cache.prefetch(this.committedRefs(span.first, span.last - span.first + 1));
    const jobs: Promise<void>[] = [];
    for (let i = span.first; i <= span.last; i++) {
      const start = chunkStart(base.size, i);
      const s = Math.max(from, start);
      const e = Math.min(to, start + chunkSize(base.size, i));
      jobs.push(this.cache.copyInto(entryChunkRef(base, i), s - start, e - start, out, at + (s - from)));
    }
    await Promise.all(jobs);
  }

  /**
   * The committed chunks overlapping [from, to), each with the file range it holds, when the content is the
   * committed version exactly (no block changed, same size): what a read of those ranges returns (slab-reads.ts).
   */
  committedRanges(from: number, to: number): { start: number; length: number; ref: ChunkRef }[] {
    const base = this.committed;
    if (base.kind !== 'map' || base.packed || this.blocks.size > 0 || this.size !== base.size || this.zeroFrom !== base.size) return [];
    const span = chunksCovering(base.size, from, Math.min(to, base.size) - from);
    if (!span) return [];
    const ranges: { start: number; length: number; ref: ChunkRef }[] = [];
    for (let i = span.first; i <= span.last; i++) ranges.push({ start: chunkStart(base.size, i), length: chunkSize(base.size, i), ref: entryChunkRef(base, i) });
    return ranges;
  }

  /** Refs of the committed chunks from `first` (up to `count`) that still hold content: for read-ahead. */
  committedRefs(first: number, count: number): ChunkRef[] {
    const base = this.committed;
    if (base.kind !== 'map') return [];
    const refs: ChunkRef[] = [];
    for (let i = first; i < Math.min(first + count, base.dataMap.chunks.length); i++) {
      if (chunkStart(base.size, i) < this.zeroFrom && !this.blocks.has(i)) refs.push(entryChunkRef(base, i));
    }
    return refs;
  }

  // ---- changes --------------------------------------------------------------------------------

  /** Block `b` as a writable in-memory copy of its current content, at least `need` bytes long. */
  async memBlock(b: number, need: number): Promise<MemBlock> {
    const existing = this.blocks.get(b);
    if (existing?.kind === 'mem') {
      this.grow(existing, need);
      // Most recently written last: memory pressure stages the blocks written longest ago first.
      this.memIndices.delete(b);
      this.memIndices.add(b);
      return existing;
    }
    const valid = Math.max(0, Math.min(BLOCK, this.size - b * BLOCK));
    // Past the first block a file is large: a whole block at once (growing it by doubling would only copy).
    const data = this.newBuffer(b > 0 ? BLOCK : capacityFor(Math.max(need, valid)));
    try {
      if (valid > 0) await this.readBlockInto(b, b * BLOCK, b * BLOCK + valid, data, 0);
    } catch (err) {
      this.freeBuffer(data);
      throw err;
    }
    const block: MemBlock = { kind: 'mem', data, version: 0 };
    this.blocks.set(b, block);
    this.memIndices.add(b);
    return block;
  }

  /** Write `bytes` at `offset` into the blocks it covers. */
  async write(offset: number, bytes: Buffer): Promise<void> {
    const end = offset + bytes.length;
    for (let b = Math.floor(offset / BLOCK); b * BLOCK < end; b++) {
      const from = Math.max(offset, b * BLOCK);
      const to = Math.min(end, (b + 1) * BLOCK);
      const block = await this.memBlock(b, to - b * BLOCK);
      copyBytes(bytes, block.data, from - b * BLOCK, from - offset, to - offset);
      block.version++;
    }
    if (end > this.size) this.size = end;
  }

  /** Change the size: bytes cut off are gone (they read as zeros if the file grows again). */
  async truncate(newSize: number): Promise<void> {
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
    this.size = newSize;
  }

  /** A mem block's content now lives in a stored chunk: its memory goes back to the budget. */
  setStaged(b: number, ref: ChunkRef): void {
    this.dropBlock(b);
    this.blocks.set(b, { kind: 'staged', ref });
  }

  private dropBlock(b: number): void {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') this.freeBuffer(block.data);
    this.blocks.delete(b);
    this.memIndices.delete(b);
  }

  /** A zeroed block buffer of `capacity` bytes, counted in the budget (a whole block: a recycled one). */
  private newBuffer(capacity: number): Buffer {
    const data = capacity === BLOCK && this.buffers ? this.buffers.take() : Buffer.alloc(capacity);
    this.budget?.take(data.length);
    return data;
  }

  /** A block's buffer is no longer used by this file (block-buffers.ts: nothing here touches it again). */
  private freeBuffer(data: Buffer): void {
    this.budget?.give(data.length);
    this.buffers?.give(data);
  }

  /** Make a block's buffer at least `need` bytes (the bytes past its old end are zeros, as they read). */
  private grow(block: MemBlock, need: number): void {
    if (block.data.length >= need) return;
    const data = this.newBuffer(capacityFor(Math.max(need, 2 * block.data.length)));
    copyBytes(block.data, data, 0, 0, block.data.length);
    this.freeBuffer(block.data);
    block.data = data;
  }

  /** A mem block's whole 1 MiB (grown to it: the hash and encryption of a full block see every byte). */
  fullData(block: MemBlock): Buffer {
    this.grow(block, BLOCK);
    return block.data;
  }

  /** Chunk b's plaintext of `size` bytes (block-aligned: files of 3 MiB or more). */
  async plainOfBlock(b: number, size: number): Promise<Buffer> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      this.grow(block, size);
      return block.data.subarray(0, size);
    }
    return this.read(b * BLOCK, size);
  }

  // ---- src hashes -----------------------------------------------------------------------------

  /** Start hashing the full in-memory blocks among `indices` whose hash is not known, in one worker batch. */
  hashBlocks(indices: number[]): void {
    const stale = indices.flatMap((b) => {
      const block = this.blocks.get(b);
      return block?.kind === 'mem' && block.hash?.version !== block.version ? [block] : [];
    });
    const hashes = this.pool.hashMany(stale.map((block) => this.fullData(block)));
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

  /** The src hash of chunk b of size `size` as it is now (chunk b starts at b * BLOCK). */
  srcOf(b: number, size: number): Promise<Buffer> {
    const block = this.blocks.get(b);
    if (block?.kind === 'mem') {
      if (size !== BLOCK) {
        this.grow(block, size);
        return this.pool.hash(block.data.subarray(0, size));
      }
      if (block.hash?.version === block.version) return block.hash.src;
      return this.rememberHash(block, this.pool.hash(this.fullData(block)));
    }
    const known = this.knownSrc(b, size);
    if (known) return Promise.resolve(known);
    return this.read(b * BLOCK, size).then((plain) => this.pool.hash(plain));
  }

  /** Chunk b's src hash when it is known without reading or hashing (staged, untouched, or a hole). */
  knownSrc(b: number, size: number): Buffer | undefined {
    const block = this.blocks.get(b);
    if (block?.kind === 'staged') return block.ref.size === size ? block.ref.own : undefined;
    if (block) return undefined;
    return this.unchangedBaseChunk(b, size)?.srcHash ?? (this.isHole(b, size) ? zeroSrc(size) : undefined);
  }

  /** Chunk b (of `size` bytes, block-aligned) reads as zeros without being stored anywhere: past the committed bytes. */
  isHole(b: number, size: number): boolean {
    return !this.blocks.has(b) && b * BLOCK >= this.zeroFrom && b * BLOCK + size <= this.size;
  }

  /** The committed chunk b when it is block-aligned, the same size, and untouched since the commit. */
  private unchangedBaseChunk(b: number, size: number): ChunkInfo | undefined {
    const base = this.committed;
    if (base.kind !== 'map' || base.size < 3 * BLOCK || this.blocks.has(b)) return undefined;
    const info = base.dataMap.chunks[b];
    if (!info || info.srcSize !== size || b * BLOCK + size > this.zeroFrom) return undefined;
    return info;
  }
}

/** Buffers grow in powers of two from MIN_BLOCK_CAPACITY up to a whole block. */
function capacityFor(bytes: number): number {
  let cap = MIN_BLOCK_CAPACITY;
  while (cap < bytes) cap *= 2;
  return Math.min(cap, BLOCK);
}
