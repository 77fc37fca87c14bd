/**
 * Write-back of closed files. The release of a changed file's handle queues its commit instead of
 * waiting for it: POSIX makes data durable at fsync(2), not at close, and ext4 or gocryptfs's backing
 * files write back later too. The file stays registered (OpenFiles) until its commit lands, so every open,
 * read and stat meanwhile sees the new content, and a rename or unlink meanwhile moves or drops it.
 *
 * Commits run several at once: their fsyncs overlap and share the host journal's commits (one commit per
 * close, each waiting for its own fsyncs, cost about 8 ms a file). While too many files are queued, the next
 * create or open for writing waits (room()), so the files held for them stay bounded; their plaintext is
 * bounded by the writes' memory budget (memory-budget.ts). The release that queues a file never waits: the
 * kernel sends releases in the background, in slots that readahead shares. A failed commit
 * keeps the file's changes, to be retried by the session (session.ts); fsync(2) still commits at once and
 * reports the error.
 */
import type { Logger } from './errno.js';
import type { OpenFile } from './open-files.js';

/** How long a closed file waits for others to share its batch (the host journal commits once for a batch). */
const WINDOW_MS = 100;
/** Commits of a batch running at once. */
const CONCURRENCY = 32;
/** Files queued before a create or an open for writing waits for room. */
const MAX_QUEUED = 1024;

export class Writeback {
  private queue: OpenFile[] = [];
  private readonly queued = new Set<OpenFile>();
  /** The files of the running batch whose commit has not ended yet. */
  private readonly committing = new Set<OpenFile>();
  /** The batch being committed, if any. */
  private batch: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    /** Commit one file; settles when done (errors are this function's to report). */
    private readonly commit: (file: OpenFile) => Promise<void>,
    private readonly log: Logger,
    /** Whether the daemon holds more plaintext than its budget: then a batch starts without waiting. */
    private readonly pressed: () => boolean = () => false,
  ) {}

  /**
   * Queue `file`'s commit (once however often it is asked). Never waits: a release, which the kernel sends in
   * the background, must not hold one of its few background slots (readahead shares them) while commits drain;
   * writers wait for room() where they start a file instead.
   */
  enqueue(file: OpenFile): void {
    if (!this.queued.has(file)) {
      this.queued.add(file);
      this.queue.push(file);
      this.schedule(this.urgent() ? 0 : WINDOW_MS);
    }
  }

  /** Resolves once the queue is not full: a create, or an open for writing, waits here (a foreground request). */
  async room(): Promise<void> {
    while (this.queue.length > MAX_QUEUED) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** Whether `n` more files fit in the queue before creates wait (held-creates.ts prepares no more than that). */
  roomFor(n: number): boolean {
    return this.queue.length + n <= MAX_QUEUED;
  }

  /** Whether `file`'s commit is queued or running (the session's retries leave it to its batch). */
  has(file: OpenFile): boolean {
    return this.queued.has(file) || this.committing.has(file);
  }

  /** Files queued or being committed. */
  get pending(): number {
    return this.queue.length + (this.batch ? 1 : 0);
  }

  /** Commit what is queued now, without waiting for the window, and settle once nothing is left (unmount, tests). */
  async idle(): Promise<void> {
    while (this.pending > 0) {
      this.schedule(0);
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /** A long queue, or memory over budget: the next batch starts at once. */
  private urgent(): boolean {
    return this.queue.length >= MAX_QUEUED / 2 || this.pressed();
  }

  /** Start the next batch after `ms` (sooner if asked sooner), unless one is running: it starts the next itself. */
  private schedule(ms: number): void {
    if (this.batch) return;
    if (this.timer && ms > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.batch = this.runBatch().finally(() => {
        this.batch = undefined;
        if (this.queue.length > 0) this.schedule(this.urgent() ? 0 : WINDOW_MS);
        else for (const wake of this.idleWaiters.splice(0)) wake();
      });
    }, ms);
  }

  /** Commit every queued file, a bounded number at once: their fsyncs overlap and share the journal's commits. */
  private async runBatch(): Promise<void> {
    const files = this.queue;
    this.queue = [];
    for (const file of files) {
      this.queued.delete(file);
      this.committing.add(file);
    }
    for (const wake of this.roomWaiters.splice(0)) wake();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const file = files[next++]!;
        await this.commit(file).catch((err: Error) => this.log(`BUG: write-back of ${file.path} threw: ${err.stack ?? err.message}`));
        this.committing.delete(file);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }
}
