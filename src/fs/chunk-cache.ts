/**
 * Decrypted chunks, by chunk name, in an LRU bounded in bytes. A miss fetches the stored bytes and
 * decrypts them in the worker pool; concurrent misses for the same chunk share one fetch.
 * A chunk name determines its plaintext (the name is the hash of bytes only its keys decrypt), so the
 * cache is shared by every file of the vault.
 * Chunks of SLOT_MIN bytes or more are read into a slot of the cache's slab and decrypted there, and stay
 * there while cached (lib/slab.ts): no buffer is allocated per chunk read. Smaller ones, and any read when
 * every slot is busy, take fresh buffers.
 */
import { LRUCache } from 'lru-cache';
import type { WorkerPool } from '../lib/pool.js';
import { type Job, runJobs } from '../lib/chunk-jobs.js';
import type { ChunkStore, GetOptions, ReadAhead } from '../store/chunk-store.js';
import type { ChunkRef } from '../core/chunk-ref.js';
import { Slab, SLOT_SIZE } from '../lib/slab.js';
import { copyBytes } from '../core/copy-bytes.js';
import { ChunkHashMismatch } from '../core/errors.js';
import { keysFromHashes } from '../core/keys.js';
import { PieceMismatch, openPieces, pieceSpan } from '../core/pieces.js';

export type { ChunkRef };


/** Stored chunks up to this size that the caller already holds are decrypted on this thread (decryptMany). */
const DECRYPT_HERE_MAX = 16 * 1024;
/**
 * A local store's read-ahead: up to 64 chunks, in groups of four (one four-way SHA3 pass in one worker), each
 * decrypted as soon as its own four reads are in. Groups of 16 (8 per worker) waited for their slowest read
 * and kept the workers idle two thirds of the time: 1 GiB read cold at 648-688 MB/s with 32/16, 772-830 with
 * 64/4, for the same CPU (benchmarking.md, sixteenth session).
 */
const LOCAL_READ_AHEAD: ReadAhead = { chunks: 64, group: 4 };
/**
 * A window holds at most this share of the cache: chunks decrypted ahead wait there to be read, and several
 * slow readers at once (cp to a slower disk) must not push each other's next chunks out before they are read.
 */
const WINDOW_SHARE_OF_CACHE = 1 / 3;
/** Chunks this large go through slab slots (a slot holds any chunk: smaller ones would waste most of it). */
const SLOT_MIN = 256 * 1024;
/** Slots beyond those the cache can hold, for chunks being read (a read-ahead window, and demand reads). */
const SLOTS_IN_FLIGHT = 48;
/**
 * Reads of a chunk up to this size that find it neither cached nor loading read only its covering pieces when
 * it has piece hashes (a random reader's 4 KiB); a larger read loads the chunk whole (a sequential reader's
 * 128 KiB requests: the rest of the chunk follows).
 */
const PIECE_READ_MAX = 64 * 1024;

/** A cached plaintext, and the slab slot it lives in (none: a buffer of its own). */
interface Entry {
  plain: Buffer;
  slot?: number;
}

/** Chunks whose stored bytes the caller holds, decrypted on this thread as one batch (their hashes share the four-way SHA3). */
function decryptHere(refs: ChunkRef[]): Promise<Buffer>[] {
  const results = runJobs(refs.map((ref): Job => ({ kind: 'decrypt', data: ref.stored!, own: ref.own, n1: ref.n1, n2: ref.n2, dst: ref.dst, size: ref.size, checks: 'src' })));
  return results.map((r) => (r instanceof Error ? Promise.reject(r) : Promise.resolve((r as { plain: Buffer }).plain)));
}

export class ChunkCache {
  private readonly lru: LRUCache<string, Entry>;
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private readonly slab: Slab;
  private readonly slabId: number;
  /** How far sequential readers read ahead (the store's choice: ChunkStore.readAhead). */
  readonly readAhead: ReadAhead;

  constructor(
    private readonly store: ChunkStore,
    private readonly pool: WorkerPool,
    maxBytes: number,
  ) {
    const wanted = store.readAhead ?? LOCAL_READ_AHEAD;
    const fits = Math.floor((maxBytes / SLOT_SIZE) * WINDOW_SHARE_OF_CACHE);
    this.readAhead = { chunks: Math.max(wanted.group, Math.min(wanted.chunks, fits)), group: wanted.group };
    this.lru = new LRUCache<string, Entry>({
      maxSize: Math.max(maxBytes, 1),
      // A slot is taken whole, whatever the plaintext's length: the LRU's bound is then also the slots'.
      sizeCalculation: (e) => (e.slot === undefined ? Math.max(1, e.plain.length) : SLOT_SIZE),
      dispose: (e) => {
        if (e.slot === undefined) return;
        this.onSlotDropped?.(e.slot); // nothing copies from it once this returns (slab-reads.ts)
        this.slab.release(e.slot);
      },
    });
    this.slab = new Slab(Math.ceil(maxBytes / SLOT_SIZE) + Math.max(SLOTS_IN_FLIGHT, 2 * this.readAhead.chunks));
    this.slabId = pool.attachSlab(this.slab.buffer, SLOT_SIZE, undefined, this.slab.base);
  }

  /** Told of a cached plaintext's slot before the cache gives it up (it may then be reused at any time). */
  onSlotDropped?: (slot: number) => void;

  /** The slab cached plaintexts in slots live in, as bytes (slab-reads.ts hands it to the FUSE binding). */
  get slabBytes(): Buffer {
    return this.slab.slots;
  }

  /** Where a cached chunk's plaintext is in the slab, if it is cached in a slot (without touching its recency). */
  slabPlace(ref: ChunkRef): { slot: number; at: number; length: number } | undefined {
    const hit = this.lru.peek(ref.dst.toString('hex'));
    if (hit?.slot === undefined) return undefined;
    return { slot: hit.slot, at: hit.plain.byteOffset, length: hit.plain.length };
  }

  /** The plaintext of a chunk. */
  get(ref: ChunkRef): Promise<Buffer> {
    return this.plainOf(ref, ref.dst.toString('hex'));
  }

  /** get, with the chunk's name in hex (the cache's key) already worked out. */
  private plainOf(ref: ChunkRef, key: string): Promise<Buffer> {
    const hit = this.lru.get(key);
    if (hit) return Promise.resolve(hit.plain);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.loadMany([ref])[0]!;
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /**
   * Plaintext bytes [from, to) of a chunk, copied into `out` at `at` (a cached plaintext may live in a slab
   * slot, valid only until the next macrotask: it is copied here, never handed out).
   */
  async copyInto(ref: ChunkRef, from: number, to: number, out: Buffer, at: number): Promise<void> {
    const key = ref.dst.toString('hex');
    if (ref.pieces && this.store.getRange && to - from <= PIECE_READ_MAX && !this.lru.has(key) && !this.inFlight.has(key)) {
      (await this.readPieces(ref, key, from, to)).copy(out, at);
      return;
    }
    const plain = await this.plainOf(ref, key);
    copyBytes(plain, out, at, from, to);
  }

  /**
   * Plaintext [from, to) of a chunk read from its covering pieces only, each checked against its hash in the
   * entry (core/pieces.ts): a small read of a 1 MiB chunk reads 128-256 KiB and decrypts a few blocks. Not
   * cached: a random reader would only push out what is worth keeping.
   */
  private async readPieces(ref: ChunkRef, hex: string, from: number, to: number): Promise<Buffer> {
    const pieces = ref.pieces!;
    const { start, end } = pieceSpan(pieces, ref.size, from, to);
    const bytes = await this.store.getRange!(ref.dst, start, end);
    if (bytes.length !== end - start) throw new ChunkHashMismatch(hex, 'piece', `it holds fewer bytes than its entry says (${start + bytes.length} of at least ${end})`);
    try {
      return openPieces(bytes, start, pieces, ref, keysFromHashes(ref.own, ref.n1, ref.n2), from, to);
    } catch (err) {
      if (err instanceof PieceMismatch) throw new ChunkHashMismatch(hex, 'piece', err.message);
      throw err;
    }
  }

  /**
   * Start loading chunks ahead of a sequential reader, without waiting; errors surface on the real read.
   * The chunks not cached or loading are fetched in groups of `readAhead.group`, each decrypted in one worker
   * batch as soon as its own fetches are in, so their hashes share the four-way SHA3. Nothing starts until at
   * least `atLeast` of them are missing (or all of `refs`, near the end of a file): a trickle of single chunks
   * would hash one at a time.
   */
  prefetch(refs: ChunkRef[], atLeast = 1, { here = false }: { here?: boolean } = {}): void {
    const todo = refs.filter((r) => {
      const key = r.dst.toString('hex');
      return !this.lru.has(key) && !this.inFlight.has(key);
    });
    if (todo.length === 0 || todo.length < Math.min(atLeast, refs.length)) return;
    for (let at = 0; at < todo.length; at += this.readAhead.group) {
      const group = todo.slice(at, at + this.readAhead.group);
      this.loadMany(group, !here).forEach((pending, i) => {
        pending.catch(() => {});
        this.inFlight.set(group[i]!.dst.toString('hex'), pending);
      });
    }
  }

  /** Fetch, verify and decrypt chunks as batches in the worker pool; each promise settles on its own. */
  private loadMany(refs: ChunkRef[], readAhead = false): Promise<Buffer>[] {
    return this.decryptMany(refs, readAhead).map((decrypted, i) => {
      const key = refs[i]!.dst.toString('hex');
      return decrypted
        .then((entry) => {
          this.lru.set(key, entry);
          // A chunk larger than the whole cache is not kept: its slot is free again after this macrotask.
          if (entry.slot !== undefined && !this.lru.has(key)) this.slab.release(entry.slot);
          return entry.plain;
        })
        .finally(() => this.inFlight.delete(key));
    });
  }

  /**
   * Only the plaintext's hash is checked, which rejects damaged or swapped chunks and wrong keys alike
   * (one SHA3 pass per byte instead of two); a chunk with keyed piece tags has those checked instead, a sixth
   * of that cost (core/pieces.ts checkAllPieces). The store is read here, on the FUSE thread's event loop (the
   * workers are the busy side), into slab slots the workers decrypt in place, or into fresh buffers moved
   * to the workers.
   */
  private decryptMany(refs: ChunkRef[], readAhead: boolean): Promise<Entry>[] {
    // A small file's packed chunks are decrypted here: a few tens of microseconds each, less than the round
    // trip to a worker thread (two thread switches) that was most of a small file's cold read.
    if (refs.every((r) => r.stored && r.stored.length <= DECRYPT_HERE_MAX)) return decryptHere(refs).map((p) => p.then((plain) => ({ plain })));
    const options: GetOptions | undefined = readAhead ? { readAhead } : undefined;
    const slotted = Promise.all(refs.map((r) => (r.stored || r.size < SLOT_MIN ? undefined : this.takeSlot())));
    const fetched = slotted.then((slots) =>
      Promise.allSettled(refs.map((r, i) => (slots[i] === undefined ? (r.stored ?? this.store.get(r.dst, options)) : this.readIntoSlot(r, slots[i]!, options)))),
    );
    const decrypted = Promise.all([slotted, fetched]).then(([slots, results]) => {
      const ok = (i: number) => results[i]!.status === 'fulfilled';
      // Slots whose read failed are given back; the others are decrypted where they are.
      slots.forEach((slot, i) => slot !== undefined && !ok(i) && this.slab.release(slot));
      const inSlab = refs.flatMap((ref, i) => (slots[i] !== undefined && ok(i) ? [{ ref, i, slot: slots[i]!, length: (results[i] as PromiseFulfilledResult<number>).value }] : []));
      const loose = refs.flatMap((ref, i) => (slots[i] === undefined && ok(i) ? [{ ...ref, stored: (results[i] as PromiseFulfilledResult<Buffer>).value, i }] : []));
      const byIndex = new Map<number, Promise<Entry>>();
      this.pool
        .decryptInSlab(inSlab.map(({ ref, slot, length }) => ({ slab: this.slabId, at: this.slab.offsetOf(slot), length, dst: ref.dst, size: ref.size, own: ref.own, n1: ref.n1, n2: ref.n2, ...tagsOf(ref) })))
        .forEach((p, k) => {
          const { i, slot } = inSlab[k]!;
          byIndex.set(
            i,
            p.then(
              ({ plainAt, plainLength }) => ({ plain: this.slab.view(plainAt, plainLength), slot }),
              (err: Error) => {
                this.slab.release(slot);
                throw err;
              },
            ),
          );
        });
      this.pool.decryptMany(loose, 'src').forEach((p, k) => byIndex.set(loose[k]!.i, p.then((plain) => ({ plain }))));
      return (i: number): Promise<Entry> => byIndex.get(i) ?? Promise.reject((results[i] as PromiseRejectedResult).reason);
    });
    return refs.map((_, i) => decrypted.then((entryOf) => entryOf(i)));
  }

  /** A free slot, once one is: the least recently used cached chunk in a slot gives its slot up if need be. */
  private async takeSlot(): Promise<number | undefined> {
    for (;;) {
      const slot = this.slab.take();
      if (slot !== undefined) return slot;
      if (!this.slab.cooling && !this.evictSlotted()) return undefined; // every slot is being read: a buffer of its own
      await this.slab.settled();
    }
  }

  /** Drop the least recently used cached chunk that holds a slot; false when none does. */
  private evictSlotted(): boolean {
    for (const key of this.lru.rkeys()) {
      if (this.lru.peek(key)?.slot !== undefined) return this.lru.delete(key);
    }
    return false;
  }

  /** The stored chunk read into its slot: its length. */
  private async readIntoSlot(ref: ChunkRef, slot: number, options: GetOptions | undefined): Promise<number> {
    const target = this.slab.view(this.slab.offsetOf(slot));
    if (this.store.getInto) return this.store.getInto(ref.dst, target, options);
    const bytes = await this.store.get(ref.dst, options);
    if (bytes.length > target.length) throw new Error(`chunk ${ref.dst.toString('hex')} holds ${bytes.length} bytes, more than a chunk can`);
    return bytes.copy(target);
  }
}

/** A chunk's keyed piece tags, for a worker to check its stored bytes by (none for SHA-256 piece hashes). */
function tagsOf(ref: ChunkRef): { tags?: { plainAt: number; hashes: Uint8Array; key: Uint8Array } } {
  const p = ref.pieces;
  return p?.key ? { tags: { plainAt: p.plainAt, hashes: p.hashes, key: p.key } } : {};
}
