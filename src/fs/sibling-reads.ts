/**
 * A directory's small files read one after another (tar c, cp -r, grep -r, a backup): once one of them is
 * opened for reading, the next ones in the directory's listing order (the order such readers take) are
 * decrypted ahead, on the JS thread between the reader's requests, so their opens find their chunks in the
 * chunk cache instead of decrypting them while the reader waits (native-notes/small-files.md, fifteenth
 * session: in the worker pool this was slower).
 *
 * Only what is at hand is used: the names of the directory's last listing, and the entries that listing's
 * read-ahead cached (MetaTree.cachedEntry); nothing is read from disk for it. Nothing here can show wrong or
 * stale bytes: the chunk cache is keyed by chunk name, which determines its plaintext, and an open uses the
 * entry it reads itself (a sibling changed since merely warms chunks nobody asks for).
 */
import { basename, dirname } from 'node:path';
import type { ChunkCache } from './chunk-cache.js';
import type { ChunkRef } from '../core/chunk-ref.js';
import type { MetaTree } from '../vault/meta-tree.js';
import { entryChunkRef } from '../vault/meta-entry.js';
import { childPath } from '../vault/names.js';
import { SMALL_FILE_AT_OPEN } from './slab-reads.js';

/** Files decrypted ahead of the one opened: enough to stay ahead of a reader between its requests. */
const AHEAD_FILES = 32;
/** A new batch starts once the reader is this close to the end of the last one. */
const REFILL_AT = 16;
/** Directories whose listing is remembered (a tree walk lists each once, just before reading it). */
const LISTINGS_MAX = 16;
/** Paths remembered for the op trace's count of files opened after being decrypted ahead. */
const WARMED_MAX = 4096;

interface Listing {
  names: string[];
  /** Position of each name in `names`, made at the first open. */
  index?: Map<string, number>;
  /** Names before this index have been decrypted ahead (or were not worth it). */
  aheadTo: number;
}

export class SiblingReads {
  private readonly listings = new Map<string, Listing>();
  /** Files to decrypt ahead, in order. */
  private queue: string[] = [];
  private draining = false;
  /** Files decrypted ahead and not opened since (the op trace's count of those that were). */
  private readonly warmed = new Set<string>();
  private ahead = 0;
  private used = 0;

  constructor(
    private readonly meta: MetaTree,
    private readonly cache: ChunkCache,
  ) {}

  /** Directory `dir` was just listed: `names` in the order given to the kernel. */
  listed(dir: string, names: string[]): void {
    this.listings.delete(dir);
    this.listings.set(dir, { names, aheadTo: 0 });
    for (const key of this.listings.keys()) {
      if (this.listings.size <= LISTINGS_MAX) break;
      this.listings.delete(key);
    }
  }

  /** File `path` was opened for reading: decrypt the small files after it in its directory's listing. */
  opened(path: string): void {
    if (this.warmed.delete(path)) this.used++;
    const listing = this.listings.get(dirname(path));
    if (!listing) return;
    listing.index ??= new Map(listing.names.map((name, i) => [name, i]));
    const at = listing.index.get(basename(path));
    if (at === undefined || listing.aheadTo > at + REFILL_AT) return;
    const from = Math.max(at + 1, listing.aheadTo);
    const to = Math.min(listing.names.length, at + 1 + AHEAD_FILES);
    listing.aheadTo = to;
    for (let i = from; i < to; i++) this.queue.push(childPath(dirname(path), listing.names[i]!));
    this.drainSoon();
  }

  /**
   * Decrypt the queued files one per turn of the event loop, on this thread: in the time it waits for the
   * reader's next request (a worker would cost more in copies and messages than a small file's decryption).
   */
  private drainSoon(): void {
    if (this.draining || this.queue.length === 0) return;
    this.draining = true;
    setImmediate(() => {
      this.draining = false;
      const path = this.queue.shift();
      if (path !== undefined) {
        const refs = this.smallFileChunks(path);
        if (refs.length > 0) {
          this.cache.prefetch(refs, 1, { here: true });
          this.ahead++;
          this.warmed.add(path);
          if (this.warmed.size > WARMED_MAX) this.warmed.delete(this.warmed.values().next().value!);
        }
      }
      this.drainSoon();
    });
  }

  /** Counts for the op trace. */
  report(): string {
    return `sibling reads: ${this.ahead} small files decrypted ahead of their open, ${this.used} of them opened after`;
  }

  /** The packed chunks of a small file whose entry is cached (none for anything else). */
  private smallFileChunks(path: string): ChunkRef[] {
    const entry = this.meta.cachedEntry(path);
    if (entry?.kind !== 'map' || !entry.packed || entry.size > SMALL_FILE_AT_OPEN || entry.node?.link !== undefined) return [];
    return entry.dataMap.chunks.map((_, i) => entryChunkRef(entry, i));
  }
}
