/**
 * Open files: one Sequencer per file however many handles it has, so every handle sees one content.
 * Files are found by handle (fh) and by their current path (renames move them).
 */
import type { MetaEntry } from '../vault/meta-entry.js';
import { Sequencer, type SequencerDeps } from './sequencer.js';

export interface OpenFile {
  path: string;
  seq: Sequencer;
  handles: number;
  /** Times set by utimens while the file had uncommitted changes: applied by the commit (ms). */
  times?: { atime: number; mtime: number };
}

export class OpenFiles {
  private readonly byPath = new Map<string, OpenFile>();
  private readonly byHandle = new Map<number, OpenFile>();
  private nextHandle = 1;

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

  /** A new handle on `path`, sharing the file's Sequencer when it is already open. */
  open(path: string, entry: () => Promise<MetaEntry>): Promise<number> {
    return this.acquire(path, entry).then((file) => {
      const fh = this.nextHandle++;
      if (this.nextHandle > 0x7fffffff) this.nextHandle = 1;
      this.byHandle.set(fh, file);
      return fh;
    });
  }

  /** The open file for `path`, opening it (without a handle) if needed; pair with `unref`. */
  async acquire(path: string, entry: () => Promise<MetaEntry>): Promise<OpenFile> {
    let file = this.byPath.get(path);
    if (!file) {
      const loaded = await entry();
      file = this.byPath.get(path); // another open may have won the race
      if (!file) {
        file = { path, seq: new Sequencer(loaded, this.deps), handles: 0 };
        this.byPath.set(path, file);
      }
    }
    file.handles++;
    return file;
  }

  /** Drop a handle; returns its file. */
  closeHandle(fh: number): OpenFile | undefined {
    const file = this.byHandle.get(fh);
    if (!file) return undefined;
    this.byHandle.delete(fh);
    this.unref(file);
    return file;
  }

  unref(file: OpenFile): boolean {
    file.handles--;
    if (file.handles > 0) return false;
    if (this.byPath.get(file.path) === file) this.byPath.delete(file.path);
    return true;
  }

  /** Follow a rename of a file or a directory. */
  rename(from: string, to: string): void {
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

  /** Forget a path that was removed (its open handles keep their content until released). */
  detach(path: string): void {
    const file = this.byPath.get(path);
    if (file) {
      this.byPath.delete(path);
      file.path = '';
    }
  }
}
