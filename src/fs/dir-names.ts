/**
 * Directories whose every name the FUSE binding is given (fuse-native patch level 10). In a directory whose names
 * it knows, the binding answers the lookup of a missing name ENOENT itself: a create's first step, for every file
 * that rsync (its temporary names), tar x, git checkout, cp or an editor (its swap file) makes. It knows the
 * directories made through the mount from their mkdir on (level 8); one that existed before the mount (the root,
 * what an earlier mount made) is listed for it here, once lookups of missing names in it have reached JS a few
 * times.
 *
 * Why such a list is never stale: it is read from meta/ and given to the binding in one turn of the JS thread.
 * A change of a name answered before that turn is in the list (its host change came first); one answered after
 * it is recorded by the binding after the list, from its answer, as in a directory made through the mount. The
 * names that live only in memory (files removed while open, under libfuse's hidden names) are added to it.
 */
import { dirname } from 'node:path';
import type { MetaTree } from '../vault/meta-tree.js';
import type { FuseInstance } from './fuse-binding.js';
import type { OpenFiles } from './open-files.js';

/** Lookups of missing names in one directory that reach JS before it is listed for the binding. */
const MISSES_BEFORE_LISTING = 3;
/** A directory holding more entries is not listed (the binding keeps at most 262,144 names in all). */
const MAX_LISTED = 16_384;
/** Directories counted or refused at once, at most (the counts start afresh past it). */
const MAX_TRACKED = 4_096;

export class DirNames {
  /** Missing names looked up per directory not listed yet. */
  private readonly misses = new Map<string, number>();
  /** Directories found too large to list (never listed again while they stay here). */
  private readonly tooLarge = new Set<string>();

  constructor(
    private readonly binding: Pick<FuseInstance, 'knowDir'>,
    private readonly meta: MetaTree,
    private readonly files: OpenFiles,
  ) {}

  /** A lookup of `path` reached JS and found nothing (called in the turn its getattr failed). */
  missed(path: string): void {
    const dir = dirname(path);
    if (this.tooLarge.has(dir)) return;
    const seen = (this.misses.get(dir) ?? 0) + 1;
    if (seen < MISSES_BEFORE_LISTING) {
      if (this.misses.size >= MAX_TRACKED) this.misses.clear();
      this.misses.set(dir, seen);
      return;
    }
    this.misses.delete(dir);
    let names: string[] | undefined;
    try {
      names = this.meta.listNow(dir, MAX_LISTED);
    } catch {
      return; // gone, or not a directory: its lookups go on reaching JS
    }
    if (names === undefined) {
      if (this.tooLarge.size >= MAX_TRACKED) this.tooLarge.clear();
      this.tooLarge.add(dir);
      return;
    }
    this.binding.knowDir(dir, [...names, ...this.files.hiddenIn(dir)]);
  }
}
