/**
 * Whole-block buffers (1 MiB) for the data written to open files, recycled. A sequential write of a GiB used to
 * take a fresh zeroed 1 MiB buffer per MiB and drop it once the block was staged, and the pool copied each
 * block twice into transferred buffers for its hash and encrypt jobs: that external memory made V8 run 50-60
 * mark-compacts per GiB in the daemon and as many in each worker (native-notes/benchmarking.md). Here the
 * blocks are slots of one slab (lib/slab.ts) that the workers were given once, so a block's jobs carry only
 * its place and nothing is allocated per MiB written.
 *
 * When a slot is reused (why no one can still see the old block's bytes):
 *  - The block that took it is its first holder, until FileContent drops the block (staged, truncated away,
 *    committed, abandoned): FileContent then gives it back (`give`) and never touches that buffer again.
 *  - Every worker job that reads it holds it too, from the moment the pool sends the job until the job has
 *    answered or its worker is gone (WorkerPool.jobBytes); ChunkWriter holds a chunk's bytes until its write
 *    has settled, retry included (it may encrypt them again).
 *  - Reads of a block on this thread copy out of it synchronously (FileContent.readBlockInto), so no read
 *    keeps a view across an await; the commit's views (plainOfBlock) are used under the file's lock, while
 *    nothing can drop the block, and are handed to jobs that hold them.
 *  - The slot is free only once every holder has let go, and after the current macrotask (Slab.release).
 * A write to a block while one of its jobs runs is the old story, not a new one: the worker may see a mix of
 * the two versions, and the block's version (bumped by every change) makes the stager and the hash cache
 * throw that result away, as before when the job's copy was merely stale.
 *
 * When every slot is taken, a block gets a buffer of its own (and its jobs copy it, as before).
 * Bytes go in and out of slots with copyBytes (the addon's memcpy): V8 moves shared memory with relaxed atomic
 * loads and stores, several times slower.
 */
import { MAX_CHUNK_SIZE } from '../core/constants.js';
import { copyBytes } from '../core/copy-bytes.js';
import { ZEROS } from '../core/zeros.js';
import type { WorkerPool } from '../lib/pool.js';
import { Slab } from '../lib/slab.js';

const BLOCK = MAX_CHUNK_SIZE;

export class BlockBuffers {
  private readonly slab: Slab;

  /** `count` slots of one block each, attached to `pool` (address space only until they are first used). */
  constructor(pool: WorkerPool, count: number) {
    this.slab = new Slab(count, BLOCK);
    pool.attachSlab(this.slab.buffer, BLOCK, this.slab, this.slab.base);
  }

  /** A zeroed block buffer: a free slot (held once, by the caller), else a buffer of its own. */
  take(): Buffer {
    const slot = this.slab.take();
    if (slot === undefined) return Buffer.alloc(BLOCK);
    const view = this.slab.view(this.slab.offsetOf(slot));
    // Not view.fill(0): V8 fills shared memory a byte at a time (a quarter of the event loop's CPU in a write).
    copyBytes(ZEROS, view, 0, 0, BLOCK);
    return view;
  }

  /** The caller is done with a buffer from take(): a slot goes back once no job holds it (none to do otherwise). */
  give(buffer: Buffer): void {
    if (buffer.buffer === this.slab.buffer) this.slab.release(this.slab.slotAt(buffer.byteOffset));
  }

  /** Hold `bytes` (in a block buffer) until the returned function runs: for a caller that may read them again. */
  hold(bytes: Uint8Array): () => void {
    if (bytes.buffer !== this.slab.buffer) return () => {};
    const slot = this.slab.slotAt(bytes.byteOffset);
    this.slab.hold(slot);
    return () => this.slab.release(slot);
  }
}
