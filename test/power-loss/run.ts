/**
 * The power-loss test, end to end: record a workload through a real mount (record), then check many crash
 * states cut from the recording (check), a few of them also through a real mount of the state written out
 * (mountCheck). Used by test/power-loss.test.ts and scripts/power-loss.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync, chmodSync, symlinkSync } from 'node:fs';
import { lstat, open, readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ABSENT, type FileRead, StateReader, type Step, type Violation, checkState, loadSteps, logStats, sha256 } from './check.js';
import { type CrashSpec, type CrashState, History, type Model, type SnapshotEntry, type Variant, takeSnapshot } from './model.js';
import { buildShim, newRecording, parseLog, shimEnv } from './oplog.js';
import { alive, waitDead } from '../helpers/process.js';

const here = dirname(fileURLToPath(import.meta.url));
export const CLI = join(here, '../../dist/cli/main.js');
const CLIENT = join(here, 'client.mjs');

/** Crash models and variants checked at every cut: the POSIX model with every variant, the journal one with those it allows. */
export const COMBOS: { model: Model; variant: Variant }[] = [
  { model: 'posix', variant: 'lost' },
  { model: 'posix', variant: 'kept' },
  { model: 'posix', variant: 'prefix' },
  { model: 'posix', variant: 'random' },
  { model: 'posix', variant: 'torn' },
  { model: 'posix', variant: 'zeros' },
  { model: 'journal', variant: 'lost' },
  { model: 'journal', variant: 'prefix' },
];

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}\n${stdout}`));
      else resolve(stdout);
    });
  });
}


async function mounted(mnt: string): Promise<boolean> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[1] === mnt);
}

/** A mount of `vault` at `mnt` through the CLI (env: with or without the shim); returns the daemon's pid. */
async function mount(vault: string, mnt: string, env: NodeJS.ProcessEnv): Promise<number> {
  const out = await run(process.execPath, [CLI, 'mount', vault, mnt], env, 60_000);
  const pid = /daemon pid (\d+)/.exec(out);
  if (!pid) throw new Error(`sefs mount printed no daemon pid: ${out}`);
  return Number(pid[1]);
}

/** Unmount, whatever state the mount is in; kill the daemon (by its pid) only if it will not go. */
async function unmount(mnt: string, pid: number): Promise<void> {
  if (await mounted(mnt)) await run(process.execPath, [CLI, 'umount', mnt], process.env, 60_000).catch(() => {});
  if (pid && !(await waitDead(pid, 15_000))) {
    process.kill(pid, 'SIGKILL');
    await waitDead(pid, 5_000);
  }
  if (await mounted(mnt)) await run('fusermount', ['-uz', mnt]).catch(() => {});
}

export interface Recorded {
  dir: string;
  vault: string;
  /** The vault before the run. */
  snapshot: SnapshotEntry[];
  history: History;
  steps: Step[];
  recordMs: number;
}

/** Record one run of the workload (init, snapshot, mount under the shim, client, unmount) into `dir`. */
export async function record(dir: string, options: { rounds?: number; seed?: number } = {}): Promise<Recorded> {
  const t0 = Date.now();
  mkdirSync(dir, { recursive: true });
  const base = realpathSync(dir);
  const shim = buildShim(base);
  const vault = join(base, 'vault');
  const mnt = join(base, 'mnt');
  const journal = join(base, 'journal.jsonl');
  await run(process.execPath, [CLI, 'init', vault]);
  const snapshot = takeSnapshot(vault);
  saveSnapshot(join(base, 'snapshot.json'), snapshot);
  const rec = newRecording(base);
  const env = { ...process.env, ...shimEnv(shim, rec, vault) };
  let pid = 0;
  let phase = 'mount';
  try {
    pid = await mount(vault, mnt, env);
    phase = 'workload';
    await run(process.execPath, [CLIENT, mnt, journal, String(options.rounds ?? 1), String(options.seed ?? 1)], env, 600_000);
    phase = 'umount';
    await run(process.execPath, [CLI, 'umount', mnt], process.env, 60_000);
    if (!(await waitDead(pid, 30_000))) throw new Error(`daemon ${pid} still running after sefs umount`);
    pid = 0;
  } catch (err) {
    throw new Error(`recording failed at its ${phase} (in ${base}): ${(err as Error).message}`);
  } finally {
    await unmount(mnt, pid);
  }
  writeFileSync(join(base, 'meta.json'), JSON.stringify({ root: vault, rounds: options.rounds ?? 1, seed: options.seed ?? 1 }));
  return { ...load(base), recordMs: Date.now() - t0 };
}

/** A recording made earlier (record's directory), for re-checking. */
export function load(dir: string): Omit<Recorded, 'recordMs'> {
  const base = realpathSync(dir);
  const { root } = JSON.parse(readFileSync(join(base, 'meta.json'), 'utf8')) as { root: string };
  const snapshot = loadSnapshot(join(base, 'snapshot.json'));
  const history = new History(root, snapshot, parseLog(join(base, 'oplog.bin')));
  const steps = loadSteps(join(base, 'journal.jsonl'), history.marks);
  return { dir: base, vault: root, snapshot, history, steps };
}

function saveSnapshot(file: string, snap: SnapshotEntry[]): void {
  writeFileSync(file, JSON.stringify(snap.map((e) => ({ ...e, content: e.content?.toString('base64') }))));
}

function loadSnapshot(file: string): SnapshotEntry[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as (Omit<SnapshotEntry, 'content'> & { content?: string })[]).map((e) => ({
    ...e,
    content: e.content === undefined ? undefined : Buffer.from(e.content, 'base64'),
  }));
}

/**
 * The cuts to check: right after every fsync returns, every rename and every client mark (always), and more
 * spread evenly over the log (and just before fsyncs) until there are `target`.
 */
export function chooseCuts(h: History, target: number, seed = 1): number[] {
  const must = new Set<number>();
  const optional: number[] = [];
  for (const c of h.interestingCuts()) {
    if (c.why.startsWith('before')) optional.push(c.cut);
    else must.add(c.cut);
  }
  must.add(h.end);
  const first = h.records[0]?.seq ?? 1;
  const cuts = new Set(must);
  // Then the ones just before a sync, then evenly spread points, until the target.
  let s = seed;
  const shuffled = optional.map((c) => ({ c, k: (s = (s * 48271) % 2147483647) })).sort((a, b) => a.k - b.k).map((x) => x.c);
  for (const c of shuffled) {
    if (cuts.size >= target) break;
    cuts.add(c);
  }
  const spread = Math.max(0, target - cuts.size);
  for (let i = 1; i <= spread; i++) cuts.add(first + Math.round(((h.end - first) * i) / (spread + 1)));
  return [...cuts].filter((c) => c >= first && c <= h.end).sort((a, b) => a - b);
}

export interface ViolationGroup {
  cause: string;
  count: number;
  /** model/variant combinations it showed in, with counts. */
  combos: Map<string, number>;
  files: Set<string>;
  /** Distinct cuts it showed at. */
  cuts: Set<number>;
  first: Violation;
}

export interface CheckReport {
  cuts: number;
  states: number;
  violations: Violation[];
  /** Violations grouped by cause (chunk and temp names folded). */
  groups: Map<string, ViolationGroup>;
  checkMs: number;
  cacheHits: number;
  cacheMisses: number;
}

/** A cause without the names that vary from one chunk or temp file to the next. */
export function foldCause(cause: string): string {
  return cause
    .replace(/\/chunks\/[0-9a-f]{2}\/[0-9a-f]{2}/g, '/chunks/ab/cd')
    .replace(/\/chunks\/[0-9a-f]{2}/g, '/chunks/ab')
    .replace(/\/tmp\/meta-[0-9a-f]+/g, '/tmp/meta-*');
}

/**
 * Check every chosen cut under every model/variant combination; with `pinCommits`, also, for every commit's
 * rename of its entry into meta/, the state where that rename reached the disk and nothing volatile else did
 * (in those models): a commit must not put its entry in place before what the entry names is durable.
 */
export async function check(rec: Omit<Recorded, 'recordMs'>, cuts: number[], options: { seed?: number; combos?: typeof COMBOS; pinCommits?: Model[] } = {}): Promise<CheckReport> {
  const t0 = Date.now();
  const reader = new StateReader();
  const violations: Violation[] = [];
  let states = 0;
  const specs: CrashSpec[] = [];
  for (const cut of cuts) for (const { model, variant } of options.combos ?? COMBOS) specs.push({ cut, model, variant, seed: options.seed ?? 1 });
  for (const model of options.pinCommits ?? []) {
    for (const pin of rec.history.commitRenames()) specs.push({ cut: rec.history.events[pin]!.seq + 1, model, variant: 'lost', seed: options.seed ?? 1, pin });
  }
  for (const spec of specs) {
    const state = rec.history.crash(spec);
    states++;
    violations.push(...(await checkState(state, rec.steps, reader)).violations);
  }
  const groups = new Map<string, ViolationGroup>();
  for (const v of violations) {
    const key = foldCause(v.cause);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { cause: key, count: 0, combos: new Map(), files: new Set(), cuts: new Set(), first: v }));
    g.count++;
    const combo = `${v.model}/${v.variant}${v.pin !== undefined ? '+pin' : ''}`;
    g.combos.set(combo, (g.combos.get(combo) ?? 0) + 1);
    g.files.add(v.file);
    g.cuts.add(v.cut);
  }
  return { cuts: cuts.length, states, violations, groups, checkMs: Date.now() - t0, cacheHits: reader.hits, cacheMisses: reader.misses };
}

/** A readable report: the log's figures, then each group of violations with its first example. */
export function formatReport(rec: Omit<Recorded, 'recordMs'>, report: CheckReport): string {
  const lines = [
    `log: ${JSON.stringify(logStats(rec.history))}`,
    `${report.cuts} cuts x model/variant combinations (+ pinned commits) = ${report.states} states checked in ${report.checkMs} ms (decrypt cache ${report.cacheHits} hits, ${report.cacheMisses} misses)`,
    `${report.violations.length} file violations in ${report.groups.size} groups by cause`,
  ];
  for (const g of report.groups.values()) {
    const f = g.first;
    lines.push(
      '',
      `== ${g.cause}`,
      `   ${g.count} file violations at ${g.cuts.size} cuts (${[...g.cuts].slice(0, 8).join(', ')}${g.cuts.size > 8 ? ', ...' : ''}); files ${[...g.files].join(', ')}; in ${[...g.combos].map(([c, n]) => `${c} ${n}`).join(', ')}`,
      `   first: cut ${f.cut} ${f.model}/${f.variant}${f.pin !== undefined ? ` with event #${f.pin} pinned` : ''} (replay: npx tsx scripts/power-loss.ts --recheck ${rec.dir} --cut ${f.cut} --model ${f.model} --variant ${f.variant}${f.pin !== undefined ? ` --pin ${f.pin}` : ''})`,
      `   ${f.file}: got ${f.got}`,
      `   allowed: ${f.allowed.join(' | ')}`,
      ...f.why.map((w) => `   why: ${w}`),
    );
  }
  return lines.join('\n');
}

/**
 * The state with every recorded operation applied, against the vault on disk after the run: any difference
 * means the shim missed an operation or the model replays one wrongly. (sefs.log is left out: the daemon
 * writes it through descriptors it inherited, which the shim does not see.)
 */
export function compareWithDisk(rec: Omit<Recorded, 'recordMs'>): string[] {
  const state = rec.history.crash({ cut: rec.history.end, model: 'posix', variant: 'kept', seed: 1 });
  const problems: string[] = [];
  const inModel = new Map<string, number>();
  for (const { path, id } of state.walk()) if (path !== 'sefs.log') inModel.set(path, id);
  const onDisk = takeSnapshot(rec.vault).filter((e) => e.path !== 'sefs.log');
  for (const e of onDisk) {
    const id = inModel.get(e.path);
    if (id === undefined) problems.push(`${e.path}: on disk, not in the model`);
    else if (state.kind(id) !== e.kind) problems.push(`${e.path}: a ${e.kind} on disk, a ${state.kind(id)} in the model`);
    else if (e.kind === 'file' && !state.read(id).equals(e.content!)) problems.push(`${e.path}: content differs (${e.content!.length} bytes on disk, ${state.read(id).length} in the model)`);
    inModel.delete(e.path);
  }
  for (const path of inModel.keys()) problems.push(`${path}: in the model, not on disk`);
  return problems;
}

/** Write a crash state out as a vault directory. */
export function materialize(state: CrashState, into: string): void {
  for (const { path, id } of state.walk()) {
    const abs = path ? join(into, path) : into;
    const kind = state.kind(id);
    if (kind === 'dir') mkdirSync(abs, { recursive: true });
    else if (kind === 'symlink') symlinkSync(state.symlinkTarget(id), abs);
    else writeFileSync(abs, state.read(id));
  }
  if (existsSync(join(into, 'meta'))) chmodSync(join(into, 'meta'), 0o700);
}

/**
 * A file's bytes, read until a read returns 0 (an error on any read is thrown). Not fs.promises.readFile: it
 * takes a short read for the end of the file, and a read that meets a missing chunk after a readable one is
 * short (the kernel hands over the pages it has), so a damaged file would read as a shorter one.
 */
async function readAll(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const parts: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(1 << 20);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      parts.push(buf.subarray(0, bytesRead));
    }
    return Buffer.concat(parts);
  } finally {
    await fh.close();
  }
}

/**
 * Write a crash state out, run sefs fsck --deep on it, mount it with sefs (its crash recovery runs), read every
 * journaled file through FUSE, unmount, and return what each read gave and what fsck called damaged: the
 * library's reading of the same state must agree with both.
 */
export async function mountCheck(state: CrashState, dir: string, files: string[]): Promise<{ reads: Map<string, FileRead>; fsckDamaged: string[] }> {
  await rm(dir, { recursive: true, force: true });
  const vault = join(dir, 'vault');
  const mnt = join(dir, 'mnt');
  mkdirSync(vault, { recursive: true });
  materialize(state, vault);
  // The recorded daemon's pid file stays (the mount takes a dead holder's lock over); a live process that
  // happens to have that pid now would make the mount refuse: then the file goes.
  const pidFile = join(vault, 'sefs.pid');
  if (existsSync(pidFile) && alive(Number(readFileSync(pidFile, 'utf8')))) await rm(pidFile);
  // sefs fsck --deep on the crashed vault, as a user would run it before mounting.
  const fsckOut = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [CLI, 'fsck', '--deep', '--json', vault], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && (err as { code?: unknown }).code !== 1) reject(new Error(`sefs fsck failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  const fsckDamaged = (JSON.parse(fsckOut) as { damaged: { path: string }[] }).damaged.map((d) => d.path.replace(/^\//, '')).sort();
  const out = new Map<string, FileRead>();
  let pid = 0;
  try {
    pid = await mount(vault, mnt, process.env);
    for (const file of files) {
      try {
        if (file.endsWith('/')) {
          out.set(file, (await lstat(join(mnt, file))).isDirectory() ? { state: 'dir' } : { state: 'error', error: 'not a directory' });
          continue;
        }
        const data = await readAll(join(mnt, file));
        out.set(file, { state: sha256(data), size: data.length });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        out.set(file, code === 'ENOENT' ? { state: ABSENT } : { state: 'error', error: code ?? String(err) });
      }
    }
    // Nothing but journaled files (and editor temps) may show.
    const walk = async (rel: string): Promise<void> => {
      for (const name of await readdir(join(mnt, rel))) {
        const p = rel ? `${rel}/${name}` : name;
        let isDir = false;
        try {
          isDir = (await lstat(join(mnt, p))).isDirectory();
        } catch (err) {
          if (!out.has(p)) out.set(p, { state: 'error', error: `unexpected file in the mount, and lstat fails: ${(err as NodeJS.ErrnoException).code}` });
          continue;
        }
        if (isDir) {
          if (!out.has(`${p}/`)) out.set(`${p}/`, { state: 'error', error: 'unexpected directory in the mount' });
          await walk(p);
        }
        else if (!out.has(p) && !p.endsWith('.tmp')) out.set(p, { state: 'error', error: 'unexpected file in the mount' });
      }
    };
    await walk('');
  } finally {
    await unmount(mnt, pid);
  }
  return { reads: out, fsckDamaged };
}

/**
 * Where a mount check disagrees with the library's reading of the same state: a file read differently
 * through FUSE, or a file fsck calls damaged that the library reads (or the reverse).
 */
export function disagreements(spec: string, lib: Map<string, FileRead>, viaMount: { reads: Map<string, FileRead>; fsckDamaged: string[] }): string[] {
  const out: string[] = [];
  for (const [file, r] of viaMount.reads) {
    const l = lib.get(file);
    if (!l || !(l.state === r.state || (l.state === 'error' && r.state === 'error'))) {
      out.push(`${spec} ${file}: library ${l?.state ?? 'nothing'} ${l?.error ?? ''}, mount ${r.state} ${r.error ?? ''}`);
    }
  }
  const libDamaged = [...lib].filter(([f, r]) => r.state === 'error' && !f.endsWith('/')).map(([f]) => f).sort();
  if (libDamaged.join() !== viaMount.fsckDamaged.join()) out.push(`${spec}: library finds ${libDamaged.join(', ') || 'nothing'} unreadable, sefs fsck --deep ${viaMount.fsckDamaged.join(', ') || 'nothing'} damaged`);
  return out;
}

