/**
 * Injected store failures, for the tests that drive a real mount into them (test/fuse/faults.test.ts).
 * Off unless the daemon's environment names a plan file (SEFS_FAULT_PLAN); the plan is re-read whenever it
 * changes, so a test switches faults on and off while the mount runs:
 *   {"op": "write" | "fsync" | "rename", "errno": "EIO" | "ENOSPC" | ..., "skip": N, "count": M}
 * fails the (N+1)th to (N+M)th such operation of the disk store with that errno. No file: no faults.
 */
import { statSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';

export type FaultOp = 'write' | 'fsync' | 'rename';

interface Plan {
  op: FaultOp;
  errno: keyof typeof constants.errno;
  skip: number;
  count: number;
}

export class FaultPlan {
  private plan: Plan | undefined;
  private version = '';
  private seen = 0;

  constructor(private readonly file: string) {}

  /** The plan in the environment, if any. */
  static fromEnv(): FaultPlan | undefined {
    const file = process.env.SEFS_FAULT_PLAN;
    return file ? new FaultPlan(file) : undefined;
  }

  /** Throw the planned error if this operation is one the plan fails. */
  check(op: FaultOp, what: string): void {
    this.reload();
    const plan = this.plan;
    if (!plan || plan.op !== op) return;
    const n = this.seen++;
    if (n < plan.skip || n >= plan.skip + plan.count) return;
    const err = new Error(`${plan.errno}: injected fault, ${op} ${what}`) as NodeJS.ErrnoException;
    err.code = plan.errno;
    err.errno = -constants.errno[plan.errno];
    throw err;
  }

  private reload(): void {
    let version = '';
    try {
      const st = statSync(this.file);
      version = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      version = 'none';
    }
    if (version === this.version) return;
    this.version = version;
    this.seen = 0;
    this.plan = version === 'none' ? undefined : (JSON.parse(readFileSync(this.file, 'utf8')) as Plan);
  }
}
