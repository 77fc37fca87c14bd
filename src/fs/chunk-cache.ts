/**
 * Decrypted chunks, by chunk name, in an LRU bounded in bytes. A miss fetches the stored bytes and
 * decrypts them in the worker pool; concurrent misses for the same chunk share one fetch.
 * A chunk name determines its plaintext (the name is the hash of bytes only its keys decrypt), so the
 * cache is shared by every file of the vault.
 */
import { LRUCache } from 'lru-cache';
import type { WorkerPool } from '../lib/pool.js';
import type { ChunkStore } from '../store/chunk-store.js';

/** What is needed to decrypt one chunk: its name, size, and the src hashes of itself and its neighbours. */
export interface ChunkRef {
  dst: Buffer;
  size: number;
  own: Buffer;
  n1: Buffer;
  n2: Buffer;
}

export class ChunkCache {
  private readonly lru: LRUCache<string, Buffer>;
  private readonly inFlight = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly store: ChunkStore,
    private readonly pool: WorkerPool,
    maxBytes: number,
  ) {
    this.lru = new LRUCache<string, Buffer>({ maxSize: Math.max(maxBytes, 1), sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** The plaintext of a chunk. */
  get(ref: ChunkRef): Promise<Buffer> {
    const key = ref.dst.toString('hex');
    const hit = this.lru.get(key);
    if (hit) return Promise.resolve(hit);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.load(ref).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** Start loading a chunk without waiting (read-ahead); errors surface on the real read. */
  prefetch(ref: ChunkRef): void {
    const key = ref.dst.toString('hex');
    if (this.lru.has(key) || this.inFlight.has(key)) return;
    this.get(ref).catch(() => {});
  }

  private async load(ref: ChunkRef): Promise<Buffer> {
    const stored = await this.store.get(ref.dst);
    // The plaintext's hash is checked, which rejects damaged or swapped chunks and wrong keys alike;
    // the store does not re-hash the stored bytes (one SHA3 pass per byte instead of two).
    const plain = await this.pool.decrypt(stored, ref.own, ref.n1, ref.n2, ref.dst, ref.size, 'src');
    this.lru.set(ref.dst.toString('hex'), plain);
    return plain;
  }
}
