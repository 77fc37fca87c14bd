/**
 * Reads the FUSE binding answers itself from the chunk cache's slab (fuse-native patch level 7), without a
 * round trip through the JS thread: about 150 us of this thread's CPU per 128 KiB request, seven of each
 * chunk's eight requests for a sequential reader. After JS answers a read of a file whose content is its
 * committed version, it tells the binding, for that handle, which file ranges the chunks around the read
 * cover and where their plaintexts sit in the slab; the binding answers later reads inside those ranges, its
 * reply carrying the slab's bytes to the kernel directly (level 13: no copy into libfuse's buffer).
 *
 * What keeps every byte right:
 * - a range is given only for a file with no uncommitted change, and only if no change happened while the
 *   read that found it waited (Sequencer.version);
 * - a change of a file's content (write, truncate, fallocate) drops the ranges of its handles before the
 *   request making it is answered (Sequencer.onChange);
 * - the cache drops the ranges in a slot before giving the slot up, under the binding's write lock, so no
 *   reply from it is being written once it may be reused (ChunkCache.onSlotDropped; the binding holds the read
 *   lock from answering a read until the kernel has its reply's bytes);
 * - the binding drops a handle's ranges at its release (JS may give the number out again).
 * A commit changes which chunks hold the content, not the content: the ranges stay right until their slots go.
 *
 * A small file opened for reading gets its whole content given as bytes (the binding keeps a copy), so
 * reading it takes no round trip at all. A range that ends where the file does also answers a read that goes
 * past it, short, as a read at the end of a file is (the kernel asks for whole pages).
 */
import type { ChunkCache } from './chunk-cache.js';
import type { FuseInstance } from './fuse-binding.js';
import type { Sequencer } from './sequencer.js';

/**
 * How far past a read its handle is given the ranges of cached chunks: the kernel's read-ahead sends the next
 * requests before JS has answered this one, and the chunk cache's read-ahead has decrypted those chunks by
 * then. The binding keeps eight ranges per handle.
 */
const OFFER_AHEAD = 7 * 1024 * 1024;

/** Files up to this size opened for reading have their content given to the binding at open. */
export const SMALL_FILE_AT_OPEN = 64 * 1024;
/** The binding's copies of small files, in all, at most (each is held until its handle's release or a change). */
const SMALL_COPIES_MAX = 32 * 1024 * 1024;

/** What the patched binding offers for this (fuse-binding.ts, level 7). */
export type SlabReadBinding = Pick<FuseInstance, 'readSlab' | 'readExtent' | 'readData' | 'dropReads' | 'dropSlot'>;

export class SlabReads {
  /** The handles given ranges, per file (its Sequencer). */
  private readonly handles = new Map<Sequencer, Set<number>>();
  /** The bytes of the small-file copies the binding holds, by handle. */
  private readonly copies = new Map<number, number>();
  private copiedBytes = 0;

  constructor(
    private readonly binding: SlabReadBinding,
    private readonly cache: ChunkCache,
  ) {
    binding.readSlab(cache.slabBytes);
    cache.onSlotDropped = (slot) => binding.dropSlot(slot);
  }

  /**
   * Handle `fh` of `seq` was just answered bytes [from, to) by JS, by a read that started at content version
   * `version`: the ranges of the cached chunks covering them and the next few MiB go to the binding.
   */
  offer(fh: number, seq: Sequencer, version: number, from: number, to: number): void {
    if (seq.version !== version || to <= from) return;
    for (const { start, length, ref } of seq.committedRanges(from, to + OFFER_AHEAD)) {
      const place = this.cache.slabPlace(ref);
      if (!place || place.length !== length) continue;
      if (this.binding.readExtent(fh, start, length, place.at, place.slot, start + length === seq.size)) this.given(fh, seq);
    }
  }

  /**
   * Handle `fh` of `seq` was just opened for reading: a small file's content goes to the binding whole (read
   * here, as its first read would have; nothing if it has uncommitted changes or changed meanwhile).
   */
  async opened(fh: number, seq: Sequencer): Promise<void> {
    const size = seq.size;
    if (seq.isDirty || size === 0 || size > SMALL_FILE_AT_OPEN || this.copiedBytes + size > SMALL_COPIES_MAX) return;
    const version = seq.version;
    const content = await seq.readInto(0, Buffer.allocUnsafe(size));
    if (seq.version !== version || content.length !== size) return;
    if (!this.binding.readData(fh, 0, content, true)) return;
    this.given(fh, seq);
    this.copies.set(fh, size);
    this.copiedBytes += size;
  }

  /** The binding dropped what handle `fh` was given (its release, or a change of its file). */
  private forgotten(fh: number): void {
    this.copiedBytes -= this.copies.get(fh) ?? 0;
    this.copies.delete(fh);
  }

  private given(fh: number, seq: Sequencer): void {
    let mine = this.handles.get(seq);
    if (!mine) {
      this.handles.set(seq, (mine = new Set()));
      seq.onChange = () => this.changed(seq);
    }
    mine.add(fh);
  }

  /** The content of `seq` is changing: the binding forgets the ranges of every handle of it. */
  private changed(seq: Sequencer): void {
    const mine = this.handles.get(seq);
    if (!mine) return;
    for (const fh of mine) {
      this.binding.dropReads(fh);
      this.forgotten(fh);
    }
    this.stopWatching(seq);
  }

  /** A handle was released (the binding dropped its ranges itself): forget it here too. */
  released(fh: number, seq: Sequencer): void {
    this.forgotten(fh);
    const mine = this.handles.get(seq);
    if (mine?.delete(fh) && mine.size === 0) this.stopWatching(seq);
  }

  /** No handle of `seq` holds anything of the binding's now: its changes need not be heard. */
  private stopWatching(seq: Sequencer): void {
    this.handles.delete(seq);
    seq.onChange = undefined;
  }
}
