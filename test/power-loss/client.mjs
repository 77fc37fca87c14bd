// The power-loss test's workload: changes files in a sefs mount, step by step, with the durability calls an
// application makes (fsync, close, the editor's write-temp/fsync/rename/fsync-dir), and journals what each
// file may hold after a crash. Run with the oplog shim preloaded: each step opens MARK-prefixed paths, which
// the shim records into the daemon's operation log ("B<n>" before the step's first call, "D<n>" after its
// last durability call returned), so a cut of that log knows which steps had completed.
//   node client.mjs MOUNT JOURNAL [ROUNDS] [SEED]
// After its own steps it runs two copies of itself at once (WORKER = 0, 1: journals JOURNAL.w0/.w1), each
// rewriting its own file with the same bytes as the other at the same moment: concurrent commits whose
// chunks deduplicate against each other.
// Journal: one JSON line per step: {step, label, files: {name: {may: [state...], done: state}}}, a state
// being the sha256 of the file's bytes or "absent" ("dir" for a directory, named with a trailing "/"). `may`: what the file may hold while the step runs (with
// the state before it); `done`: what it must hold once the step is done.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [mnt, journalPath, roundsArg, seedArg, workerArg] = process.argv.slice(2);
const WORKER = workerArg === undefined ? undefined : Number(workerArg);
const ROUNDS = Number(roundsArg ?? 1);
const SEED = Number(seedArg ?? 1);
const MARK = process.env.OPLOG_MARK;
if (!MARK) throw new Error('OPLOG_MARK is not set: run the client with the oplog shim');

const KiB = 1024;
const MiB = 1024 * KiB;
const sha = (b) => createHash('sha256').update(b).digest('hex');
let counter = 0;
/** Fresh pseudo-random bytes, reproducible from the seed (the same in both workers). */
function bytes(size) {
  const key = createHash('sha256').update(`power-loss-${SEED}-${WORKER === undefined ? 'main' : 'workers'}-${counter++}`).digest().subarray(0, 16);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

const state = new Map(); // name -> Buffer (absent: not in the map)
const dirs = new Set(); // directories made, as "name/"
const now = (name) => (name.endsWith('/') ? (dirs.has(name) ? 'dir' : 'absent') : state.has(name) ? sha(state.get(name)) : 'absent');
const journal = [];
let stepNo = 0;

function mark(text) {
  try {
    openSync(MARK + text, 'r');
  } catch {
    // the shim answers ENOENT, having recorded the mark
  }
}

/**
 * Run one step: `files` maps each name it touches to the states it may leave in flight (besides the current
 * one); `run` does the calls; afterwards `state` holds the new contents. `lazy`: the step ends without an
 * fsync, so its outcome becomes durable some time later (write-back), not when it is done.
 */
function step(label, files, run, { lazy = false } = {}) {
  const n = WORKER === undefined ? ++stepNo : `w${WORKER}.${++stepNo}`;
  const entry = { step: n, label, files: {} };
  for (const [name, may] of Object.entries(files)) entry.files[name] = { may: [now(name), ...may], ...(lazy ? { lazy } : {}) };
  mark(`B${n}`);
  run();
  mark(`D${n}`);
  for (const name of Object.keys(files)) entry.files[name].done = now(name);
  journal.push(entry);
}

const p = (name) => join(mnt, name);

function pause(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function fsyncDir(dir) {
  const fd = openSync(dir, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

/** create or rewrite (O_TRUNC) + write + fsync? + close */
function writeWhole(name, data, { sync = true } = {}) {
  const existed = state.has(name);
  step(`${existed ? 'rewrite' : 'create'} ${name} (${data.length} bytes, ${sync ? 'fsync' : 'close only'})`, { [name]: [sha(Buffer.alloc(0)), sha(data)] }, () => {
    const fd = openSync(p(name), 'w');
    writeSync(fd, data);
    if (sync) fsyncSync(fd);
    closeSync(fd);
    state.set(name, data);
  }, { lazy: !sync });
}

/** Other names of a hard-linked file, by name (they change with it). */
const twins = new Map();
const namesOf = (name) => [name, ...(twins.get(name) ?? [])];

function append(name, extra) {
  const next = Buffer.concat([state.get(name), extra]);
  step(`append ${extra.length} bytes to ${name}`, Object.fromEntries(namesOf(name).map((n) => [n, [sha(next)]])), () => {
    const fd = openSync(p(name), 'a');
    writeSync(fd, extra);
    fsyncSync(fd);
    closeSync(fd);
    for (const n of namesOf(name)) state.set(n, next);
  });
}

/** link + fsync of the new name's directory: the old name keeps its content throughout. */
function hardLink(from, to) {
  const data = state.get(from);
  const dir = to.includes('/') ? to.slice(0, to.lastIndexOf('/')) : '';
  step(`link ${from} -> ${to} + fsync dir`, { [from]: [], [to]: [sha(data)] }, () => {
    linkSync(p(from), p(to));
    fsyncDir(p(dir));
    state.set(to, data);
  });
  twins.set(from, [to]);
  twins.set(to, [from]);
}

function patch(name, at, data) {
  const old = state.get(name);
  const next = Buffer.alloc(Math.max(old.length, at + data.length));
  old.copy(next);
  data.copy(next, at);
  step(`patch ${data.length} bytes at ${at} of ${name}`, { [name]: [sha(next)] }, () => {
    const fd = openSync(p(name), 'r+');
    writeSync(fd, data, 0, data.length, at);
    fsyncSync(fd);
    closeSync(fd);
    state.set(name, next);
  });
}

function truncate(name, size) {
  const old = state.get(name);
  const next = Buffer.alloc(size);
  old.copy(next, 0, 0, Math.min(size, old.length));
  step(`truncate ${name} from ${old.length} to ${size}`, { [name]: [sha(next)] }, () => {
    const fd = openSync(p(name), 'r+');
    ftruncateSync(fd, size);
    fsyncSync(fd);
    closeSync(fd);
    state.set(name, next);
  });
}

/** The editor's pattern: write NAME.tmp, fsync, close, rename over NAME, fsync the directory. */
function editorSave(name, data) {
  const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
  const temp = `${name}.tmp`;
  step(`editor save ${name} (${data.length} bytes, rename over ${state.has(name) ? 'the old file' : 'nothing'})`, { [name]: [sha(data)], [temp]: [sha(Buffer.alloc(0)), sha(data), 'absent'] }, () => {
    const fd = openSync(p(`${name}.tmp`), 'w');
    writeSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(p(`${name}.tmp`), p(name));
    fsyncDir(p(dir));
    state.set(name, data);
    state.delete(temp);
  });
}

/**
 * Many small files written and closed without fsync, each with its own bytes: their write-back commits run as a
 * batch, many at once, and each writes its entry into the inode of an entry another commit replaced
 * (src/vault/spare-entries.ts), which must not happen before that replacement is durable.
 */
function closeMany(dir, count) {
  const next = Array.from({ length: count }, (_, i) => [`${dir}/f${i}`, bytes(700 + 97 * i)]);
  const files = Object.fromEntries(next.map(([name, data]) => [name, [sha(Buffer.alloc(0)), sha(data)]]));
  step(`write ${count} small files in ${dir} (close only)`, files, () => {
    for (const [name, data] of next) {
      const fd = openSync(p(name), 'w');
      writeSync(fd, data);
      closeSync(fd);
      state.set(name, data);
    }
  }, { lazy: true });
}

function remove(name) {
  const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
  // Another name of it keeps the content, whatever the moment.
  const others = Object.fromEntries((twins.get(name) ?? []).map((n) => [n, []]));
  step(`unlink ${name} + fsync dir`, { [name]: ['absent'], ...others }, () => {
    unlinkSync(p(name));
    fsyncDir(p(dir));
    state.delete(name);
  });
  for (const n of twins.get(name) ?? []) twins.delete(n);
  twins.delete(name);
}

function move(from, to) {
  const data = state.get(from);
  step(`rename ${from} -> ${to} + fsync dir`, { [from]: ['absent'], [to]: [sha(data)] }, () => {
    renameSync(p(from), p(to));
    fsyncDir(p(''));
    state.delete(from);
    state.set(to, data);
  });
}

// ---- the workload ------------------------------------------------------------------------------------
if (WORKER !== undefined) {
  // Both workers write the same bytes at the same time (dedup between concurrent commits).
  const name = `p${WORKER}`;
  for (let i = 0; i < 3 * ROUNDS; i++) {
    writeWhole(name, bytes(i % 3 === 2 ? 4 * MiB + 1 : 120 * KiB + i));
    append(name, bytes(64 * KiB));
  }
} else {
  step('mkdir d + fsync dir', { 'd/': ['dir'] }, () => {
    mkdirSync(p('d'));
    fsyncDir(p(''));
    dirs.add('d/');
  });
  writeWhole('a', bytes(100 * KiB));
  writeWhole('big', bytes(5 * MiB + 12345)); // blocks staged by the workers while it is written
  writeWhole('tiny', bytes(2), { sync: false }); // inline entry, written back after the close
  writeWhole('d/e', bytes(300 * KiB));
  step('mkdir s + fsync dir', { 's/': ['dir'] }, () => {
    mkdirSync(p('s'));
    fsyncDir(p(''));
    dirs.add('s/');
  });
  closeMany('s', 48);
  closeMany('s', 48); // rewritten while the first batch may still be written back
  for (let round = 0; round < ROUNDS; round++) {
    writeWhole('a', bytes(200 * KiB + round));
    append('big', bytes(1536 * KiB));
    truncate('big', 3 * MiB + 1);
    patch('a', 50_000, bytes(10 * KiB));
    editorSave('cfg', bytes(50 * KiB));
    editorSave('cfg', bytes(60 * KiB + 7));
    truncate('a', 400 * KiB); // grows: a hole of zeros
    writeWhole('d/e', bytes(70 * KiB), { sync: false });
    writeWhole('tiny', bytes(1));
    remove('tiny');
    // Hard links: the first link moves the entry to a record, a commit through the new name replaces the
    // record, the first name goes, then the last (with the record).
    hardLink('a', 'd/a2');
    append('d/a2', bytes(8 * KiB));
    remove('a');
    append('d/a2', bytes(3 * KiB));
    editorSave('a', bytes(30 * KiB));
    remove('d/a2');
    // Idle long enough for the mount's reclaimer to sweep (1.5 s after the last change): its removals of
    // chunks the rewrites above dropped land in the log between steps.
    pause(2500);
    move('big', `big-${round}`);
    append('d/e', bytes(4 * KiB));
    move(`big-${round}`, 'big');
    writeWhole('tiny', bytes(2), { sync: false });
  }
}

writeFileSync(journalPath + (WORKER === undefined ? '' : `.w${WORKER}`), journal.map((e) => JSON.stringify(e)).join('\n') + '\n');
// A last check that the mount agrees with what the client thinks it wrote.
for (const [name, data] of state) {
  const got = readFileSync(p(name));
  if (!got.equals(data)) throw new Error(`${name} reads back ${got.length} bytes that differ from what was written`);
}

if (WORKER === undefined) {
  const me = fileURLToPath(import.meta.url);
  const workers = [0, 1].map(
    (k) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [me, mnt, journalPath, String(ROUNDS), String(SEED), String(k)], { stdio: 'inherit' });
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${k} exited with ${code}`))));
      }),
  );
  await Promise.all(workers);
}
