/**
 * A bounded set of background tasks: `run` waits for a free slot and starts the task without waiting for it,
 * which bounds how much data the streaming pipelines hold (a few chunks, whatever the file size).
 * The first failure is kept: later `run` calls and `drain` throw it, so a pipeline stops at its first error.
 */
export class TaskWindow {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`window size must be at least 1, got ${size}`);
  }

  async run(task: () => Promise<void>): Promise<void> {
    this.throwIfFailed();
    while (this.active >= this.size) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.throwIfFailed();
    }
    this.active++;
    const p = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.active--;
        this.running.delete(p);
        // After a failure every waiter must wake up to see it; otherwise one slot frees one waiter.
        if (this.failure) this.waiters.splice(0).forEach((wake) => wake());
        else this.waiters.shift()?.();
      });
    this.running.add(p);
  }

  /** Wait for every started task; throws the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    this.throwIfFailed();
  }

  /** Wait for every started task, ignoring failures: used before rethrowing so nothing runs on after an error. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** A promise with its resolve/reject at hand; a rejection nobody awaited is not reported as unhandled. */
export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => {});
  }
}
