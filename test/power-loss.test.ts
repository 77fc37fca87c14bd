/**
 * Power loss, not only SIGKILL (native-notes/power-loss.md). A workload runs through a real mount while an
 * LD_PRELOAD shim records every file operation the daemon (its worker threads included) makes on the vault;
 * then, for every cut point worth a look (after each fsync and rename, after each client step, and more),
 * the states a power loss there could leave are built under two crash models (POSIX: only what was fsynced,
 * directory by directory; journal: ext4 data=ordered-like, namespace operations in order) and several
 * variants of the unsynced writes (lost, kept, a prefix, a random subset, torn, zeros), and every file must
 * read, with the library, as its last synced/closed state or a state its step in flight may leave. Each
 * commit's rename of its entry into meta/ is also "pinned": the state where exactly that rename reached the
 * disk and nothing volatile else did must read, so a commit that puts its entry in place before what it
 * names is durable shows whenever the recording has it, not only when a random variant happens on it.
 * A few states are also written out, checked with sefs fsck --deep, mounted with sefs (its crash recovery runs)
 * and read through FUSE: both must see what the library sees.
 *
 * The longer run: npx tsx scripts/power-loss.ts (1000 cuts, 3 rounds of the workload). A failing run keeps its
 * recording and prints the command that replays one failing state.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateReader, checkState } from './power-loss/check.js';
import { History } from './power-loss/model.js';
import { OP, buildShim } from './power-loss/oplog.js';
import { type CheckReport, type Recorded, check, chooseCuts, compareWithDisk, disagreements, formatReport, mountCheck, record } from './power-loss/run.js';
import { fuseSuite, requireFuse } from './fuse/helpers.js';

fuseSuite();

let dir = '';
let rec: Recorded;
let cuts: number[] = [];
let failed = false;

/** Why the recording could not be made (each test then fails with it: loudly, never skipped). */
let setupError: Error | undefined;

beforeAll(async () => {
  try {
    // The test needs FUSE and a C compiler (for the shim).
    if (!existsSync('/dev/fuse') || !statSync('/dev/fuse').isCharacterDevice()) throw new Error('/dev/fuse is missing: FUSE is unavailable on this machine (run scripts/setup.sh as root)');
    requireFuse();
    dir = await mkdtemp(join(tmpdir(), 'sefs-power-loss-'));
    buildShim(dir); // throws, naming the package, without cc
    rec = await record(dir, { rounds: 1, seed: 1 });
    cuts = chooseCuts(rec.history, 100);
  } catch (err) {
    setupError = err as Error;
    failed = true;
  }
}, 300_000);

afterAll(async () => {
  if (!dir) return;
  if (setupError) process.stderr.write(`[power-loss] the recording failed; what it left is in ${dir} (vault/sefs.log has the daemon's log)\n`);
  else if (failed || process.env.SEFS_KEEP_TEST_DIRS) process.stderr.write(`[power-loss] recording kept in ${dir} (replay: npx tsx scripts/power-loss.ts --recheck ${dir})\n`);
  else await rm(dir, { recursive: true, force: true });
});

function expectClean(report: CheckReport): void {
  if (report.violations.length) failed = true;
  expect(report.violations.length, formatReport(rec, report)).toBe(0);
}

describe('power loss', () => {
  it('records every vault operation of the daemon, worker threads included, and replays them to the vault it left', () => {
    if (setupError) throw setupError;
    const h = rec.history;
    const chunkWriters = new Set(h.records.filter((r) => r.type === OP.WRITE && r.path.includes('/chunks/')).map((r) => r.tid));
    const daemonTids = new Set(h.records.filter((r) => r.type !== OP.MARK).map((r) => r.tid));
    expect(chunkWriters.size, 'chunk files are written by the worker threads').toBeGreaterThan(0);
    expect(daemonTids.size, 'libuv pool and worker threads both show').toBeGreaterThanOrEqual(3);
    expect(h.syncs.filter((s) => s.rec.isDir).length).toBeGreaterThan(0);
    expect(h.events.filter((e) => e.rec.type === OP.RENAME).length).toBeGreaterThan(10);
    expect(rec.steps.length).toBeGreaterThanOrEqual(15);
    // Every recorded operation applied gives the vault exactly as it is on disk: nothing was missed.
    expect(compareWithDisk(rec)).toEqual([]);
    expect(cuts.length).toBeGreaterThanOrEqual(100);
  });

  it('catches a daemon that skips an fsync (the same log with the chunk files\' fsyncs taken out)', async () => {
    if (setupError) throw setupError;
    const withoutChunkSyncs = rec.history.records.filter((r) => !(r.type === OP.FSYNC && !r.isDir && r.path.includes('/chunks/')));
    const broken = { ...rec, history: new History(rec.vault, rec.snapshot, withoutChunkSyncs) };
    const afterSteps = broken.history.marks.filter((m) => m.path.startsWith('D')).map((m) => m.seq + 1);
    const report = await check(broken, afterSteps, { combos: [{ model: 'journal', variant: 'lost' }] });
    const causes = [...report.groups.keys()];
    expect(causes.some((c) => c.startsWith('a chunk file whose bytes were not fsynced')), causes.join('\n')).toBe(true);
  });

  it('sefs fsck and a real mount of crash states (sefs runs its recovery) see what the library sees', async () => {
    if (setupError) throw setupError;
    const files = [...new Set(rec.steps.flatMap((s) => Object.keys(s.files)))];
    const afterSteps = rec.history.marks.filter((m) => m.path.startsWith('D')).map((m) => m.seq + 1);
    const picks = [
      { cut: afterSteps[2]!, model: 'posix' as const, variant: 'lost' as const },
      { cut: afterSteps[Math.floor(afterSteps.length / 2)]!, model: 'journal' as const, variant: 'lost' as const },
      { cut: cuts[Math.floor(cuts.length / 3)]!, model: 'posix' as const, variant: 'torn' as const },
      { cut: rec.history.end, model: 'posix' as const, variant: 'kept' as const },
    ];
    const problems: string[] = [];
    for (const [i, pick] of picks.entries()) {
      const state = rec.history.crash({ ...pick, seed: 1 });
      const lib = (await checkState(state, rec.steps, new StateReader())).reads;
      const viaMount = await mountCheck(state, join(dir, `mount-${i}`), files);
      problems.push(...disagreements(`cut ${pick.cut} ${pick.model}/${pick.variant}`, lib, viaMount));
      await rm(join(dir, `mount-${i}`), { recursive: true, force: true });
    }
    expect(problems).toEqual([]);
  });

  it('every file survives a power loss at every cut: journal model (ext4 data=ordered-like), all kept, torn', async () => {
    if (setupError) throw setupError;
    expectClean(
      await check(rec, cuts, {
        combos: [
          { model: 'journal', variant: 'lost' },
          { model: 'journal', variant: 'prefix' },
          { model: 'posix', variant: 'kept' },
          { model: 'posix', variant: 'torn' },
        ],
        pinCommits: ['journal'],
      }),
    );
  });

  it('every file survives a power loss at every cut: POSIX model (only what was fsynced, per file and per directory)', async () => {
    if (setupError) throw setupError;
    expectClean(
      await check(rec, cuts, {
        combos: [
          { model: 'posix', variant: 'lost' },
          { model: 'posix', variant: 'prefix' },
          { model: 'posix', variant: 'random' },
          { model: 'posix', variant: 'zeros' },
        ],
        pinCommits: ['posix'],
      }),
    );
  });
});
