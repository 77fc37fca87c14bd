/**
 * Chunk slots: one SharedArrayBuffer, made once, cut into slots of one chunk each, that worker threads read
 * and write where they are. The mount's chunk cache reads stored chunks into slots and has them decrypted in
 * place (fs/chunk-cache.ts), so no buffer is allocated per chunk read: before, every chunk read allocated its
 * stored bytes and its plaintext as fresh 1 MiB buffers, and that external memory made V8 run a full
 * mark-compact of the daemon's heap every 20-30 MiB streamed (44 per GiB, 2 s of CPU on V8's helper threads:
 * native-notes/benchmarking.md, seventh session). The workers get a slab once (WorkerPool.attachSlab), so it
 * is never shown to them again (native-notes/worker-memory.md).
 *
 * A slot given back is not reused at once: readers copy out of a plaintext in the promise callbacks of the
 * macrotask that handed it to them, so a slot only becomes free after the current macrotask (setImmediate),
 * when no such callback can still be pending, and before any file read or worker can write into it again.
 *
 * A slot may have several holders (the mount's written blocks: the block that owns it, and each worker job
 * reading it, fs/block-buffers.ts): take() makes the taker its one holder, hold() adds one, and it is given
 * back when the last holder releases it.
 */
import { native } from '../core/native.js';
import { MAX_CHUNK_FILE } from '../store/disk-store.js';

/** The alignment of slots (slot sizes are whole pages where it matters: SLOT_SIZE and 1 MiB blocks). */
const PAGE = 4096;

/** A slot holds the largest stored chunk a store returns, and so also any plaintext (1 MiB at most). */
export const SLOT_SIZE = MAX_CHUNK_FILE;

export class Slab {
  readonly buffer: SharedArrayBuffer;
  private readonly bytes: Buffer;
  private readonly free: number[] = [];
  /** Holders of each slot (0: free or cooling). */
  private readonly holders: Uint32Array;
  private coolingSlots: number[] = [];
  private cooled: Promise<void> | undefined;

  /**
   * Where slot 0 starts in the buffer: its first page boundary (V8 places a large buffer 16 bytes past one), so
   * with slot sizes of whole pages every slot starts on a page, as O_DIRECT reads of chunk files into slots want
   * (read-file.c moved every MiB read down by 4,080 bytes before: 5% of a cold read's CPU). 0 without the addon.
   */
  readonly base: number;

  constructor(
    readonly count: number,
    readonly slotSize = SLOT_SIZE,
  ) {
    this.buffer = new SharedArrayBuffer(count * slotSize + PAGE);
    this.bytes = Buffer.from(this.buffer);
    const mod = native?.addressMod?.(this.bytes, PAGE);
    this.base = mod === undefined ? 0 : (PAGE - mod) % PAGE;
    this.holders = new Uint32Array(count);
    for (let i = count - 1; i >= 0; i--) this.free.push(i);
  }

  /** A free slot, held once by the caller; undefined when none is free now (some may be cooling: `settled`). */
  take(): number | undefined {
    const slot = this.free.pop();
    if (slot !== undefined) this.holders[slot] = 1;
    return slot;
  }

  /** One more holder of a slot that is held now: it stays taken until this one releases it too. */
  hold(slot: number): void {
    if (this.holders[slot] === 0) throw new Error(`slab: slot ${slot} is not held`);
    this.holders[slot]!++;
  }

  /** The slot a byte offset of the slab falls in. */
  slotAt(offset: number): number {
    return Math.floor((offset - this.base) / this.slotSize);
  }

  /** Whether slots given back are waiting for the end of the current macrotask. */
  get cooling(): boolean {
    return this.coolingSlots.length > 0;
  }

  /** Resolves once the slots given back so far are free again. */
  settled(): Promise<void> {
    return this.cooled ?? Promise.resolve();
  }

  /** A holder gives a slot back: once none is left, free for the next taker after the current macrotask. */
  release(slot: number): void {
    if (this.holders[slot] === 0) throw new Error(`slab: slot ${slot} released more often than held`);
    if (--this.holders[slot]! > 0) return;
    this.coolingSlots.push(slot);
    this.cooled ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.free.push(...this.coolingSlots);
        this.coolingSlots = [];
        this.cooled = undefined;
        resolve();
      }),
    );
  }

  /** The byte offset of a slot in the slab (what worker jobs are given). */
  offsetOf(slot: number): number {
    return this.base + slot * this.slotSize;
  }

  /** Every slot, as one view (from the buffer's start, so offsets into it are the slab's). */
  get slots(): Buffer {
    return this.bytes.subarray(0, this.base + this.count * this.slotSize);
  }

  /** A view of the slab: `length` bytes from byte offset `at` (a whole slot by default). */
  view(at: number, length = this.slotSize): Buffer {
    return this.bytes.subarray(at, at + length);
  }
}
