/**
 * Where a FUSE request's time goes, per operation: count, and total and worst time from the moment the
 * handler is called on the daemon's JS thread until it answers. On with SEFS_TRACE_OPS=1; the table is
 * logged at unmount (and on SIGUSR1). What it cannot see: the kernel and libfuse's threads before the
 * handler runs, which is the rest of a round trip (native-notes/small-files.md).
 */
import type { AttrCacheStats, SlabReadStats, WriteStats } from './fuse-binding.js';

interface OpTimes {
  count: number;
  totalMs: number;
  worstMs: number;
}

export class OpTrace {
  private readonly ops = new Map<string, OpTimes>();

  static fromEnv(): OpTrace | undefined {
    return process.env.SEFS_TRACE_OPS === '1' ? new OpTrace() : undefined;
  }

  /** Start timing one request; call the result when it answers. */
  start(op: string): () => void {
    const t0 = performance.now();
    return () => {
      const ms = performance.now() - t0;
      let t = this.ops.get(op);
      if (!t) this.ops.set(op, (t = { count: 0, totalMs: 0, worstMs: 0 }));
      t.count++;
      t.totalMs += ms;
      t.worstMs = Math.max(t.worstMs, ms);
    };
  }

  /** One line per operation, the busiest first, then what the binding answered itself (getattrs from its cache). */
  report(attrs?: AttrCacheStats, reads?: SlabReadStats, writes?: WriteStats): string[] {
    const lines = [...this.ops]
      .sort((a, b) => b[1].totalMs - a[1].totalMs)
      .map(([op, t]) => `op ${op}: ${t.count} calls, ${t.totalMs.toFixed(0)} ms, mean ${((t.totalMs / t.count) * 1000).toFixed(0)} us, worst ${t.worstMs.toFixed(1)} ms`);
    if (attrs) lines.push(`attribute cache: ${attrs.hits} getattrs answered in the binding, ${attrs.misses} passed to JS; ${attrs.absent} lookups answered ENOENT from the names of ${attrs.dirs} directories (${attrs.given} listed by JS)`);
    if (reads) lines.push(`slab reads: ${reads.hits} reads answered in the binding, ${reads.misses} passed to JS`);
    if (writes) lines.push(`held writes: ${writes.held} writes of new files answered in the binding, ${writes.passed} passed to JS; ${writes.changed} chmod, chown and utimens of them answered in the binding`);
    return lines;
  }
}
