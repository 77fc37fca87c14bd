/**
 * gc: mark every chunk any metadata entry names, sweep the chunk files no entry names whose mtime is older
 * than the grace period.
 *
 * Safe beside a live mount:
 *   - chunks a mount stages for writes not yet committed are temp files (never listed), or chunk files
 *     written moments ago: the grace period keeps them until the commit names them;
 *   - an entry moved (renamed) from a directory not yet walked into one already walked would escape a
 *     single walk, so the walk is repeated over what changed since the previous one (a rename updates the
 *     ctime of what it moves and the mtime of both directories) until a pass finds nothing new;
 *   - chunk directories are never removed (a mount creates a chunk's directory only once).
 * An entry that cannot be read may name chunks we cannot see: gc then deletes nothing.
 * An S3 vault's chunks are its bucket's objects under its prefix and its cache's files: both are swept (the
 * bucket's with batched DeleteObjects); an object's age is its upload time.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { SefsError } from '../core/errors.js';
import { type OpenedVault, census, vaultChunks } from './walk.js';
import { atNameSync } from './safe-fs.js';

export interface GcOptions {
  /** Unreferenced chunks younger than this are kept (default 60 minutes). */
  graceMs?: number;
  dryRun?: boolean;
}

export interface GcReport {
  dryRun: boolean;
  graceMs: number;
  /** Chunk files seen, and how many entries name. */
  chunks: number;
  referenced: number;
  /** Unreferenced chunks removed (or, with dryRun, that would be) and their bytes. */
  sweptChunks: number;
  freedBytes: number;
  /** Unreferenced chunks kept for being younger than the grace period. */
  youngChunks: number;
  youngBytes: number;
  /** Walks of meta/ it took to see no change. */
  passes: number;
  seconds: number;
}

export const DEFAULT_GRACE_MS = 60 * 60 * 1000;
/** Walks after the first, at most, before sweeping anyway (a vault written without pause never settles). */
const MAX_RECHECKS = 4;
/** File times may lag the clock by a timer tick: count a little before a pass as during it. */
const CLOCK_SLACK_MS = 2000;

export class GcRefused extends SefsError {
  constructor(message: string) {
    super('GcRefused', message);
  }
}

export async function collectGarbage(vault: OpenedVault, options: GcOptions = {}): Promise<GcReport> {
  const started = Date.now();
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const dryRun = options.dryRun ?? false;
  const report: GcReport = { dryRun, graceMs, chunks: 0, referenced: 0, sweptChunks: 0, freedBytes: 0, youngChunks: 0, youngBytes: 0, passes: 1, seconds: 0 };

  // Mark.
  const first = census(vault);
  if (first.damaged.length > 0) {
    const list = first.damaged.slice(0, 3).map((n) => `${n.path}: ${n.error}`).join('; ');
    throw new GcRefused(`${first.damaged.length} metadata entries cannot be read (${list}); run sefs fsck. Nothing was deleted`);
  }
  const marked = first.referenced;

  // Candidates: unreferenced and older than the grace period (measured from the start of the mark).
  const cutoff = started - graceMs;
  const candidates = new Map<string, number>();
  /** An S3 vault's candidates in its bucket (deleted there in batches). */
  const inBucket = new Set<string>();
  for await (const chunk of vaultChunks(vault)) {
    report.chunks++;
    if (marked.has(chunk.hex)) report.referenced++;
    else if (chunk.mtimeMs < cutoff) {
      candidates.set(chunk.hex, chunk.size);
      if (chunk.inBucket) inBucket.add(chunk.hex);
    }
    else {
      report.youngChunks++;
      report.youngBytes += chunk.size;
    }
  }

  // Re-mark what changed in meta/ since the previous pass began, until a pass finds nothing changed.
  let since = started - CLOCK_SLACK_MS;
  for (let pass = 0; pass < MAX_RECHECKS && candidates.size > 0; pass++) {
    const passStart = Date.now() - CLOCK_SLACK_MS;
    let changed = 0;
    const again = census(vault, {
      // A moved directory has a new ctime (and then all below it is read); a file created, rewritten or
      // moved has a new ctime, and so has the directory it went into a new mtime.
      select: (st, parent) => {
        const yes = st.ctimeMs >= since || (!st.isDirectory() && parent.mtimeMs >= since);
        if (yes) changed++;
        return yes;
      },
    });
    report.passes++;
    if (again.damaged.length > 0) throw new GcRefused(`a metadata entry became unreadable during gc (${again.damaged[0]!.path}); nothing was deleted`);
    for (const hex of again.referenced.keys()) {
      if (candidates.delete(hex)) report.referenced++;
    }
    if (changed === 0) break;
    since = passStart;
  }

  // Sweep (synchronous calls, as the walk: see vault-walk.ts); an S3 vault's bucket objects after their files.
  const bucketDoomed: string[] = [];
  for (const [hex, size] of candidates) {
    const path = vault.store.pathOf(hex);
    try {
      if (!existsSync(path) && inBucket.has(hex)) {
        bucketDoomed.push(hex);
        report.sweptChunks++;
        report.freedBytes += size;
        continue;
      }
      // Through the checked chunk directory: a link planted in the fan-out never leads the sweep elsewhere.
      const st = atNameSync(path, vault.store.area, (p) => lstatSync(p));
      if (st.mtimeMs >= cutoff) {
        report.youngChunks++;
        report.youngBytes += size;
        continue;
      }
      if (!dryRun) atNameSync(path, vault.store.area, (p) => unlinkSync(p));
      if (inBucket.has(hex)) bucketDoomed.push(hex);
      report.sweptChunks++;
      report.freedBytes += st.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // else gone already (another gc)
    }
  }
  if (!dryRun && bucketDoomed.length > 0) await vault.remote!.deleteMany(bucketDoomed);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
