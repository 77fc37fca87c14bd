/**
 * Writes the FUSE binding holds for JS (fuse-native patch level 9): a write(2) to a handle JS has just created
 * is copied into a run in C and answered at once, without a round trip through the JS thread (for a small file
 * that cp, tar or an editor makes, one of its three: create, write, release).
 *
 * What keeps every byte where it belongs:
 * - JS takes every held run before it handles any request (settle, from the request handler of fuse-ops.ts)
 *   and before it commits at unmount, and applies them in the order they were held; so whatever JS answers or
 *   commits sees every write answered before, as if each had reached JS when it was answered. Takes are one at
 *   a time: a request that finds one running waits for it.
 * - A run is only ever the continuation of itself: a write elsewhere in the file goes to JS, after the run
 *   before it has been applied (the rule above), so the order of writes is kept.
 * - Only a handle that is its file's only one holds writes: the open of another handle ends the holding first
 *   (reads the binding answers for the other handle would not see held bytes), and so does the release.
 * - The binding drops a path's cached attributes when it holds a write to it, as a write request does (or, for a
 *   file it created, makes them what JS will show: patch level 12).
 * - Changes the binding answered (chmod, chown, utimens of a file it created, patch level 12) are taken before the
 *   runs and made after them: the binding seals a handle at its first change (later writes reach JS, which
 *   applies what it took first), so every run a change follows is applied before it.
 * The file's mtime is the moment of the last held write, not of its application.
 */
import type { FuseInstance } from './fuse-binding.js';
import type { Logger } from './errno.js';
import type { OpenFile, OpenFiles } from './open-files.js';
import type { HeldChange } from './ops-attr.js';
import { MAX_FILE_SIZE } from './sequencer.js';

/** What the patched binding offers for this (fuse-binding.ts, levels 9 and 12). */
export type HeldWriteBinding = Pick<FuseInstance, 'holdWrites' | 'heldRuns' | 'takeWrites' | 'endWrites' | 'takeChanges' | 'dropAttrs'>;

/** A run of held bytes: [fh, file offset, bytes, mtime in ms]. */
export type HeldRun = [number, number, Buffer, number];

export class HeldWrites {
  /** The handles holding writes, and their files. */
  private readonly holding = new Map<number, OpenFile>();
  /** The take being applied, if any: later requests wait for it. */
  private applying: Promise<void> | undefined;
  /**
   * Registers the creates the binding answered (held-creates.ts): called after each take. A handle's writes may
   * be held from its create on, and the binding records a create before answering it, so every run a take
   * returns belongs to a create recorded by then.
   */
  adoptCreates?: () => void;
  /** Makes a change the binding answered, as JS makes the request (ops-attr.ts applyHeldChange); whether it was made. */
  applyChange?: (change: HeldChange) => Promise<boolean>;

  constructor(
    private readonly binding: HeldWriteBinding,
    private readonly files: OpenFiles,
    private readonly log: Logger,
    /** How the log names a path (a sealed vault's log names no plaintext path). */
    private readonly logName: (path: string) => string,
  ) {}

  /** Hold the writes of handle `fh`, just created (before its create is answered: no write can come earlier). */
  hold(fh: number): void {
    const file = this.files.handle(fh);
    if (!file || file.handles !== 1) return;
    this.holding.set(fh, file);
    this.binding.holdWrites(fh, MAX_FILE_SIZE); // past it, JS answers EFBIG
  }

  /**
   * Handle `fh`, made by a create the binding answered (held-creates.ts), holds its writes there already: known
   * here from now on. Shared with another handle (not expected: its name was new), its holding ends now.
   */
  adoptHeld(fh: number): void {
    const file = this.files.handle(fh);
    if (!file) return;
    this.holding.set(fh, file);
    if (file.handles !== 1) void this.end({ fh });
  }

  /**
   * Whether a request must wait for held writes or changes to be applied first (cheap: asked before every
   * request; a change may outlive its handle's holding, so it is asked even when no handle holds).
   */
  get pending(): boolean {
    return this.applying !== undefined || this.binding.heldRuns() > 0;
  }

  /** Apply every run held now (and wait for one being applied); settles once they are in their files. */
  settle(): Promise<void> {
    this.applying ??= this.applyAll().finally(() => (this.applying = undefined));
    return this.applying;
  }

  /**
   * Stop holding writes for `file`'s handles (another handle opens it) or for handle `fh` (its release); what
   * they held is applied first.
   */
  async end(which: { file: OpenFile } | { fh: number }): Promise<void> {
    const fhs = 'fh' in which ? [which.fh] : [...this.holding].filter(([, file]) => file === which.file).map(([fh]) => fh);
    // Every release comes here: a handle that holds nothing costs no call into the binding.
    if (!fhs.some((fh) => this.holding.has(fh))) return;
    if (this.pending) await this.settle();
    for (const fh of fhs) {
      if (!this.holding.has(fh)) continue;
      const run = this.binding.endWrites(fh) as HeldRun | null;
      const file = this.holding.get(fh)!;
      this.holding.delete(fh);
      if (run) await this.apply(file, run);
    }
  }

  private async applyAll(): Promise<void> {
    const take = (): [HeldChange[], HeldRun[]] => {
      const changes = this.binding.takeChanges() as HeldChange[]; // first: the runs they follow are taken below
      const runs = this.binding.takeWrites() as HeldRun[];
      this.adoptCreates?.();
      return [changes, runs];
    };
    for (let [changes, runs] = take(); changes.length + runs.length > 0; [changes, runs] = take()) {
      for (const run of runs) {
        const file = this.holding.get(run[0]);
        if (file) await this.apply(file, run);
        else this.log(`BUG: the binding held writes for handle ${run[0]}, which holds none`);
      }
      for (const change of changes) {
        // Not made: the binding's attributes showing it go, so a stat asks JS (the log and the next fsync say why).
        if (!(await this.applyChange?.(change))) this.binding.dropAttrs(change[1]);
      }
    }
  }

  private async apply(file: OpenFile, [fh, offset, bytes, mtimeMs]: HeldRun): Promise<void> {
    try {
      await file.seq.write(offset, bytes);
      file.seq.modifiedAt = mtimeMs; // the write's moment, not this one (nothing has changed the file since)
    } catch (err) {
      // The writer was told it succeeded: the next fsync of the file reports this (and it is logged).
      file.heldWriteError ??= err as Error;
      this.log(`${bytes.length} bytes written at ${offset} through handle ${fh} of ${file.path ? this.logName(file.path) : '(removed file)'} could not be kept: ${(err as Error).message}`);
    }
  }
}
