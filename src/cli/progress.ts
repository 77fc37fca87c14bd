/** A progress line on stderr for long operations, shown only when stderr is a terminal (never in logs or pipes). */
const MiB = 1024 * 1024;

export interface ProgressLine {
  update(done: number, total: number): void;
  /** Clear the line (call before printing anything else to stderr). */
  end(): void;
}

export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  if (!stream.isTTY) return { update() {}, end() {} };
  const started = Date.now();
  let last = 0;
  let shown = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return; // at most ten redraws a second
      last = now;
      shown = true;
      const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
      const rate = done / MiB / Math.max(0.001, (now - started) / 1000);
      stream.write(`\r\x1b[K${label}: ${pct}% (${(done / MiB).toFixed(1)} of ${(total / MiB).toFixed(1)} MiB, ${rate.toFixed(0)} MiB/s)`);
    },
    end() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
