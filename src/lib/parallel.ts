/**
 * parallelEncrypt / parallelDecrypt, as in the reference's parallel API: the chunk crypto runs on worker
 * threads. The result is identical to encrypt() / decrypt().
 */
import type { Profile } from '../core/compression.js';
import type { DataMap } from '../core/data-map.js';
import { TooSmall } from '../core/errors.js';
import { MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
import { chunkSpans } from '../core/layout.js';
import { type ChunkCrypto, windowFor } from './crypto.js';
import { decrypt } from './decrypt.js';
import { DEFAULT_PROFILE, storeDataMap } from './encrypt.js';
import { type ChunkSink, EncryptPipeline } from './pipeline.js';
import { WorkerPool, sharedPool } from './pool.js';
import type { ChunkSource } from './source.js';

export interface PoolOptions {
  /** Run on a pool of this many threads, started for the call and closed after it. */
  threads?: number;
  /** Run on this pool (or inlineCrypto); wins over `threads`. Default: the process-wide shared pool. */
  pool?: ChunkCrypto;
}

/** Run `work` on the pool the options ask for, closing it afterwards when it was started for this call. */
export async function withPool<T>(options: PoolOptions, work: (pool: ChunkCrypto) => Promise<T>): Promise<T> {
  if (options.pool) return work(options.pool);
  if (options.threads === undefined) return work(sharedPool());
  const pool = new WorkerPool(options.threads);
  try {
    return await work(pool);
  } finally {
    await pool.close();
  }
}

/** Self-encrypt `bytes` into `store` on worker threads; returns the DataMap (shrunk as encrypt() shrinks it). */
export async function parallelEncrypt(bytes: Uint8Array, store: ChunkSink, options: PoolOptions & { profile?: Profile } = {}): Promise<DataMap> {
  if (bytes.length < MIN_ENCRYPTABLE_BYTES) throw new TooSmall(bytes.length);
  const profile = options.profile ?? DEFAULT_PROFILE;
  return withPool(options, async (pool) => {
    const pipeline = new EncryptPipeline(store, profile, pool, windowFor(pool));
    try {
      for (const span of chunkSpans(bytes.length)) await pipeline.add(bytes.subarray(span.start, span.start + span.size));
      return await storeDataMap(await pipeline.finish(), store, profile);
    } catch (err) {
      await pipeline.abort();
      throw err;
    }
  });
}

/** Decrypt a whole file on worker threads. */
export async function parallelDecrypt(dataMap: DataMap, store: ChunkSource, options: PoolOptions = {}): Promise<Buffer> {
  return withPool(options, (pool) => decrypt(dataMap, store, { pool, ahead: windowFor(pool) }));
}
