#!/usr/bin/env -S npx tsx
/**
 * Power-loss test, for manual runs with more cuts than the test suite's (native-notes/power-loss.md).
 *
 *   npx tsx scripts/power-loss.ts [--dir D] [--rounds 3] [--cuts 1000] [--seed 1] [--mounts 6]
 *       record the workload through a real mount (ROUNDS repetitions of its rewrite steps) into D (default: a
 *       temp directory, kept), then check CUTS cut points under every crash model and variant, and MOUNTS of
 *       them also through a real mount of the state written out
 *   npx tsx scripts/power-loss.ts --recheck D [--cuts N] [--seed S]
 *       check an earlier recording again (the recording is what makes a failure reproducible: the daemon's
 *       threads order their operations differently on every run)
 *   npx tsx scripts/power-loss.ts --recheck D --cut C --model posix --variant lost [--pin EVENT] [--seed S] [--out DIR] [--log]
 *       one crash state: its violations, its files, optionally written out as a vault in DIR (mount it with
 *       sefs mount DIR/vault M) and the log up to the cut
 * Needs npm run build, a C compiler and /dev/fuse. Exit status 1 when a violation is found.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { StateReader, checkState } from '../test/power-loss/check.js';
import type { Model, Variant } from '../test/power-loss/model.js';
import { describe } from '../test/power-loss/oplog.js';
import { COMBOS, check, chooseCuts, compareWithDisk, disagreements, formatReport, load, materialize, mountCheck, record } from '../test/power-loss/run.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    cuts: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    mounts: { type: 'string', default: '6' },
    recheck: { type: 'string' },
    cut: { type: 'string' },
    model: { type: 'string', default: 'posix' },
    variant: { type: 'string', default: 'lost' },
    pin: { type: 'string' },
    out: { type: 'string' },
    log: { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed);

const rec = values.recheck
  ? load(values.recheck)
  : await record(values.dir ?? mkdtempSync(join(tmpdir(), 'sefs-power-loss-')), { rounds: Number(values.rounds), seed });
console.log(`recording: ${rec.dir}`);
const drift = compareWithDisk(rec);
if (drift.length) {
  console.log(`THE MODEL DOES NOT MATCH THE VAULT ON DISK (a missed or misread operation):\n  ${drift.join('\n  ')}`);
  process.exit(2);
}

if (values.cut) {
  const state = rec.history.crash({ cut: Number(values.cut), model: values.model as Model, variant: values.variant as Variant, seed, pin: values.pin === undefined ? undefined : Number(values.pin) });
  const { violations, reads } = await checkState(state, rec.steps, new StateReader());
  for (const [file, r] of reads) console.log(`${file}: ${r.state === 'error' ? r.error : r.state === 'absent' ? 'absent' : `${r.size} bytes ${r.state.slice(0, 12)}`}`);
  for (const v of violations) console.log(`VIOLATION ${v.file}: got ${v.got}\n  cause: ${v.cause}\n  allowed: ${v.allowed.join(' | ')}\n  ${v.why.join('\n  ')}`);
  if (values.log) for (const r of rec.history.records) if (r.seq < state.spec.cut) console.log(describe(r, rec.vault));
  if (values.out) {
    materialize(state, join(values.out, 'vault'));
    console.log(`written to ${values.out}/vault`);
  }
  process.exit(violations.length ? 1 : 0);
}

const cuts = chooseCuts(rec.history, Number(values.cuts), seed);
const report = await check(rec, cuts, { seed, pinCommits: ['posix', 'journal'] });
console.log(formatReport(rec, report));

// A few states through a real mount: the first state of each violation group, then spread cuts.
const mounts = Number(values.mounts);
const picks = [...report.groups.values()].slice(0, Math.ceil(mounts / 2)).map((g) => ({ cut: g.first.cut, model: g.first.model as Model, variant: g.first.variant as Variant, pin: g.first.pin }));
for (let i = 0; picks.length < mounts && i < mounts; i++) {
  const combo = COMBOS[i % COMBOS.length]!;
  picks.push({ cut: cuts[Math.floor(((i + 1) * cuts.length) / (mounts + 1))]!, ...combo, pin: undefined });
}
let disagreementCount = 0;
const files = [...new Set(rec.steps.flatMap((s) => Object.keys(s.files)))];
for (const [i, pick] of picks.slice(0, mounts).entries()) {
  const state = rec.history.crash({ ...pick, seed });
  const lib = (await checkState(state, rec.steps, new StateReader())).reads;
  const viaMount = await mountCheck(state, join(rec.dir, `mount-check-${i}`), files);
  for (const d of disagreements(`cut ${pick.cut} ${pick.model}/${pick.variant}`, lib, viaMount)) {
    disagreementCount++;
    console.log(`MOUNT/FSCK DISAGREE: ${d}`);
  }
  console.log(`mount check ${i + 1}: cut ${pick.cut} ${pick.model}/${pick.variant}: fsck damaged [${viaMount.fsckDamaged.join(', ')}]; ${[...viaMount.reads].map(([f, r]) => `${f}=${r.state === 'error' ? r.error : r.state.slice(0, 8)}`).join(' ')}`);
}
process.exit(report.violations.length || disagreementCount ? 1 : 0);
