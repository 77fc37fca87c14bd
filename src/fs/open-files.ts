/**
 * Open files: one Sequencer per file however many handles it has, so every handle sees one content.
 * Files are found by handle (fh) and by their current path (renames move them). A file stays registered
 * after its last handle closes until its commit has succeeded: an open() meanwhile shares the same
 * Sequencer (never a second one loaded from the old entry), and a file whose commit failed keeps its
 * changes here, served and retried, instead of losing them.
 */
import type { MetaEntry } from '../vault/meta-entry.js';
import type { FuseStat } from './ops-attr.js';
import { type Persist, Sequencer, type SequencerDeps } from './sequencer.js';

/** The mtime utimens gave `file` while it was dirty, unless its content changed since (then that change's moment is). */
export const utimensMtime = (file: OpenFile): bigint | undefined => (file.times && file.times.version === file.seq.version ? file.times.mtime : undefined);

export interface OpenFile {
  path: string;
  seq: Sequencer;
  handles: number;
  /**
   * Times set by utimens while the file had uncommitted changes: applied by the commit (ns). `version` is the
   * content's version then: a change after them makes the mtime its own moment again (utimensMtime).
   */
  times?: { atime: bigint; mtime: bigint; version: number };
  /** The hard-link record of a file with several names (hard-links.ts): opens by any name share this file. */
  link?: number;
  /** Removed while open: its attributes at that moment (what fstat shows of it). */
  removed?: FuseStat;
  /** The name libfuse gave it when it was removed while open (hide). */
  hiddenAs?: string;
  /** A write the binding held and answered that could not be applied (held-writes.ts): the next fsync fails with it. */
  heldWriteError?: Error;
}

/**
 * libfuse (without hard_remove) keeps a file removed while the kernel has it open by renaming it to
 * `.fuse_hidden` + 16 hex digits in its directory, and removes that name after the last close. sefs removes the
 * file from the vault at that rename instead and answers for the hidden name from memory: the directory is
 * empty for rmdir, no leftover can outlive a crash, and fstat of the file still works (native-notes/fuse-native-patch.md).
 */
export const isHiddenName = (path: string): boolean => /\/\.fuse_hidden[0-9a-f]{16}$/.test(path);

/** What opening a file loads: its entry, and the hard-link record its name is a stub of, if it is one. */
export interface LoadedFile {
  entry: MetaEntry;
  link?: number;
}

export class OpenFiles {
  private readonly byPath = new Map<string, OpenFile>();
  private readonly byHandle = new Map<number, OpenFile>();
  private readonly byLink = new Map<number, OpenFile>();
  /** Every file from its first open until it is retired or let go (what holds chunks). */
  private readonly live = new Set<OpenFile>();
  /** Files removed while open, by their hidden name (isHiddenName). */
  private readonly hiddenNames = new Map<string, OpenFile>();
  private nextHandle = 1;
  /** Bumped by every unlink and rename: an open that loaded an entry meanwhile loads it again. */
  private generation = 0;
  /** How a file's commits persist (set by the mount once its context exists): used for commits forced by memory pressure. */
  persistFor?: (file: OpenFile) => Persist;

  constructor(private readonly deps: SequencerDeps) {}

  get(path: string): OpenFile | undefined {
    return this.byPath.get(path);
  }

  handle(fh: number): OpenFile | undefined {
    return this.byHandle.get(fh);
  }

  all(): OpenFile[] {
    return [...this.byPath.values()];
  }

  /** Every Sequencer alive: open, committing, or removed while open and not yet let go. */
  *sequencers(): Iterable<Sequencer> {
    for (const file of this.live) yield file.seq;
  }

  /** A file nothing reaches any more (removed, and its last handle closed) is gone for good. */
  forget(file: OpenFile): void {
    if (this.byPath.get(file.path) === file) this.byPath.delete(file.path);
    if (file.link !== undefined && this.byLink.get(file.link) === file) this.byLink.delete(file.link);
    if (file.hiddenAs !== undefined) this.unhide(file.hiddenAs);
    this.live.delete(file);
  }

  /** A removed file that libfuse now names `name` (isHiddenName). */
  hide(name: string, file: OpenFile): void {
    this.hiddenNames.set(name, file);
    file.hiddenAs = name;
  }

  hidden(path: string): OpenFile | undefined {
    return this.hiddenNames.size === 0 ? undefined : this.hiddenNames.get(path);
  }

  /** The hidden names in directory `dir` (names only: they live in memory, not in the vault). */
  hiddenIn(dir: string): string[] {
    const prefix = dir === '/' ? '/' : `${dir}/`;
    return [...this.hiddenNames.keys()].filter((p) => p.startsWith(prefix) && !p.includes('/', prefix.length)).map((p) => p.slice(prefix.length));
  }

  /** Drop a hidden name (libfuse removes it after the last close); the file if there was one. */
  unhide(name: string): OpenFile | undefined {
    const file = this.hiddenNames.get(name);
    if (file) {
      this.hiddenNames.delete(name);
      file.hiddenAs = undefined;
    }
    return file;
  }

  /**
   * A new handle on `path`, sharing the file's Sequencer when it is already open (by this name, or by another
   * name of hard-link record `link`, when the caller knows it already).
   */
  open(path: string, load: () => Promise<LoadedFile>, link?: number): Promise<number> {
    return this.acquire(path, load, link).then((file) => {
      const fh = this.reserveHandle();
      this.byHandle.set(fh, file);
      return fh;
    });
  }

  /** A handle number of its own, for a create the FUSE binding answers (held-creates.ts): adopt() registers it. */
  reserveHandle(): number {
    const fh = this.nextHandle++;
    if (this.nextHandle > 0x7fffffff) this.nextHandle = 1;
    return fh;
  }

  /** Reserved handle `fh` of `path`, just created (with `loaded` as its entry) by the binding: as open() leaves it. */
  adopt(fh: number, path: string, loaded: LoadedFile): OpenFile {
    const file = this.byPath.get(path) ?? this.register(path, loaded);
    file.handles++;
    this.byHandle.set(fh, file);
    return file;
  }

  /** The open file for `path`, opening it (without a handle) if needed; pair with `unref`. */
  async acquire(path: string, load: () => Promise<LoadedFile>, link?: number): Promise<OpenFile> {
    let file = this.byPath.get(path) ?? this.linked(link);
    if (!file) {
      // An unlink, rename or link(2) that lands while the entry loads may have replaced it or made it a
      // hard-link record's (then shared with opens by the other names): load again.
      let loaded: LoadedFile;
      for (let seen = -1; seen !== this.generation; ) {
        seen = this.generation;
        loaded = await load();
      }
      link = loaded!.link;
      file = this.byPath.get(path) ?? this.linked(link) ?? this.register(path, loaded!); // another open may have won the race
    }
    file.handles++;
    return file;
  }

  /** A file opened now, of no handle yet. */
  private register(path: string, loaded: LoadedFile): OpenFile {
    const file: OpenFile = { path, seq: new Sequencer(loaded.entry, this.deps), handles: 0, link: loaded.link };
    file.seq.persist = this.persistFor?.(file);
    this.byPath.set(path, file);
    if (loaded.link !== undefined) this.byLink.set(loaded.link, file);
    this.live.add(file);
    return file;
  }

  /** The open file `path` reaches: opened by that name, or by another name of its hard-link record `link`. */
  ofName(path: string, link: number | undefined): OpenFile | undefined {
    return this.byPath.get(path) ?? this.linked(link);
  }

  /** The open file of hard-link record `link`, by whichever name it was opened. */
  byRecord(link: number): OpenFile | undefined {
    return this.byLink.get(link);
  }

  private linked(link: number | undefined): OpenFile | undefined {
    return link === undefined ? undefined : this.byRecord(link);
  }

  /**
   * link(2) made `from` a name of hard-link record `link`: a file open by it shares it with opens by the other
   * names from now on, and an open still loading `from` loads again (acquire).
   */
  linkMade(from: string, link: number): void {
    this.generation++;
    const file = this.byPath.get(from);
    if (file && file.link === undefined) {
      file.link = link;
      this.byLink.set(link, file);
    }
  }

  /** Drop a handle; returns its file (still registered: see `retire`). */
  closeHandle(fh: number): OpenFile | undefined {
    const file = this.byHandle.get(fh);
    if (!file) return undefined;
    this.byHandle.delete(fh);
    file.handles--;
    return file;
  }

  /** Drop a reference taken by `acquire`. */
  unref(file: OpenFile): void {
    file.handles--;
    this.retire(file);
  }

  /** Forget a file nobody has open once it has nothing left to commit. */
  retire(file: OpenFile): void {
    if (file.handles > 0 || file.seq.isDirty || (!file.path && file.link === undefined)) return;
    this.forget(file);
  }

  /** Files no handle has open whose last commit failed: retried by the mount. */
  unsaved(): OpenFile[] {
    return this.all().filter((f) => f.handles === 0 && f.seq.isDirty);
  }

  /** Follow a rename of a file or a directory. */
  rename(from: string, to: string): void {
    this.generation++;
    const moved: OpenFile[] = [];
    for (const [path, file] of this.byPath) {
      if (path === from || path.startsWith(from + '/')) {
        this.byPath.delete(path);
        file.path = to + path.slice(from.length);
        moved.push(file);
      }
    }
    for (const file of moved) this.byPath.set(file.path, file);
  }

  /**
   * Forget a path that was removed (its open handles keep their content until released); its open file. A
   * linked file with names left (`lastName` false) still commits to its record; one whose last name went has
   * nowhere to.
   */
  detach(path: string, link?: number, lastName = true): OpenFile | undefined {
    this.generation++;
    let file = this.byPath.get(path);
    if (file) {
      this.byPath.delete(path);
      file.path = '';
    }
    if (!lastName) return file;
    file ??= this.linked(link);
    if (file?.link !== undefined) {
      this.byLink.delete(file.link);
      file.link = undefined;
      if (this.byPath.get(file.path) === file) this.byPath.delete(file.path);
      file.path = '';
    }
    return file;
  }
}
