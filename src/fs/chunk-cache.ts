/**
 * Decrypted chunks, by chunk name, in an LRU bounded in bytes. A miss fetches the stored bytes and
 * decrypts them in the worker pool; concurrent misses for the same chunk share one fetch.
 * A chunk name determines its plaintext (the name is the hash of bytes only its keys decrypt), so the
 * cache is shared by every file of the vault.
 */
import { LRUCache } from 'lru-cache';
import type { WorkerPool } from '../lib/pool.js';
import { runJob } from '../lib/chunk-jobs.js';
import type { ChunkStore, ReadAhead } from '../store/chunk-store.js';
import type { ChunkRef } from '../core/chunk-ref.js';

export type { ChunkRef };


/** Stored chunks up to this size that the caller already holds are decrypted on this thread (decryptMany). */
const DECRYPT_HERE_MAX = 16 * 1024;
/** A local store's read-ahead: 16 chunks, decrypted in batches of 8 (their SHA3 passes share the four-way hash). */
const LOCAL_READ_AHEAD: ReadAhead = { chunks: 16, group: 8 };

function decryptHere(ref: ChunkRef): Promise<Buffer> {
  try {
    const job = { kind: 'decrypt' as const, data: ref.stored!, own: ref.own, n1: ref.n1, n2: ref.n2, dst: ref.dst, size: ref.size, checks: 'src' as const };
    return Promise.resolve((runJob(job) as { plain: Buffer }).plain);
  } catch (err) {
    return Promise.reject(err);
  }
}

export class ChunkCache {
  private readonly lru: LRUCache<string, Buffer>;
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  /** How far sequential readers read ahead (the store's choice: ChunkStore.readAhead). */
  readonly readAhead: ReadAhead;

  constructor(
    private readonly store: ChunkStore,
    private readonly pool: WorkerPool,
    maxBytes: number,
  ) {
    this.readAhead = store.readAhead ?? LOCAL_READ_AHEAD;
    this.lru = new LRUCache<string, Buffer>({ maxSize: Math.max(maxBytes, 1), sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** The plaintext of a chunk. */
  get(ref: ChunkRef): Promise<Buffer> {
    const key = ref.dst.toString('hex');
    const hit = this.lru.get(key);
    if (hit) return Promise.resolve(hit);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.loadMany([ref])[0]!;
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /**
   * Start loading chunks ahead of a sequential reader, without waiting; errors surface on the real read.
   * The chunks not cached or loading are fetched together and decrypted as batches, a few per worker, so
   * their hashes share the four-way SHA3. Nothing starts until at least `atLeast` of them are missing
   * (or all of `refs`, near the end of a file): a trickle of single chunks would hash one at a time.
   * Each group of `readAhead.group` is decrypted as soon as its own fetches are in.
   */
  prefetch(refs: ChunkRef[], atLeast = 1): void {
    const todo = refs.filter((r) => {
      const key = r.dst.toString('hex');
      return !this.lru.has(key) && !this.inFlight.has(key);
    });
    if (todo.length === 0 || todo.length < Math.min(atLeast, refs.length)) return;
    for (let at = 0; at < todo.length; at += this.readAhead.group) {
      const group = todo.slice(at, at + this.readAhead.group);
      this.loadMany(group, true).forEach((pending, i) => {
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
        .then((plain) => {
          this.lru.set(key, plain);
          return plain;
        })
        .finally(() => this.inFlight.delete(key));
    });
  }

  /**
   * Only the plaintext's hash is checked, which rejects damaged or swapped chunks and wrong keys alike
   * (one SHA3 pass per byte instead of two). The store is read here, on the FUSE thread's event loop (the
   * workers are the busy side); the bytes read are moved to the workers, not copied.
   */
  private decryptMany(refs: ChunkRef[], readAhead: boolean): Promise<Buffer>[] {
    // A small file's packed chunks are decrypted here: a few tens of microseconds each, less than the round
    // trip to a worker thread (two thread switches) that was most of a small file's cold read.
    if (refs.every((r) => r.stored && r.stored.length <= DECRYPT_HERE_MAX)) return refs.map((r) => decryptHere(r));
    const fetched = Promise.allSettled(refs.map((r) => r.stored ?? this.store.get(r.dst, readAhead ? { readAhead } : undefined)));
    const decrypted = fetched.then((results) => {
      const ready = refs.flatMap((ref, i) => (results[i]!.status === 'fulfilled' ? [{ ...ref, stored: results[i]!.value as Buffer, i }] : []));
      const plains = this.pool.decryptMany(ready, 'src');
      const byIndex = new Map(ready.map((r, k) => [r.i, plains[k]!]));
      return (i: number): Promise<Buffer> => byIndex.get(i) ?? Promise.reject((results[i] as PromiseRejectedResult).reason);
    });
    return refs.map((_, i) => decrypted.then((plainOf) => plainOf(i)));
  }
}
