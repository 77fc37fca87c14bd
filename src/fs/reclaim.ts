/**
 * Space that comes back by itself: chunks no entry names any more are removed a moment after the commit or
 * removal that dropped them, without waiting for `sefs gc`.
 *
 * The mount keeps, in memory, how many entries name each chunk (vault/references.ts, counted from meta/ in the
 * background once the mount serves: session.ts). Until that count is whole nothing is removed; commits and
 * removals meanwhile add what they name and propose what they drop, but take nothing off, since the count may
 * or may not include what they replaced (a chunk counted twice is kept a session longer, never lost). Each
 * commit and each removal of a file turns the chunks it dropped into candidates; a sweep,
 * a few seconds later, removes the candidates that no entry names and no open file holds (an open file holds
 * its committed chunks and the chunks it stored for changes not yet committed). A removal's candidates wait
 * until their directory has been fsynced, so a power loss cannot bring back an entry whose chunks are gone.
 * After a crash the index is simply counted again, and the sweep after the count removes what a crash left unreferenced.
 * A writer that finds a chunk already stored re-checks it after holding it (Sequencer.encryptAndStore,
 * DiskStore.stillThere), so a sweep racing a dedup hit costs a rewrite, never the chunk.
 */
import { dirname } from 'node:path';
import type { ChunkStore } from '../store/chunk-store.js';
import { fsyncRemoval } from '../store/dir-syncs.js';
import { type MetaEntry, entryChunkNames } from '../vault/meta-entry.js';
import { ChunkReferences } from '../vault/references.js';
import type { Logger } from './errno.js';
import type { CommitOutcome, Sequencer } from './sequencer.js';

/** How long after the last change a sweep runs: commits in a burst share one sweep. */
const SWEEP_DELAY_MS = 1500;
/** Candidates still held by an open file are looked at again this often. */
const HELD_RETRY_MS = 10_000;
/** SEFS_TRACE_RECLAIM=1 logs every chunk the mount removes (for debugging). */
const TRACE = process.env.SEFS_TRACE_RECLAIM === '1';

/** What a whole-store sweep found and did. */
export interface FullSweep {
  chunks: number;
  referenced: number;
  /** Unreferenced chunks an open file holds for changes not yet committed. */
  held: number;
  heldBytes: number;
  swept: number;
  freedBytes: number;
}

export class Reclaimer {
  /**
   * Chunks that may have lost their last reference: hex -> a fresh record per proposal, so a sweep can tell
   * a candidate proposed again while it ran (its removal's directory may not be synced yet) from its own.
   */
  private readonly candidates = new Map<string, { name: Buffer }>();
  /** Directories whose removals must be durable before their candidates go. */
  private readonly dirsToSync = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  removedChunks = 0;
  /** The index is being counted (or could not be: damaged entries): nothing is removed, nothing taken off. */
  private counting = true;
  private readonly whole: Promise<void>;
  private wholeNow!: () => void;
  /** Unmounting: a count still running stops. */
  stopped = false;
  /** Why the count could not be made: nothing is removed, and nothing kept for it, in this session. */
  private uncounted: string | undefined;
  /** The sweep that follows the count, while it runs (an unmount waits for it). */
  private firstSweep: Promise<unknown> | undefined;

  constructor(
    private refs: ChunkReferences,
    private readonly store: ChunkStore,
    private readonly openFiles: () => Iterable<Sequencer>,
    private readonly log: Logger,
    /** fsync of a directory of meta/ (the directories removals are in). */
    private readonly fsyncDir: (dir: string) => Promise<void>,
    /** Every chunk of the store (a local one is listed synchronously: it runs in the daemon on request only). */
    private readonly listChunks: () => Iterable<{ hex: string; size: number }> | AsyncIterable<{ hex: string; size: number }>,
    private readonly delayMs = SWEEP_DELAY_MS,
  ) {
    this.whole = new Promise((resolve) => (this.wholeNow = resolve));
  }

  /** A count starts (again) into `refs`: what commits name from now on is added there. */
  countingInto(refs: ChunkReferences): void {
    this.refs = refs;
  }

  /** The count cannot be made (`why`, for `sefs gc`): nothing is removed in this session. */
  cannotCount(why: string): void {
    if (!this.counting) return;
    this.uncounted = why;
    this.candidates.clear();
    this.dirsToSync.clear();
    this.refs = new ChunkReferences(); // what commits name is no longer kept (it would only grow)
    this.wholeNow();
  }

  /**
   * The count is whole: chunks from now on go when nothing names or holds them, starting with the chunk files
   * of `localChunks` none names (what a crash left behind). How many were removed.
   */
  async counted(localChunks: () => Iterable<{ hex: string; size: number }>): Promise<number> {
    this.counting = false;
    this.wholeNow();
    this.firstSweep = this.sweepAll(false, localChunks);
    try {
      return ((await this.firstSweep) as FullSweep).swept;
    } catch (err) {
      // Space still comes back as files change; what a crash left waits for the next mount or sefs gc.
      this.log(`removing the chunks no file names after counting: ${(err as Error).message}`);
      return 0;
    } finally {
      this.firstSweep = undefined;
      this.schedule();
    }
  }

  /** A commit finished: count its new entry, drop its old one, and consider what it no longer names. */
  committed({ previous, nextNames, stored, persisted, dir }: CommitOutcome): void {
    if (this.uncounted) return;
    if (dir) this.dirsToSync.add(dir);
    if (persisted) {
      const previousNames = entryChunkNames(previous);
      this.refs.add(nextNames.keys());
      if (!this.counting) this.refs.remove(previousNames.keys());
      for (const [hex, name] of previousNames) if (!nextNames.has(hex)) this.propose(hex, name);
    } else {
      for (const [hex, name] of nextNames) this.propose(hex, name);
    }
    for (const hex of stored) if (!persisted || !nextNames.has(hex)) this.propose(hex, Buffer.from(hex, 'hex'));
    this.schedule();
  }

  private propose(hex: string, name: Buffer): void {
    this.candidates.set(hex, { name });
  }

  /** A file's entry was removed from `dir` (unlink, or a rename over it). */
  removed(entry: MetaEntry, dir: string): void {
    const names = entryChunkNames(entry);
    if (names.size === 0 || this.uncounted) return;
    if (!this.counting) this.refs.remove(names.keys());
    for (const [hex, name] of names) this.propose(hex, name);
    this.dirsToSync.add(dir);
    this.schedule();
  }

  /** Chunks stored for changes that will never be committed (their file was removed while closed). */
  abandoned(stored: Set<string>): void {
    if (this.uncounted) return;
    for (const hex of stored) this.propose(hex, Buffer.from(hex, 'hex'));
    this.schedule();
  }

  /** Something that held chunks let go of them (a file closed): look again soon. */
  released(): void {
    if (this.candidates.size > 0) this.schedule();
  }

  private schedule(delayMs = this.delayMs): void {
    if (this.timer || this.counting || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A sweep running now may have missed what came meanwhile: one more after it.
      void this.sweep().then(() => {
        if (this.candidates.size > 0 || this.dirsToSync.size > 0) this.schedule();
      });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Make the removals and replacements known so far durable (fsync of their directories), so a power loss
   * cannot bring back an entry whose chunks a sweep then removes.
   */
  private async syncRemovals(): Promise<void> {
    const dirs = [...this.dirsToSync];
    this.dirsToSync.clear();
    const synced = await Promise.allSettled(dirs.map((dir) => fsyncRemoval(dir, this.fsyncDir)));
    const failed = synced.flatMap((r, i) => (r.status === 'rejected' ? [{ dir: dirs[i]!, err: r.reason as Error }] : []));
    if (failed.length > 0) {
      for (const { dir } of failed) this.dirsToSync.add(dir);
      throw failed[0]!.err;
    }
  }

  /** Remove the candidates nothing names or holds; failures are logged and retried by a later sweep. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    if (this.counting) return; // (an unmount during the count) what was dropped goes at the next mount's
    try {
      // Only the candidates known now: one that arrives during the fsyncs below waits for the next sweep,
      // since its removal's directory may not be among them.
      const due = [...this.candidates];
      await this.syncRemovals();
      const open = [...this.openFiles()];
      const decided: { hex: string; name: Buffer }[] = [];
      for (const [hex, proposal] of due) {
        const { name } = proposal;
        if (this.candidates.get(hex) !== proposal) continue; // proposed again meanwhile: the next sweep
        if (this.refs.has(hex)) {
          this.candidates.delete(hex); // named again: a later drop makes it a candidate again
          continue;
        }
        if (open.some((seq) => seq.holds(hex))) continue; // still held: the next sweep looks again
        // Decided and started in one turn of the event loop: a writer holding it from now on waits for it.
        this.candidates.delete(hex);
        decided.push({ hex, name });
      }
      await this.removeAll(decided);
      // Candidates still held by open files: look again a little later (a close also triggers a sweep).
      if (this.candidates.size > 0) this.schedule(HELD_RETRY_MS);
    } catch (err) {
      this.log(`reclaiming space: ${(err as Error).message} (will retry)`);
      this.schedule();
    }
  }

  /**
   * Mark and sweep the whole store at once (what `sefs gc` asks of a live mount): every chunk file that no
   * entry names and no open file holds is removed. Exact, so no grace period: the mount knows its writes.
   */
  async sweepAll(dryRun: boolean, list = this.listChunks): Promise<FullSweep> {
    await this.whole; // a mount still counting what its files name (session.ts) answers once it knows
    if (this.uncounted) throw new Error(this.uncounted);
    // Candidates go through the sweep that makes their removals durable first (a power loss must not bring back
    // an entry naming removed chunks); those it leaves (held, or proposed meanwhile) are not this sweep's to take.
    await this.sweep();
    const report: FullSweep = { chunks: 0, referenced: 0, held: 0, heldBytes: 0, swept: 0, freedBytes: 0 };
    const open = [...this.openFiles()];
    const doomed: { name: Buffer; size: number }[] = [];
    for await (const chunk of list()) {
      // A large store is listed in slices: FUSE requests are served in between.
      if (++report.chunks % 2000 === 0) await new Promise((r) => setImmediate(r));
      if (this.stopped) throw new Error('the mount is unmounting');
      if (this.refs.has(chunk.hex) || this.candidates.has(chunk.hex)) report.referenced++;
      else if (open.some((seq) => seq.holds(chunk.hex))) {
        report.held++;
        report.heldBytes += chunk.size;
      } else doomed.push({ name: Buffer.from(chunk.hex, 'hex'), size: chunk.size });
    }
    // Named or held since the listing (a commit, or a writer that found one of them stored): spare it.
    const now = [...this.openFiles()];
    const gone = doomed.filter(({ name }) => {
      const hex = name.toString('hex');
      return !now.some((seq) => seq.holds(hex)) && !this.refs.has(hex) && !this.candidates.has(hex);
    });
    for (const { size } of gone) {
      report.swept++;
      report.freedBytes += size;
    }
    if (dryRun) return report;
    await this.removeAll(gone.map(({ name }) => ({ hex: name.toString('hex'), name })));
    return report;
  }

  /** Remove decided chunks: in batches where the store has them (S3's DeleteObjects), else one by one. */
  private async removeAll(decided: { hex: string; name: Buffer }[]): Promise<void> {
    if (decided.length === 0) return;
    const failed = (err: Error, which: typeof decided): never => {
      for (const { hex, name } of which) this.propose(hex, name);
      throw err;
    };
    if (this.store.deleteMany) {
      if (TRACE) for (const { hex } of decided) this.log(`reclaim: removing chunk ${hex}`);
      await this.store.deleteMany(decided.map((d) => d.hex)).catch((err: Error) => failed(err, decided));
      this.removedChunks += decided.length;
      return;
    }
    await Promise.all(
      decided.map((d) =>
        this.remove(d.name).then(
          () => void this.removedChunks++,
          (err: Error) => failed(err, [d]),
        ),
      ),
    );
  }

  private remove(name: Buffer): Promise<void> {
    if (TRACE) this.log(`reclaim: removing chunk ${name.toString('hex')}`);
    return this.store.delete(name);
  }

  /** Run what is due now and stop the timer (unmount). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.counting) this.cannotCount('the mount is unmounting');
    await this.firstSweep?.catch(() => {});
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sweep();
    if (this.timer) clearTimeout(this.timer);
  }
}
