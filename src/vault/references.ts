/**
 * How many metadata entries name each chunk: the mount's index for reclaiming space by itself. It is built
 * from meta/ when the mount starts (meta/ is the truth, so nothing about it needs to survive a crash) and
 * kept up to date by the mount as commits and removals replace entries. A chunk counts once per entry
 * naming it, however often the entry names it (a hole's chunk repeats).
 */
import { walkMeta } from './walk.js';
import type { MetaCodec } from './meta-codec.js';
import { entryChunkNames } from './meta-entry.js';

export class ChunkReferences {
  private readonly counts = new Map<string, number>();

  /** Count every entry below `metaDir`; `damaged` lists entries that cannot be read (their chunks are unknown). */
  static build(metaDir: string, codec: MetaCodec): { refs: ChunkReferences; damaged: string[] } {
    const refs = new ChunkReferences();
    const damaged: string[] = [];
    for (const node of walkMeta(metaDir, codec)) {
      if (node.kind !== 'file') continue;
      if (node.error || !node.entry) damaged.push(node.path);
      else refs.add(entryChunkNames(node.entry).keys());
    }
    return { refs, damaged };
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
