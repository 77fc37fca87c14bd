/**
 * The per-chunk crypto the library's pipelines call: a WorkerPool runs it on worker threads, `inlineCrypto`
 * runs the very same jobs on the calling thread (for small inputs and callers without a pool).
 */
import type { Profile } from '../core/compression.js';
import { runJob } from './chunk-jobs.js';
import type { WorkerPool } from './pool.js';

export type ChunkCrypto = Pick<WorkerPool, 'hash' | 'encrypt' | 'decrypt'>;

export const inlineCrypto: ChunkCrypto = {
  async hash(data: Uint8Array): Promise<Buffer> {
    return (runJob({ kind: 'hash', data }) as { hash: Buffer }).hash;
  },
  async encrypt(data: Uint8Array, own: Uint8Array, n1: Uint8Array, n2: Uint8Array, profile: Profile) {
    return runJob({ kind: 'encrypt', data, own, n1, n2, profile }) as { name: Buffer; content: Buffer };
  },
  async decrypt(stored: Uint8Array, own: Uint8Array, n1: Uint8Array, n2: Uint8Array, dst: Uint8Array, size: number) {
    return (runJob({ kind: 'decrypt', data: stored, own, n1, n2, dst, size }) as { plain: Buffer }).plain;
  },
};

/** How many chunks a streaming pipeline keeps in flight: enough to keep every worker busy, few enough to bound memory. */
export function windowFor(pool: ChunkCrypto): number {
  const threads = (pool as Partial<WorkerPool>).threads;
  return typeof threads === 'number' ? 2 * threads + 2 : 2;
}
