/**
 * How many metadata entries name each chunk: the mount's index for reclaiming space by itself. It is built
 * from meta/ when the mount starts (meta/ is the truth, so nothing about it needs to survive a crash) and
 * kept up to date by the mount as commits and removals replace entries. A chunk counts once per entry
 * naming it, however often the entry names it (a hole's chunk repeats).
 */
import { stubOf, walkMeta, walkRecords } from './walk.js';
import type { MetaCodec } from './meta-codec.js';
import { entryChunkNames } from './meta-entry.js';

/** What a count of meta/ found besides the references. */
export interface CountedVault {
  /** Entries that cannot be read (their chunks are unknown). */
  damaged: string[];
  /** The hard-link records some stub names (the others are orphans). */
  named: Set<number>;
}

export class ChunkReferences {
  private readonly counts = new Map<string, number>();

  /**
   * Count every entry below `metaDir` and every hard-link record a stub names; `damaged` lists entries that
   * cannot be read (their chunks are unknown), `named` the records some stub names (the others are orphans).
   */
  static build(metaDir: string, codec: MetaCodec): { refs: ChunkReferences } & CountedVault {
    const refs = new ChunkReferences();
    const found: CountedVault = { damaged: [], named: new Set() };
    for (const _ of refs.countSteps(metaDir, codec, found));
    return { refs, ...found };
  }

  /**
   * build() into this index while a mount serves: `pace` is called after each node, and the walk waits for
   * what it returns (its reads are synchronous: the caller gives the event loop back now and then). Ends early,
   * with what it found so far, once `stop()` says so.
   */
  async countLive(metaDir: string, codec: MetaCodec, pace: () => Promise<void> | undefined, stop: () => boolean): Promise<CountedVault> {
    const found: CountedVault = { damaged: [], named: new Set() };
    for (const _ of this.countSteps(metaDir, codec, found)) {
      if (stop()) break;
      const rest = pace();
      if (rest) await rest;
    }
    return found;
  }

  /** The count, one node per step. */
  private *countSteps(metaDir: string, codec: MetaCodec, found: CountedVault): Generator<void> {
    for (const node of walkMeta(metaDir, codec)) {
      if (node.kind === 'file') {
        if (node.error || !node.entry) found.damaged.push(node.path);
        else if (stubOf(node) !== undefined) found.named.add(stubOf(node)!);
        else this.add(entryChunkNames(node.entry).keys());
      }
      yield;
    }
    for (const record of walkRecords(metaDir, codec)) {
      if (!found.named.has(record.ino)) continue;
      if (record.error || !record.entry) found.damaged.push(record.path);
      else this.add(entryChunkNames(record.entry).keys());
      yield;
    }
  }

  count(hex: string): number {
    return this.counts.get(hex) ?? 0;
  }

  /** Every chunk named at least once. */
  has(hex: string): boolean {
    return this.counts.has(hex);
  }

  get size(): number {
    return this.counts.size;
  }

  add(hexes: Iterable<string>): void {
    for (const hex of hexes) this.counts.set(hex, this.count(hex) + 1);
  }

  remove(hexes: Iterable<string>): void {
    for (const hex of hexes) {
      const n = this.count(hex) - 1;
      if (n > 0) this.counts.set(hex, n);
      else this.counts.delete(hex);
    }
  }
}
