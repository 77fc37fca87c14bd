#!/usr/bin/env node
// Crash test: a writer keeps rewriting, appending to, truncating, patching and renaming files in a mount
// with fsync; the mount daemon is killed with SIGKILL at random moments; after each remount every file must
// be byte-equal to its last fsynced state or to a state the writer had started to write, never a mix,
// never unreadable, and no temporary files may show in the tree.
//   node scripts/crash-test.mjs [--rounds 100] [--dir /tmp/x]      (after npm run build)
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FRESH_DIRS } from '../dist/vault/fresh-entries.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../dist/cli/main.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (b) => createHash('sha256').update(b).digest('hex');

function mount(vault, mnt) {
  execFileSync(process.execPath, [cli, 'mount', vault, mnt], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(readFileSync(join(vault, 'sefs.pid'), 'utf8'));
}

/**
 * Whether tmp/ holds anything a mount at `since` did not make: only its directories of fresh inodes
 * (src/vault/fresh-entries.ts) may be there, with files born since.
 */
function leftInTmp(tmp, since) {
  if (!existsSync(tmp)) return false;
  return readdirSync(tmp).some((name) => !FRESH_DIRS.includes(name) || readdirSync(join(tmp, name)).some((f) => statSync(join(tmp, name, f)).birthtimeMs < since - 1000));
}

/** Wait until a killed process is gone (or a zombie): only then has the kernel cut its mount off. */
async function waitDead(pid) {
  for (let i = 0; i < 200; i++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return;
    } catch {
      return;
    }
    await sleep(25);
  }
}

/** Wait until the writer has journaled something of this round (it notes each change before making it). */
async function writerStarted(journalPath, writer) {
  const before = statSync(journalPath).size;
  for (let i = 0; i < 400 && statSync(journalPath).size === before && writer.exitCode === null; i++) await sleep(25);
}

/**
 * The states each file may be in: its last completed state, or any state started after it. A file whose
 * creation never completed may also be missing (the `creating` flag: ABSENT in its set).
 */
const ABSENT = 'absent';
function allowedStates(journalPath) {
  const allowed = new Map();
  for (const line of readFileSync(journalPath, 'utf8').split('\n')) {
    if (!line) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a line cut by the kill
    }
    const set = allowed.get(e.file) ?? new Set();
    if (e.done) allowed.set(e.file, new Set([e.done]));
    else {
      for (const s of e.may) set.add(s);
      if (e.creating) set.add(ABSENT);
      allowed.set(e.file, set);
    }
  }
  return allowed;
}

export async function runCrashTest({ rounds = 100, dir, log = console.log } = {}) {
  const base = dir ?? mkdtempSync(join(tmpdir(), 'sefs-crash-'));
  const vault = join(base, 'vault');
  const mnt = join(base, 'mnt');
  const journal = join(base, 'journal.jsonl');
  writeFileSync(journal, '');
  const counts = { rounds: 0, filesChecked: 0, lastSynced: 0, laterState: 0, failures: [] };
  let pid = mount(vault, mnt);
  try {
    for (let round = 1; round <= rounds; round++) {
      const writer = spawn(process.execPath, [join(here, 'crash-writer.mjs'), mnt, journal, '4'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let writerErr = '';
      writer.stderr.on('data', (d) => (writerErr += d));
      // The kill comes at a random moment of the writer's work, not of its start-up (slow on a loaded machine).
      await writerStarted(journal, writer);
      await sleep(300 + Math.floor(Math.random() * 1500));
      process.kill(pid, 'SIGKILL');
      await waitDead(pid);
      writer.kill('SIGKILL');
      await new Promise((r) => (writer.exitCode !== null || writer.signalCode !== null ? r() : writer.once('exit', r)));
      const remountedAt = Date.now();
      pid = mount(vault, mnt); // clears the stale mount, cleans leftovers
      const allowed = allowedStates(journal);
      const visible = readdirSync(mnt).filter((n) => !n.endsWith('.tmp'));
      for (const [file, states] of allowed) {
        counts.filesChecked++;
        let content;
        try {
          content = readFileSync(join(mnt, file));
        } catch (err) {
          if (err.code === 'ENOENT' && states.has(ABSENT)) {
            counts.laterState++;
            continue;
          }
          counts.failures.push(`round ${round}: ${file} unreadable: ${err.message}`);
          continue;
        }
        const h = sha(content);
        if (!states.has(h)) counts.failures.push(`round ${round}: ${file} (${content.length} bytes) matches no recorded state`);
        else if (states.size === 1) counts.lastSynced++;
        else counts.laterState++;
      }
      for (const name of visible) if (!allowed.has(name)) counts.failures.push(`round ${round}: unexpected entry ${name}`);
      if (leftInTmp(join(vault, 'tmp'), remountedAt)) counts.failures.push(`round ${round}: vault tmp/ not cleaned`);
      counts.rounds = round;
      if (writerErr && !/ENOTCONN|ECONNABORTED|Transport endpoint|EIO|Software caused/.test(writerErr)) log(`round ${round} writer: ${writerErr.trim().split('\n')[0]}`);
      if (round % 10 === 0) log(`crash test: ${round}/${rounds} rounds, ${counts.failures.length} failures`);
    }
  } finally {
    try {
      execFileSync(process.execPath, [cli, 'umount', mnt], { stdio: 'ignore' });
    } catch {
      try { process.kill(pid, 'SIGKILL'); } catch {}
      try { execFileSync('fusermount', ['-uz', mnt]); } catch {}
    }
    if (!dir) rmSync(base, { recursive: true, force: true });
  }
  return counts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '100' }, dir: { type: 'string' } } });
  const counts = await runCrashTest({ rounds: Number(values.rounds), dir: values.dir });
  console.log(JSON.stringify({ ...counts, failures: counts.failures.length }, null, 2));
  for (const f of counts.failures) console.log('FAIL', f);
  process.exit(counts.failures.length ? 1 : 0);
}
