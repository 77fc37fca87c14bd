/**
 * The jobs a worker thread runs: the CPU-heavy per-chunk steps of src/core, with plain data in and out
 * so they can cross a thread boundary. Jobs run in batches: every SHA3-256 pass the batch needs (src hashes,
 * names of encrypted chunks, checks of stored and decrypted bytes) goes through one sha3Many call, which
 * hashes four inputs in the time of one or two.
 */
import { type ChunkChecks, type EncryptedBytes, checkPlain, encryptChunkBytes, encryptChunks, openChunk, openChunkInPlace } from '../core/chunk.js';
import type { Profile } from '../core/compression.js';
import { ChunkHashMismatch } from '../core/errors.js';
import { keysFromHashes } from '../core/keys.js';
import { PieceMismatch, checkAllPieces, hashPieces, worthPieces } from '../core/pieces.js';
import { sha3Many } from '../core/sha3-many.js';
import { writeChunkTempSync } from '../store/disk-store.js';

/** A job's input: bytes, or where they are in a slab this thread was given (useSlab): nothing copied. */
export type JobBytes = Uint8Array | { slab: number; at: number; length: number };

export type Job =
  | { kind: 'hash'; data: JobBytes }
  | {
      kind: 'encrypt';
      data: JobBytes;
      own: Uint8Array;
      n1: Uint8Array;
      n2: Uint8Array;
      profile: Profile;
      /** Write the chunk into this local store (ChunkStore.localRoot) instead of returning its bytes. */
      storeRoot?: string;
      /** With storeRoot: return a newly written chunk's bytes too (a store that uploads them: ChunkStore.wantsContent). */
      keepContent?: boolean;
      /**
       * Return the piece tags of a chunk stored raw (core/pieces.ts): the mount keeps them in its entry. With
       * `key` (the file's piece key) keyed tags, without it SHA-256 (a file whose entry has those).
       */
      pieces?: PieceOptions;
    }
  | { kind: 'decrypt'; data: Uint8Array; own: Uint8Array; n1: Uint8Array; n2: Uint8Array; dst: Uint8Array; size: number; checks?: ChunkChecks }
  /**
   * Decrypt a chunk where it is, in slab `slab` this thread was given (useSlab): the stored bytes are at `at`
   * (`length` of them) in a slot of the slab's slot size; the plaintext is left in the same slot and only its
   * place comes back. The plaintext's hash is checked (the mount's rule, as 'src' checks).
   */
  | {
      kind: 'decryptSlot';
      slab: number;
      at: number;
      length: number;
      own: Uint8Array;
      n1: Uint8Array;
      n2: Uint8Array;
      dst: Uint8Array;
      size: number;
      /** The chunk's keyed piece tags: checked instead of the plaintext's hash (core/pieces.ts checkAllPieces). */
      tags?: { plainAt: number; hashes: Uint8Array; key: Uint8Array };
    };

/** An encrypt job's piece tags: wanted, and keyed by `key` when given. */
export interface PieceOptions {
  key?: Uint8Array;
}

/** With an encrypt job's `pieces`, for a chunk stored raw: where its plaintext starts, and its piece hashes. */
export interface PieceFields {
  plainAt?: number;
  pieceHashes?: Buffer;
}

export type JobResult =
  | { hash: Buffer }
  | ({ name: Buffer; content: Buffer } & PieceFields)
  /** An encrypted chunk written by the worker: its temp file, or none when the store had it already (and its bytes, if asked). */
  | ({ name: Buffer; temp?: string; content?: Buffer } & PieceFields)
  | { plain: Buffer }
  /** Where a decryptSlot job left the plaintext in the slab (absolute byte offset). */
  | { plainAt: number; plainLength: number };

/** What a job still needs after its non-hash work: the inputs to hash, and how to finish with their digests. */
interface Pending {
  toHash: Uint8Array[];
  finish(digests: Buffer[]): JobResult;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** The shared slabs of decryptSlot jobs in this thread, by id, with their slot sizes. */
const slabs = new Map<number, { bytes: Buffer; slotSize: number; base: number }>();
/** Where a compressed chunk's stream is copied to be decoded into its slot (one per thread). */
let scratch = Buffer.alloc(0);

/** A slab later decryptSlot jobs refer to by `id` (sent once to each worker: slab.ts). */
export function useSlab(id: number, buffer: SharedArrayBuffer, slotSize: number, base = 0): void {
  slabs.set(id, { bytes: Buffer.from(buffer), slotSize, base });
  if (scratch.length < slotSize) scratch = Buffer.allocUnsafeSlow(slotSize);
}

/** A job's input bytes: a view of the slab they are in, or the bytes themselves. */
function bytesOf(data: JobBytes): Uint8Array {
  if (data instanceof Uint8Array) return data;
  const slab = slabs.get(data.slab);
  if (!slab || data.at < 0 || data.at + data.length > slab.bytes.length) throw new Error('job bytes: no such slab, or outside it');
  return slab.bytes.subarray(data.at, data.at + data.length);
}

/**
 * The encrypt jobs' stored bytes, encrypted together per profile (encryptChunks: four AES streams at once; a
 * worker's batch may hold jobs of several callers); an entry per job, undefined where it is not an encrypt job
 * or where its group failed (the job then runs alone in start() and fails alone).
 */
function encryptAll(jobs: Job[]): (EncryptedBytes | undefined)[] {
  const out: (EncryptedBytes | undefined)[] = new Array(jobs.length);
  const byProfile = new Map<Profile, number[]>();
  jobs.forEach((job, i) => {
    if (job.kind === 'encrypt') byProfile.set(job.profile, [...(byProfile.get(job.profile) ?? []), i]);
  });
  for (const [profile, at] of byProfile) {
    if (at.length < 2) continue;
    const group = at.map((i) => jobs[i] as Extract<Job, { kind: 'encrypt' }>);
    try {
      const contents = encryptChunks(
        group.map((job) => bytesOf(job.data)),
        group.map((job) => keysFromHashes(job.own, job.n1, job.n2)),
        profile,
      );
      at.forEach((i, k) => (out[i] = contents[k]));
    } catch {
      // Left undefined: each job of the group runs alone.
    }
  }
  return out;
}

/** The piece fields of an encrypted chunk, when its job asked for them and it was stored raw and large enough. */
function pieceFields(job: Extract<Job, { kind: 'encrypt' }>, enc: EncryptedBytes, name: Buffer): PieceFields {
  if (!job.pieces || enc.plainAt === undefined || !worthPieces(enc.content.length)) return {};
  const key = job.pieces.key && asBuffer(job.pieces.key);
  return { plainAt: enc.plainAt, pieceHashes: hashPieces(enc.content, enc.plainAt, key, { ...job, dst: name, size: bytesOf(job.data).length }).hashes };
}

function start(job: Job, encrypted: EncryptedBytes | undefined): Pending {
  switch (job.kind) {
    case 'hash':
      return { toHash: [bytesOf(job.data)], finish: ([hash]) => ({ hash: hash! }) };
    case 'encrypt': {
      const enc = encrypted ?? encryptChunkBytes(bytesOf(job.data), keysFromHashes(job.own, job.n1, job.n2), job.profile);
      const { content } = enc;
      const root = job.storeRoot;
      if (root === undefined) return { toHash: [content], finish: ([name]) => ({ name: name!, content, ...pieceFields(job, enc, name!) }) };
      return {
        toHash: [content],
        finish: ([name]) => {
          const pieces = pieceFields(job, enc, name!);
          const temp = writeChunkTempSync(root, name!, content);
          if (temp === undefined) return { name: name!, ...pieces };
          return job.keepContent ? { name: name!, temp, content, ...pieces } : { name: name!, temp, ...pieces };
        },
      };
    }
    case 'decryptSlot': {
      const slab = slabs.get(job.slab);
      if (!slab || job.at < slab.base || (job.at - slab.base) % slab.slotSize !== 0 || job.at + slab.slotSize > slab.bytes.length || job.length > slab.slotSize || job.size > slab.slotSize) {
        throw new Error('decryptSlot: no such slab, or a slot outside it');
      }
      const keys = keysFromHashes(job.own, job.n1, job.n2);
      const slot = slab.bytes.subarray(job.at, job.at + slab.slotSize);
      const { tags } = job;
      const hex = () => Buffer.from(job.dst).toString('hex');
      // With keyed tags every stored byte is checked before it is decrypted, and no SHA3 pass is needed.
      try {
        if (tags) checkAllPieces(slot.subarray(0, job.length), { plainAt: tags.plainAt, hashes: asBuffer(tags.hashes), key: asBuffer(tags.key) }, job);
      } catch (err) {
        throw err instanceof PieceMismatch ? new ChunkHashMismatch(hex(), 'piece', err.message) : err;
      }
      const plain = openChunkInPlace(slot, job.length, keys, job.dst, job.size, scratch);
      const place = { plainAt: plain.byteOffset, plainLength: plain.length };
      if (!tags) return { toHash: [plain], finish: ([src]) => (checkPlain(plain, src!, keys, job.dst, job.size), place) };
      if (plain.length !== job.size) throw new ChunkHashMismatch(hex(), 'piece', `it decrypted to ${plain.length} bytes, its entry says ${job.size}`);
      return { toHash: [], finish: () => place };
    }
    case 'decrypt': {
      const keys = keysFromHashes(job.own, job.n1, job.n2);
      const stored = asBuffer(job.data);
      const checkDst = (digest: Buffer | undefined) => {
        if (!digest!.equals(job.dst)) throw new ChunkHashMismatch(Buffer.from(job.dst).toString('hex'), 'dst');
      };
      if (job.checks === 'src') {
        const plain = openChunk(stored, keys, job.dst, job.size);
        return { toHash: [plain], finish: ([src]) => (checkPlain(plain, src!, keys, job.dst, job.size), { plain }) };
      }
      // Both checks: damaged stored bytes are reported as such even when they also fail to decrypt.
      let plain: Buffer;
      try {
        plain = openChunk(stored, keys, job.dst, job.size);
      } catch (err) {
        return {
          toHash: [stored],
          finish: ([dst]) => {
            checkDst(dst);
            throw err;
          },
        };
      }
      return {
        toHash: [stored, plain],
        finish: ([dst, src]) => {
          checkDst(dst);
          checkPlain(plain, src!, keys, job.dst, job.size);
          return { plain };
        },
      };
    }
  }
}

/** Run several jobs; each gets its result or the error it failed with, in order. */
export function runJobs(jobs: Job[]): (JobResult | Error)[] {
  const encrypted = encryptAll(jobs);
  const pending = jobs.map((job, i): Pending | Error => {
    try {
      return start(job, encrypted[i]);
    } catch (err) {
      return err as Error;
    }
  });
  const inputs = pending.flatMap((p) => (p instanceof Error ? [] : p.toHash));
  const digests = sha3Many(inputs);
  let at = 0;
  return pending.map((p) => {
    if (p instanceof Error) return p;
    const mine = digests.slice(at, (at += p.toHash.length));
    try {
      return p.finish(mine);
    } catch (err) {
      return err as Error;
    }
  });
}

/** Run jobs on this thread; the first failure is thrown. */
export function runJobsOrThrow(jobs: Job[]): JobResult[] {
  return runJobs(jobs).map((r) => {
    if (r instanceof Error) throw r;
    return r;
  });
}

/** Run one job. */
export function runJob(job: Job): JobResult {
  return runJobsOrThrow([job])[0]!;
}
