/**
 * CPU time of processes from /proc (user + system, all threads), for the S3 bench: on a machine whose cores
 * are all busy, throughput follows CPU per byte, so the bench reports it beside MB/s.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** CPU ms a process has used so far (0 when it is gone). */
export function processCpuMs(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** Pids of the processes named exactly `names` (pgrep -x). */
export function pidsNamed(...names: string[]): number[] {
  return names.flatMap((name) => {
    try {
      return execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

export const cpuMsOf = (pids: number[]): number => pids.reduce((sum, pid) => sum + processCpuMs(pid), 0);

/**
 * Follows a process's CPU time until it exits (its last reading stays): a daemon that ends at unmount takes its
 * counters with it. Read every 100 ms, so the last 100 ms at most are missed.
 */
export function followCpu(pid: number): { ms: () => number; stop: () => void } {
  let last = processCpuMs(pid);
  const timer = setInterval(() => {
    const now = processCpuMs(pid);
    if (now > 0) last = now;
  }, 100);
  return { ms: () => last, stop: () => clearInterval(timer) };
}
