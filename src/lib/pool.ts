/**
 * A pool of worker threads for chunk hashing, encryption and decryption, so heavy crypto never blocks
 * the caller's event loop (the FUSE loop in a mount). One worker per core by default.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ChunkChecks } from '../core/chunk.js';
import type { Profile } from '../core/compression.js';
import { ChunkDecryptFailed, ChunkHashMismatch, SefsError } from '../core/errors.js';
import type { Job, JobBytes, JobResult, PieceFields, PieceOptions } from './chunk-jobs.js';

/** How many chunks one pass of the native four-way SHA3 hashes together (sha3-many.ts). */
const FOUR_WAY = 4;

interface Pending {
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
}

/** One chunk to encrypt: its plaintext and the src hashes of itself and its neighbours. */
export interface EncryptRequest {
  data: Uint8Array;
  own: Uint8Array;
  n1: Uint8Array;
  n2: Uint8Array;
}

/** One chunk to decrypt: its stored bytes, name, plaintext size and the src hashes of itself and its neighbours. */
export interface DecryptRequest {
  stored: Uint8Array;
  dst: Uint8Array;
  size: number;
  own: Uint8Array;
  n1: Uint8Array;
  n2: Uint8Array;
}

interface Slot {
  worker: Worker;
  /** Jobs sent to this worker and not answered yet. */
  jobs: Map<number, Pending>;
}

/** Rebuild the typed error a worker reported. */
function reviveError(e: { code: string; message: string; chunkName?: string; which?: string; errno?: number; sysCode?: string }): Error {
  if (e.errno !== undefined) return Object.assign(new Error(e.message), { errno: e.errno, code: e.sysCode });
  if (e.code === 'ChunkHashMismatch' && e.chunkName) {
    const which = e.which === 'src' || e.which === 'piece' ? e.which : 'dst';
    const err = new ChunkHashMismatch(e.chunkName, which);
    err.message = e.message; // a piece mismatch's detail (which piece, what length) is in the worker's message
    return err;
  }
  if (e.code === 'ChunkDecryptFailed' && e.chunkName) {
    const err = new ChunkDecryptFailed(e.chunkName, '');
    err.message = e.message;
    return err;
  }
  if (e.code !== 'Error') return new SefsError(e.code, e.message);
  return new Error(e.message);
}

/**
 * Data handed to a worker: memory shared with a SharedArrayBuffer goes as is; with `move`, a buffer that owns
 * its whole ArrayBuffer is moved (it is empty for the caller afterwards); anything else is copied once into
 * its own ArrayBuffer and moved, because cloning a view would copy its whole backing store.
 */
function forTransfer(data: Uint8Array, transfer: ArrayBuffer[], move = false): Uint8Array {
  if (data.buffer instanceof SharedArrayBuffer) return data;
  if (move && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
    transfer.push(data.buffer);
    return data;
  }
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  transfer.push(copy.buffer);
  return copy;
}

function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./chunk-worker.js', import.meta.url));
  // Under the test runner this module is TypeScript source: the worker registers tsx, then loads the .ts entry.
  const entry = JSON.stringify(new URL('./chunk-worker.ts', import.meta.url).href);
  return new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${entry}); })`, { eval: true });
}

/**
 * Who holds a slab's slots (lib/slab.ts Slab): a job that reads bytes of a slot holds it from the moment it is
 * sent until its answer arrives (or its worker dies), so the slot is not given to anyone else meanwhile.
 */
export interface SlotHolders {
  hold(slot: number): void;
  release(slot: number): void;
}

interface AttachedSlab {
  slab: number;
  buffer: SharedArrayBuffer;
  slotSize: number;
  /** Where slot 0 starts in the buffer (Slab.base). */
  base: number;
  holders?: SlotHolders;
}

/** A chunk to decrypt where it is in a slab (attachSlab): its stored bytes at `at`, `length` of them. */
export interface SlabDecryptRequest {
  slab: number;
  at: number;
  length: number;
  dst: Uint8Array;
  size: number;
  own: Uint8Array;
  n1: Uint8Array;
  n2: Uint8Array;
  /** Keyed piece tags of the chunk: checked instead of its plaintext's hash. */
  tags?: { plainAt: number; hashes: Uint8Array; key: Uint8Array };
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** The worker the last batch went to (ties go round). */
  private lastSlot = -1;
  /** Slabs the workers were given (attachSlab), sent again to a worker started to replace one. */
  private readonly slabs: AttachedSlab[] = [];

  constructor(readonly threads: number = availableParallelism()) {
    for (let i = 0; i < Math.max(1, threads); i++) this.slots.push(this.startSlot());
  }

  private startSlot(): Slot {
    const worker = startWorker();
    // A worker started to replace one that died gets the slabs too, before any job (their holders stay here).
    for (const { slab, buffer, slotSize, base } of this.slabs) worker.postMessage({ slab, buffer, slotSize, base });
    const slot: Slot = { worker, jobs: new Map() };
    worker.on('message', (msg: { id: number; result?: JobResult; error?: Parameters<typeof reviveError>[0] }) => {
      const p = slot.jobs.get(msg.id);
      if (!p) return;
      slot.jobs.delete(msg.id);
      if (slot.jobs.size === 0) worker.unref();
      if (msg.error) p.reject(reviveError(msg.error));
      else {
        // Byte results arrive as Uint8Array: give callers Buffers over the same memory.
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(msg.result!) as [string, unknown][]) {
          out[k] = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
        }
        p.resolve(out as unknown as JobResult);
      }
    });
    // A worker that dies fails only its own jobs and is replaced, so the pool keeps working.
    const onDeath = (err: Error) => {
      for (const p of slot.jobs.values()) p.reject(err);
      slot.jobs.clear();
      const at = this.slots.indexOf(slot);
      if (at >= 0 && !this.closed) this.slots[at] = this.startSlot();
    };
    worker.on('error', onDeath);
    worker.on('exit', (code) => {
      if (!this.closed) onDeath(new Error(`chunk worker exited with code ${code}`));
    });
    worker.unref();
    return slot;
  }

  private run(job: Job, transfer: ArrayBuffer[]): Promise<JobResult> {
    return this.runBatch([job], transfer)[0]!;
  }

  /**
   * Send jobs to one worker in one message, so they run as one batch there (their SHA3 passes share the
   * four-way hash); one promise per job, settled on its own.
   */
  private runBatch(jobs: Job[], transfer: ArrayBuffer[]): Promise<JobResult>[] {
    if (jobs.length === 0) return [];
    if (this.closed) return jobs.map(() => Promise.reject(new Error('worker pool is closed')));
    // The least busy worker takes the batch; among equally busy ones, the next after the last one chosen (the
    // first one always won ties: a sequential write's worker 0 did twice worker 1's work).
    const n = this.slots.length;
    let slot = this.slots[(this.lastSlot + 1) % n]!;
    for (let k = 2; k <= n; k++) {
      const s = this.slots[(this.lastSlot + k) % n]!;
      if (s.jobs.size < slot.jobs.size) slot = s;
    }
    this.lastSlot = this.slots.indexOf(slot);
    if (slot.jobs.size === 0) slot.worker.ref();
    const batch = jobs.map((job) => ({ id: this.nextId++, job }));
    const promises = batch.map(({ id }) => new Promise<JobResult>((resolve, reject) => slot.jobs.set(id, { resolve, reject })));
    slot.worker.postMessage(batch, transfer);
    return promises;
  }

  /**
   * A job's input bytes: bytes of an attached slab go as their place in it (nothing copied; the slot is held
   * until `done` runs, when the job has answered), anything else as forTransfer sends it.
   */
  private jobBytes(data: Uint8Array, transfer: ArrayBuffer[], held: (() => void)[]): JobBytes {
    const slab = data.buffer instanceof SharedArrayBuffer ? this.slabs.find((s) => s.buffer === data.buffer) : undefined;
    if (!slab) return forTransfer(data, transfer);
    const slot = Math.floor((data.byteOffset - slab.base) / slab.slotSize);
    if (slot < 0 || data.byteOffset + data.byteLength > slab.base + (slot + 1) * slab.slotSize) throw new Error('worker pool: bytes outside one slot of a slab');
    const holders = slab.holders;
    if (holders) {
      holders.hold(slot);
      held.push(() => holders.release(slot));
    }
    return { slab: slab.slab, at: data.byteOffset, length: data.byteLength };
  }

  /** runBatch, and the slots the jobs' bytes hold (jobBytes) released as each job settles. */
  private runHolding(jobs: Job[], transfer: ArrayBuffer[], held: (() => void)[][]): Promise<JobResult>[] {
    return this.runBatch(jobs, transfer).map((p, i) => {
      const release = () => held[i]!.forEach((done) => done());
      p.then(release, release);
      return p;
    });
  }

  /** SHA3-256 of a chunk's plaintext (its src hash). */
  hash(data: Uint8Array): Promise<Buffer> {
    return this.hashMany([data])[0]!;
  }

  /** SHA3-256 of several chunks, in one worker batch (the four-way hash); one promise per chunk. */
  hashMany(list: Uint8Array[]): Promise<Buffer>[] {
    const transfer: ArrayBuffer[] = [];
    const held = list.map((): (() => void)[] => []);
    const jobs = list.map((data, i): Job => ({ kind: 'hash', data: this.jobBytes(data, transfer, held[i]!) }));
    return this.runHolding(jobs, transfer, held).map((p) => p.then((r) => (r as { hash: Buffer }).hash));
  }

  /** Encrypt a chunk given its own src hash and its neighbours' (n1 keys it, n2 completes the pad). */
  encrypt(data: Uint8Array, own: Uint8Array, n1: Uint8Array, n2: Uint8Array, profile: Profile): Promise<{ name: Buffer; content: Buffer }> {
    return this.encryptMany([{ data, own, n1, n2 }], profile)[0]!;
  }

  /**
   * Encrypt several chunks in one worker batch (their names share the four-way hash); one promise per chunk.
   * With `pieces`, a chunk stored raw comes with its piece tags (core/pieces.ts).
   */
  encryptMany(list: EncryptRequest[], profile: Profile, pieces?: PieceOptions): Promise<{ name: Buffer; content: Buffer } & PieceFields>[] {
    return this.encryptBatch(list, pieces ? { profile, pieces } : { profile }) as Promise<{ name: Buffer; content: Buffer } & PieceFields>[];
  }

  /**
   * encryptMany, and the worker writes each chunk into the local store at `storeRoot` (ChunkStore.localRoot):
   * one promise per chunk, with its name and the temp file to adopt (none when the store had the chunk), and
   * with `keepContent` a new chunk's bytes (moved back, not copied).
   */
  storeMany(list: EncryptRequest[], options: { profile: Profile; storeRoot: string; keepContent?: boolean; pieces?: PieceOptions }): Promise<{ name: Buffer; temp?: string; content?: Buffer } & PieceFields>[] {
    return this.encryptBatch(list, options) as Promise<{ name: Buffer; temp?: string; content?: Buffer } & PieceFields>[];
  }

  private encryptBatch(list: EncryptRequest[], options: { profile: Profile; storeRoot?: string; keepContent?: boolean; pieces?: PieceOptions }): Promise<JobResult>[] {
    const transfer: ArrayBuffer[] = [];
    const held = list.map((): (() => void)[] => []);
    const jobs = list.map((c, i): Job => ({ kind: 'encrypt', data: this.jobBytes(c.data, transfer, held[i]!), own: c.own, n1: c.n1, n2: c.n2, ...options }));
    return this.runHolding(jobs, transfer, held);
  }

  /** Verify and decrypt stored chunk bytes. */
  async decrypt(
    stored: Uint8Array,
    own: Uint8Array,
    n1: Uint8Array,
    n2: Uint8Array,
    dst: Uint8Array,
    size: number,
    checks: ChunkChecks = 'both',
  ): Promise<Buffer> {
    const transfer: ArrayBuffer[] = [];
    const job: Job = { kind: 'decrypt', data: forTransfer(stored, transfer), own, n1, n2, dst, size, checks };
    return ((await this.run(job, transfer)) as { plain: Buffer }).plain;
  }

  /**
   * Verify and decrypt several stored chunks, spread over the workers in batches (read-ahead: decryptBatch):
   * one promise per chunk, each settled as its own batch finishes. The stored buffers are moved to the workers
   * when they own their memory (as fresh reads from a store do): callers must not use them afterwards.
   */
  decryptMany(chunks: DecryptRequest[], checks: ChunkChecks = 'both'): Promise<Buffer>[] {
    const perWorker = this.decryptBatch(chunks.length);
    const out: Promise<Buffer>[] = [];
    for (let at = 0; at < chunks.length; at += perWorker) {
      const transfer: ArrayBuffer[] = [];
      const jobs = chunks.slice(at, at + perWorker).map(
        (c): Job => ({
          kind: 'decrypt',
          data: forTransfer(c.stored, transfer, true),
          own: c.own,
          n1: c.n1,
          n2: c.n2,
          dst: c.dst,
          size: c.size,
          checks,
        }),
      );
      for (const p of this.runBatch(jobs, transfer)) out.push(p.then((r) => (r as { plain: Buffer }).plain));
    }
    return out;
  }

  /**
   * Shared memory that decryptInSlab jobs decrypt in (slab.ts), sent to each worker once: the jobs then
   * carry only its id and offsets, and no chunk buffer is allocated, moved or collected per read. Hash and
   * encrypt jobs given bytes of it send their place too; with `holders`, each such job holds its slot while
   * it runs (jobBytes). Its id.
   */
  attachSlab(buffer: SharedArrayBuffer, slotSize: number, holders?: SlotHolders, base = 0): number {
    const slab = { slab: this.slabs.length + 1, buffer, slotSize, base };
    this.slabs.push({ ...slab, holders });
    for (const s of this.slots) s.worker.postMessage(slab);
    return slab.slab;
  }

  /**
   * How many of `count` chunks to decrypt go to one worker: spread over the workers, but never split below
   * FOUR_WAY (a read-ahead group of four is one four-way SHA3 pass in one worker, not two half-empty ones).
   */
  private decryptBatch(count: number): number {
    return Math.max(Math.min(FOUR_WAY, count), Math.ceil(count / this.slots.length));
  }

  /**
   * Verify and decrypt chunks in their slots of the attached slab, spread over the workers in batches as
   * decryptMany: one promise per chunk, with where its plaintext now is in the slab.
   */
  decryptInSlab(chunks: SlabDecryptRequest[]): Promise<{ plainAt: number; plainLength: number }>[] {
    const perWorker = this.decryptBatch(chunks.length);
    const out: Promise<{ plainAt: number; plainLength: number }>[] = [];
    for (let at = 0; at < chunks.length; at += perWorker) {
      const jobs = chunks.slice(at, at + perWorker).map((c): Job => ({ kind: 'decryptSlot', ...c }));
      for (const p of this.runBatch(jobs, [])) out.push(p as Promise<{ plainAt: number; plainLength: number }>);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    for (const slot of this.slots) for (const p of slot.jobs.values()) p.reject(new Error('worker pool is closed'));
  }
}

let shared: WorkerPool | undefined;
/** A process-wide pool for callers that do not manage their own. */
export function sharedPool(): WorkerPool {
  shared ??= new WorkerPool();
  return shared;
}
