/**
 * How many metadata entries name each chunk: the mount's index for reclaiming space by itself. It is built
 * from meta/ when the mount starts (meta/ is the truth, so nothing about it needs to survive a crash) and
 * kept up to date by the mount as commits and removals replace entries. A chunk counts once per entry
 * naming it, however often the entry names it (a hole's chunk repeats).
 */
import { stubOf, walkMeta, walkRecords } from './walk.js';
import type { MetaCodec } from './meta-codec.js';
import { entryChunkNames } from './meta-entry.js';

export class ChunkReferences {
  private readonly counts = new Map<string, number>();

  /**
   * Count every entry below `metaDir` and every hard-link record a stub names; `damaged` lists entries that
   * cannot be read (their chunks are unknown), `named` the records some stub names (the others are orphans).
   */
  static build(metaDir: string, codec: MetaCodec): { refs: ChunkReferences; damaged: string[]; named: Set<number> } {
    const refs = new ChunkReferences();
    const damaged: string[] = [];
    const named = new Set<number>();
    for (const node of walkMeta(metaDir, codec)) {
      if (node.kind !== 'file') continue;
      if (node.error || !node.entry) damaged.push(node.path);
      else if (stubOf(node) !== undefined) named.add(stubOf(node)!);
      else refs.add(entryChunkNames(node.entry).keys());
    }
    for (const record of walkRecords(metaDir, codec)) {
      if (!named.has(record.ino)) continue;
      if (record.error || !record.entry) damaged.push(record.path);
      else refs.add(entryChunkNames(record.entry).keys());
    }
    return { refs, damaged, named };
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
