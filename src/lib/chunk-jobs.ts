/**
 * The jobs a worker thread runs: the CPU-heavy per-chunk steps of src/core, with plain data in and out
 * so they can cross a thread boundary.
 */
import { type ChunkChecks, decryptChunk, encryptChunk } from '../core/chunk.js';
import type { Profile } from '../core/compression.js';
import { sha3 } from '../core/hash.js';
import { keysFromHashes } from '../core/keys.js';

export type Job =
  | { kind: 'hash'; data: Uint8Array }
  | { kind: 'encrypt'; data: Uint8Array; own: Uint8Array; n1: Uint8Array; n2: Uint8Array; profile: Profile }
  | { kind: 'decrypt'; data: Uint8Array; own: Uint8Array; n1: Uint8Array; n2: Uint8Array; dst: Uint8Array; size: number; checks?: ChunkChecks };

export type JobResult = { hash: Buffer } | { name: Buffer; content: Buffer } | { plain: Buffer };

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export function runJob(job: Job): JobResult {
  switch (job.kind) {
    case 'hash':
      return { hash: sha3(job.data) };
    case 'encrypt': {
      const content = encryptChunk(job.data, keysFromHashes(job.own, job.n1, job.n2), job.profile);
      return { name: sha3(content), content };
    }
    case 'decrypt':
      return { plain: decryptChunk(asBuffer(job.data), keysFromHashes(job.own, job.n1, job.n2), job.dst, job.size, job.checks) };
  }
}
