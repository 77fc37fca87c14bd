/**
 * sefs benchmark: a plain directory, gocryptfs and sefs measured side by side in one run.
 *
 * Started by `scripts/bench` (npm run bench), which owns the scratch directory and the cleanup trap;
 * run as `node --import tsx scripts/bench.ts --scratch DIR [options]`. See native-notes/benchmarking.md.
 *
 * Everything that touches a mount (dd, ls, the latency loops) runs in a child process with a timeout,
 * so a hung FUSE daemon cannot hang the benchmark: the step is reported as failed and the target is
 * torn down. The same file is its own helper: `bench.ts __worker NAME JSON` runs one latency loop.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROFILES, type Profile } from '../src/core/compression.js';
import { DEFAULT_VAULT_PROFILE } from '../src/vault/config.js';
import { prng as seededPrng } from '../test/helpers/inputs.js';
import { type S3BenchResult, runS3Bench, s3Table } from './bench-s3.js';

const SCRIPT = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SCRIPT), '..');
const MiB = 1024 * 1024;
const BLOCK = 4096;

// ---------------------------------------------------------------------------------------------
// small utilities

/** The tests' seeded PRNG (mulberry32) as uint32s: the same seed gives the same offsets and text. */
function prng(seed: number): () => number {
  const next = seededPrng(seed);
  return () => next() * 2 ** 32;
}

function offsets(count: number, fileSize: number, seed: number): number[] {
  const rand = prng(seed);
  const blocks = Math.floor(fileSize / BLOCK);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.floor((rand() / 2 ** 32) * blocks) * BLOCK);
  return out;
}

interface Stats { n: number; min: number; p50: number; p90: number; p99: number; max: number; mean: number }

/** Nearest-rank percentiles of latencies in ms. */
function stats(lat: number[]): Stats {
  const s = [...lat].sort((a, b) => a - b);
  const pct = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, min: s[0], p50: pct(50), p90: pct(90), p99: pct(99), max: s[s.length - 1], mean };
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${msg}\n`);
}

class StepTimeout extends Error {}

interface RunResult { code: number | null; stdout: string; stderr: string; ms: number }

/** Runs a command synchronously with a timeout (SIGKILL on expiry); throws StepTimeout on expiry. */
function run(cmd: string, args: string[], opts: { timeoutS?: number; quietStdout?: boolean; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const t0 = nowMs();
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: (opts.timeoutS ?? 600) * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 256 * MiB,
    env: opts.env ?? process.env,
    stdio: ['ignore', opts.quietStdout ? 'ignore' : 'pipe', 'pipe'],
  });
  const ms = nowMs() - t0;
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
    throw new StepTimeout(`timed out after ${opts.timeoutS ?? 600}s: ${cmd} ${args.join(' ')}`);
  }
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms };
}

/** Like run(), but keeps the event loop turning (so our own exited daemons get reaped meanwhile). */
function runAsync(cmd: string, args: string[], timeoutS: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new StepTimeout(`timed out after ${timeoutS}s: ${cmd} ${args.join(' ')}`)); }, timeoutS * 1000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: nowMs() - t0 }); });
  });
}

async function mustRunAsync(cmd: string, args: string[], timeoutS: number): Promise<RunResult> {
  const r = await runAsync(cmd, args, timeoutS);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${lastLines(r.stderr || r.stdout, 3)}`);
  return r;
}

function mustRun(cmd: string, args: string[], opts: { timeoutS?: number; quietStdout?: boolean } = {}): RunResult {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${lastLines(r.stderr || r.stdout, 3)}`);
  return r;
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join(' | ');
}

/** Runs one helper loop of this script in a child process; returns its JSON answer. */
function worker(name: string, args: object, timeoutS: number): any {
  const r = run(process.execPath, [...process.execArgv, SCRIPT, '__worker', name, JSON.stringify(args)], { timeoutS });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let answer: any;
  try { answer = JSON.parse(last); } catch { /* no answer */ }
  if (answer?.error) throw new Error(`${name}: ${answer.error}`);
  if (r.code !== 0 || !answer) throw new Error(`worker ${name} exited ${r.code}: ${lastLines(r.stderr, 4)}`);
  return answer;
}

function duBytes(dir: string): number {
  const r = mustRun('du', ['-sb', dir], { timeoutS: 300 });
  return Number(r.stdout.split(/\s+/)[0]);
}

function mountedAt(mp: string): boolean {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mp);
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** The process and all its descendants (a daemon may run helpers). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid)!.push(Number(d));
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => { out.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(pid);
  return out;
}

function procStatusKb(pid: number, field: string): number {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resets the peak-RSS counter (VmHWM) of the process tree: `echo 5 > /proc/PID/clear_refs`. */
function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try { fs.writeFileSync(`/proc/${p}/clear_refs`, '5'); } catch { /* not allowed or gone */ }
  }
}

/** Peak RSS in MB (1e6 bytes) summed over the process tree, plus CPU seconds (user+sys) of the tree. */
function peakRssMB(pid: number): number {
  return processTree(pid).reduce((a, p) => a + procStatusKb(p, 'VmHWM'), 0) * 1024 / 1e6;
}

function cpuSeconds(pid: number): number {
  const hz = 100;
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) / hz;
    } catch { /* gone */ }
  }
  return total;
}

function ioWriteBytes(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const m = fs.readFileSync(`/proc/${p}/io`, 'utf8').match(/^write_bytes:\s+(\d+)/m);
      if (m) total += Number(m[1]);
    } catch { /* gone */ }
  }
  return total;
}

let canDropCaches = true;
/** sync, then drop the page cache, dentries and inodes (root only; otherwise noted once and skipped). */
function dropCaches(): void {
  run('sync', [], { timeoutS: 300 });
  if (!canDropCaches) return;
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch (e) {
    canDropCaches = false;
    note('all', `cannot drop the page cache (${(e as Error).message}); cold cases are only remounted`);
  }
}

/** Reads a file once so that it sits in the page cache (sources, before each timed write). */
function prewarm(file: string): void {
  mustRun('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'], { timeoutS: 600 });
}

// ---------------------------------------------------------------------------------------------
// source data

const COMMON_WORDS = (
  'the of and to a in is it you that he was for on are with as I his they be at one have this from or had by ' +
  'hot word but what some we can out other were all there when up use your how said an each she which do their ' +
  'time if will way about many then them write would like so these her long make thing see him two has look ' +
  'more day could go come did number sound no most people my over know water than call first who may down side ' +
  'been now find any new work part take get place made live where after back little only round man year came ' +
  'show every good me give our under name very through just form sentence great think say help low line differ ' +
  'turn cause much mean before move right boy old too same tell does set three want air well also play small end ' +
  'put home read hand port large spell add even land here must big high such follow act why ask men change went ' +
  'light kind off need house picture try us again animal point mother world near build self earth father head ' +
  'stand own page should country found answer school grow study still learn plant cover food sun four between ' +
  'state keep eye never last let thought city tree cross farm hard start might story saw far sea draw left late ' +
  'run while press close night real life few north open seem together next white children begin got walk example ' +
  'ease paper group always music those both mark often letter until mile river car feet care second book carry ' +
  'took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood ' +
  'main enough plain girl usual young ready above ever red list though feel talk bird soon body dog family direct ' +
  'pose leave song measure door product black short numeral class wind question happen complete ship area half ' +
  'rock order fire south problem piece told knew pass since top whole king space heard best hour better true ' +
  'during hundred five remember step early hold west ground interest reach fast verb sing listen six table travel ' +
  'less morning ten simple several vowel toward war lay against pattern slow center love person money serve ' +
  'appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark ' +
  'machine note wait plan figure star box noun field rest correct able pound done beauty drive stood contain ' +
  'front teach week final gave green oh quick develop ocean warm free minute strong special mind behind clear ' +
  'tail produce fact street inch multiply nothing course stay wheel full force blue object decide surface deep ' +
  'moon island foot system busy test record boat common gold possible plane stead dry wonder laugh thousand ago'
).split(' ');

/** A vocabulary: common English words first, then seeded pseudo-words made of syllables. */
function vocabulary(seed: number): Buffer[] {
  const rand = prng(seed ^ 0x5eed);
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'ch', 'cl', 'dr', 'fl', 'gr', 'pl', 'pr', 'sh', 'st', 'str', 'th', 'tr', ''];
  const nuclei = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ee', 'ie', 'oo', 'ou', 'y'];
  const codas = ['', '', '', 'n', 'r', 's', 't', 'l', 'm', 'nd', 'ng', 'st', 'ck', 'rd', 'nt', 'x'];
  const seen = new Set(COMMON_WORDS);
  const words = [...COMMON_WORDS];
  while (words.length < 8000) {
    const syl = 1 + (rand() % 4);
    let w = '';
    for (let i = 0; i < syl; i++) w += onsets[rand() % onsets.length] + nuclei[rand() % nuclei.length] + codas[rand() % codas.length];
    if (w.length < 2 || seen.has(w)) continue;
    seen.add(w);
    words.push(w);
  }
  return words.map((w) => Buffer.from(w));
}

/**
 * Text-like data: words drawn with a Zipf-like distribution (rank^-1.07) from the vocabulary by a seeded
 * PRNG, with commas, full stops, capitals after a stop, ~72-column lines and paragraph breaks. Compresses
 * about like English prose; never repeats itself, so no chunk of it equals another.
 */
function writeText(file: string, size: number, seed: number): void {
  const words = vocabulary(seed);
  const caps = words.map((w) => { const c = Buffer.from(w); if (c[0] >= 97 && c[0] <= 122) c[0] -= 32; return c; });
  const weights = words.map((_, i) => 1 / Math.pow(i + 1, 1.07));
  const total = weights.reduce((a, b) => a + b, 0);
  const table = new Uint16Array(65536);
  let acc = 0, j = 0;
  for (let i = 0; i < words.length; i++) {
    acc += weights[i] / total;
    const upto = Math.min(65536, Math.round(acc * 65536));
    for (; j < upto; j++) table[j] = i;
  }
  for (; j < 65536; j++) table[j] = words.length - 1;

  const rand = prng(seed);
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.allocUnsafe(MiB);
  let pos = 0, written = 0, col = 0, capital = true;
  while (written < size) {
    const r = rand();
    const idx = table[r & 0xffff];
    const w = capital ? caps[idx] : words[idx];
    capital = false;
    if (pos + w.length + 3 > buf.length) {
      const n = Math.min(pos, size - written);
      fs.writeSync(fd, buf, 0, n);
      written += n;
      pos = 0;
      if (written >= size) break;
    }
    for (let i = 0; i < w.length; i++) buf[pos++] = w[i];
    col += w.length + 1;
    const p = r >>> 16;
    if (p < 3500) buf[pos++] = 44; // ,
    else if (p < 7000) { buf[pos++] = 46; capital = true; } // .
    if (capital && p < 4200) { buf[pos++] = 10; buf[pos++] = 10; col = 0; } // paragraph
    else if (col >= 72) { buf[pos++] = 10; col = 0; } else buf[pos++] = 32;
  }
  if (written < size) { fs.writeSync(fd, buf, 0, size - written); }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

/**
 * A source tree like a project's or /usr/share/doc: `count` text files of 60 B to 256 KiB (log-normal, median
 * about 2 KiB), 100 per directory, cut from the text sample; then a tarball of it and a git repository of it.
 */
function writeTree(dir: string, count: number, sample: string, seed: number): void {
  const text = fs.readFileSync(sample);
  const rand = prng(seed);
  const unit = () => (rand() + 1) / 4294967297;
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
    const normal = Math.sqrt(-2 * Math.log(unit())) * Math.cos(2 * Math.PI * unit());
    const len = Math.max(60, Math.min(256 * 1024, Math.round(2048 * Math.exp(1.5 * normal))));
    const off = rand() % (text.length - len);
    fs.writeFileSync(path.join(sub, `f${String(i).padStart(5, '0')}.txt`), text.subarray(off, off + len));
  }
}

function writeRandom(file: string, size: number): void {
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.allocUnsafe(MiB);
  for (let done = 0; done < size; done += buf.length) {
    randomFillSync(buf);
    fs.writeSync(fd, buf, 0, Math.min(buf.length, size - done));
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

// ---------------------------------------------------------------------------------------------
// helper loops (run in a child process: `bench.ts __worker NAME JSON`)

function workerMain(name: string, a: any): unknown {
  switch (name) {
    case 'randread': {
      // Cold pass then warm pass over the same seeded 4 KiB-aligned offsets, on one open file.
      // Each read is compared with the source (untimed) so that wrong bytes are caught.
      const offs = offsets(a.count, a.size, a.seed);
      const fd = fs.openSync(a.file, 'r');
      const src = fs.openSync(a.source, 'r');
      const buf = Buffer.alloc(BLOCK), ref = Buffer.alloc(BLOCK);
      // Also kept apart: the cold reads that are the first of the pass in their 1 MiB region (the size of a
      // sefs chunk), i.e. that no earlier read of the pass can have brought into a cache.
      const pass = () => {
        const lat: number[] = [], first: number[] = [];
        const seen = new Set<number>();
        let bad = 0;
        for (const off of offs) {
          const t0 = nowMs();
          const n = fs.readSync(fd, buf, 0, BLOCK, off);
          const ms = nowMs() - t0;
          lat.push(ms);
          const region = Math.floor(off / MiB);
          if (!seen.has(region)) { seen.add(region); first.push(ms); }
          fs.readSync(src, ref, 0, BLOCK, off);
          if (n !== BLOCK || !buf.equals(ref)) bad++;
        }
        return { ...stats(lat), mismatches: bad, firstInMiB: stats(first) };
      };
      const cold = pass();
      const warm = pass();
      fs.closeSync(fd);
      fs.closeSync(src);
      return { cold, warm };
    }
    case 'randwrite': {
      // pwrite 4 KiB of fresh random bytes at a seeded offset, then fsync; the pair is timed.
      const offs = offsets(a.count, a.size, a.seed);
      const fd = fs.openSync(a.file, 'r+');
      const buf = Buffer.alloc(BLOCK);
      const lat: number[] = [];
      for (const off of offs) {
        randomFillSync(buf);
        const t0 = nowMs();
        fs.writeSync(fd, buf, 0, BLOCK, off);
        fs.fsyncSync(fd);
        lat.push(nowMs() - t0);
      }
      const t0 = nowMs();
      fs.closeSync(fd);
      return { ...stats(lat), closeMs: nowMs() - t0 };
    }
    case 'smallcreate': {
      // count files of 512..4096 bytes of text, 100 per directory; open/write/close each.
      const text = fs.readFileSync(a.textSample);
      const rand = prng(a.seed);
      const t0 = nowMs();
      let bytes = 0;
      for (let i = 0; i < a.count; i++) {
        const dir = path.join(a.dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
        if (i % 100 === 0) fs.mkdirSync(dir, { recursive: true });
        const len = 512 + (rand() % 3585);
        const off = rand() % (text.length - len);
        fs.writeFileSync(path.join(dir, `f${String(i).padStart(5, '0')}.txt`), text.subarray(off, off + len));
        bytes += len;
      }
      return { ms: nowMs() - t0, bytes };
    }
    case 'smallread': {
      // Walk the tree and read every file back whole.
      const t0 = nowMs();
      let files = 0, bytes = 0;
      const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else { bytes += fs.readFileSync(p).length; files++; }
        }
      };
      walk(a.dir);
      return { ms: nowMs() - t0, files, bytes };
    }
    default:
      throw new Error(`unknown worker ${name}`);
  }
}

// ---------------------------------------------------------------------------------------------
// targets

interface Options {
  scratch: string;
  only: string[];
  sizeMb: number;
  cacheMb?: number;
  reads: number;
  writes: number;
  files: number;
  seed: number;
  stepTimeoutS: number;
  out: string;
  cases: string[];
}

abstract class Target {
  constructor(readonly name: string, readonly root: string) {}
  /** Where the benchmark's files go. */
  abstract get dataDir(): string;
  /** What `du -sb` measures for stored bytes. */
  abstract get storeDir(): string;
  /** PID of the daemon serving the mount, if any. */
  pid(): number | undefined { return undefined; }
  abstract setup(): Promise<void>;
  /** Unmount and mount again (FUSE targets), so that no daemon cache serves the next read. */
  async remount(): Promise<void> {}
  abstract teardown(): Promise<void>;
  /** Makes a cold start: remount and drop the page cache. */
  async cold(): Promise<void> { await this.remount(); dropCaches(); }
}

class PlainTarget extends Target {
  get dataDir() { return path.join(this.root, 'dir'); }
  get storeDir() { return this.dataDir; }
  async setup() { fs.mkdirSync(this.dataDir, { recursive: true }); }
  async teardown() { fs.rmSync(this.root, { recursive: true, force: true }); }
}

/** A FUSE daemon run in the foreground by us (so we know its PID), detached into its own session. */
abstract class FuseTarget extends Target {
  protected proc?: { pid: number; exited: boolean; code: number | null; signal: string | null };
  protected mountCount = 0;
  get mnt() { return path.join(this.root, 'mnt'); }
  get dataDir() { return this.mnt; }
  pid() { return this.proc && !this.proc.exited ? this.proc.pid : undefined; }
  protected abstract daemonCommand(): [string, string[]];
  protected abstract unmountCommand(): Promise<void>;
  protected logFile() { return path.join(this.root, `daemon-${this.mountCount}.log`); }
  protected daemonLog(): string {
    try { return lastLines(fs.readFileSync(this.logFile(), 'utf8'), 6); } catch { return ''; }
  }

  async mount(): Promise<void> {
    this.mountCount++;
    fs.mkdirSync(this.mnt, { recursive: true });
    const [cmd, args] = this.daemonCommand();
    const logFd = fs.openSync(this.logFile(), 'a');
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', logFd, logFd] });
    fs.closeSync(logFd);
    const proc = { pid: child.pid!, exited: false, code: null as number | null, signal: null as string | null };
    child.on('exit', (code, signal) => { proc.exited = true; proc.code = code; proc.signal = signal; });
    child.on('error', () => { proc.exited = true; });
    child.unref();
    this.proc = proc;
    fs.appendFileSync(path.join(OPTS.scratch, 'pids'), `${proc.pid} ${this.mnt}\n`);
    const deadline = Date.now() + 60_000;
    while (!mountedAt(this.mnt)) {
      if (proc.exited || !alive(proc.pid)) {
        throw new Error(`mount process exited (code ${proc.code}, signal ${proc.signal}) before the mount was live: ${this.daemonLog()}`);
      }
      if (Date.now() > deadline) throw new Error(`mount not live after 60 s: ${this.daemonLog()}`);
      await sleep(50);
    }
  }

  async unmount(): Promise<void> {
    if (!this.proc) return;
    const proc = this.proc;
    if (mountedAt(this.mnt)) {
      try {
        await this.unmountCommand();
      } catch (e) {
        note(this.name, `unmount failed: ${(e as Error).message}; falling back to fusermount -u`);
        if (run('fusermount', ['-u', this.mnt], { timeoutS: 30 }).code !== 0) run('fusermount', ['-uz', this.mnt], { timeoutS: 30 });
      }
    }
    const deadline = Date.now() + 30_000;
    while (!proc.exited && alive(proc.pid) && Date.now() < deadline) await sleep(50);
    if (!proc.exited && alive(proc.pid)) {
      note(this.name, `daemon ${proc.pid} still running 30 s after unmount; sent SIGTERM`);
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
      const d2 = Date.now() + 10_000;
      while (alive(proc.pid) && Date.now() < d2) await sleep(50);
      if (alive(proc.pid)) { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }
    } else if (proc.code !== 0 && proc.code !== null) {
      note(this.name, `daemon exited with code ${proc.code} after unmount: ${this.daemonLog()}`);
    }
    if (mountedAt(this.mnt)) run('fusermount', ['-uz', this.mnt], { timeoutS: 30 });
    this.proc = undefined;
  }

  async remount() { await this.unmount(); await this.mount(); }

  async teardown() {
    try { await this.unmount(); } finally {
      if (!mountedAt(this.mnt)) fs.rmSync(this.root, { recursive: true, force: true });
    }
  }

  /** After a timeout the mount may be wedged: detach it lazily and kill the daemon. */
  async abort(): Promise<void> {
    if (mountedAt(this.mnt)) run('fusermount', ['-uz', this.mnt], { timeoutS: 30 });
    if (this.proc && alive(this.proc.pid)) { try { process.kill(this.proc.pid, 'SIGKILL'); } catch { /* gone */ } }
    this.proc = undefined;
  }
}

class GocryptfsTarget extends FuseTarget {
  get cipher() { return path.join(this.root, 'cipher'); }
  get passfile() { return path.join(this.root, 'passfile'); }
  get storeDir() { return this.cipher; }
  protected daemonCommand(): [string, string[]] {
    return ['gocryptfs', ['-fg', '-q', '-passfile', this.passfile, this.cipher, this.mnt]];
  }
  protected async unmountCommand() { await mustRunAsync('fusermount', ['-u', this.mnt], 60); }
  async setup() {
    fs.mkdirSync(this.cipher, { recursive: true });
    fs.writeFileSync(this.passfile, 'sefs benchmark passphrase\n', { mode: 0o600 });
    mustRun('gocryptfs', ['-init', '-q', '-passfile', this.passfile, this.cipher], { timeoutS: 120 });
    await this.mount();
  }
}

class SefsTarget extends FuseTarget {
  constructor(name: string, root: string, readonly profile: Profile) { super(name, root); }
  get cli() { return path.join(REPO, 'dist', 'cli', 'main.js'); }
  get vault() { return path.join(this.root, 'vault'); }
  get storeDir() { const c = path.join(this.vault, 'chunks'); return fs.existsSync(c) ? c : this.vault; }
  protected daemonCommand(): [string, string[]] {
    const extra = OPTS.cacheMb !== undefined ? ['--cache-mb', String(OPTS.cacheMb)] : [];
    return [process.execPath, [this.cli, 'mount', this.vault, this.mnt, '--foreground', ...extra]];
  }
  protected async unmountCommand() { await mustRunAsync(process.execPath, [this.cli, 'umount', this.mnt], 120); }
  async setup() {
    if (!fs.existsSync(this.cli)) throw new Error(`${path.relative(REPO, this.cli)} does not exist${process.env.SEFS_BENCH_BUILD ? ` (build: ${process.env.SEFS_BENCH_BUILD})` : ''}`);
    fs.mkdirSync(this.root, { recursive: true });
    const r = run(process.execPath, [this.cli, 'init', this.vault, '--profile', this.profile], { timeoutS: 120 });
    if (r.code !== 0) throw new Error(`sefs init exited ${r.code}: ${lastLines(r.stderr || r.stdout, 3)}`);
    await this.mount();
    if (!fs.existsSync(path.join(this.vault, 'chunks'))) note(this.name, 'VAULT/chunks does not exist after mount; stored bytes are measured on the whole vault');
  }
}

// ---------------------------------------------------------------------------------------------
// cases and results

interface CaseDef { id: string; label: string; unit: string; better: 'hi' | 'lo' | ''; group: string }

function caseDefs(o: Options): CaseDef[] {
  const sz = o.sizeMb % 1024 === 0 ? `${o.sizeMb / 1024}G` : `${o.sizeMb}M`;
  return [
    { id: 'seq_write_random', label: `seq write ${sz} random`, unit: 'MB/s', better: 'hi', group: 'seq' },
    { id: 'seq_write_text', label: `seq write ${sz} text`, unit: 'MB/s', better: 'hi', group: 'seq' },
    { id: 'seq_read_random', label: `seq read ${sz} random (cold)`, unit: 'MB/s', better: 'hi', group: 'seq' },
    { id: 'seq_read_text', label: `seq read ${sz} text (cold)`, unit: 'MB/s', better: 'hi', group: 'seq' },
    { id: 'stored_random', label: `stored / logical, random`, unit: '%', better: 'lo', group: 'seq' },
    { id: 'stored_text', label: `stored / logical, text`, unit: '%', better: 'lo', group: 'seq' },
    { id: 'peak_rss_write', label: `daemon peak RSS writing ${sz}`, unit: 'MB', better: 'lo', group: 'seq' },
    { id: 'rr_cold_p50', label: `4K rand read cold p50 (${o.reads})`, unit: 'ms', better: 'lo', group: 'randread' },
    { id: 'rr_cold_p99', label: `4K rand read cold p99`, unit: 'ms', better: 'lo', group: 'randread' },
    { id: 'rr_first_p50', label: `  cold, 1st read of its MiB: p50`, unit: 'ms', better: 'lo', group: 'randread' },
    { id: 'rr_first_p99', label: `  cold, 1st read of its MiB: p99`, unit: 'ms', better: 'lo', group: 'randread' },
    { id: 'rr_warm_p50', label: `4K rand read warm p50`, unit: 'ms', better: 'lo', group: 'randread' },
    { id: 'rr_warm_p99', label: `4K rand read warm p99`, unit: 'ms', better: 'lo', group: 'randread' },
    { id: 'dedup_new', label: `2nd copy of ${sz}: new stored`, unit: '%', better: 'lo', group: 'dedup' },
    { id: 'dedup_write', label: `2nd copy of ${sz}: write`, unit: 'MB/s', better: 'hi', group: 'dedup' },
    { id: 'rw_p50', label: `4K write+fsync p50 (${o.writes})`, unit: 'ms', better: 'lo', group: 'randwrite' },
    { id: 'rw_p99', label: `4K write+fsync p99`, unit: 'ms', better: 'lo', group: 'randwrite' },
    { id: 'rw_stored', label: `4K write: stored growth/write`, unit: 'KiB', better: 'lo', group: 'randwrite' },
    { id: 'rw_daemon_io', label: `4K write: daemon disk writes/write`, unit: 'KiB', better: 'lo', group: 'randwrite' },
    { id: 'small_create', label: `${o.files} files: create`, unit: 's', better: 'lo', group: 'small' },
    { id: 'small_ls', label: `${o.files} files: ls -lR (cold)`, unit: 's', better: 'lo', group: 'small' },
    { id: 'small_read', label: `${o.files} files: read all`, unit: 's', better: 'lo', group: 'small' },
    { id: 'small_rm', label: `${o.files} files: rm -rf`, unit: 's', better: 'lo', group: 'small' },
    { id: 'tools_untar', label: `tar xf of ${o.files} files (60 B-256 KiB)`, unit: 's', better: 'lo', group: 'tools' },
    { id: 'tools_untar_sync', label: `  then sync`, unit: 's', better: 'lo', group: 'tools' },
    { id: 'tools_read', label: `  read all (cold)`, unit: 's', better: 'lo', group: 'tools' },
    { id: 'tools_rm', label: `  rm -rf`, unit: 's', better: 'lo', group: 'tools' },
    { id: 'tools_git_clone', label: `git clone (${o.files} files, local)`, unit: 's', better: 'lo', group: 'tools' },
    { id: 'tools_npm_ci', label: `npm ci of sefs (offline, no scripts)`, unit: 's', better: 'lo', group: 'tools' },
  ];
}

/** results[caseId][target] = value, or a string for an error / unavailability. */
type Cell = number | string;
const results: Record<string, Record<string, Cell>> = {};
const details: Record<string, Record<string, unknown>> = {};
const notes: string[] = [];

function note(target: string, msg: string): void {
  notes.push(`${target}: ${msg}`);
  log(`NOTE ${target}: ${msg}`);
}

function put(id: string, target: string, v: Cell, detail?: unknown): void {
  (results[id] ??= {})[target] = v;
  if (detail !== undefined) (details[id] ??= {})[target] = detail;
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

// ---------------------------------------------------------------------------------------------
// the run

let OPTS: Options;

/** The sefs targets, one per profile, the default first: the ratios are the default's; the others run the seq case. */
const MAIN_SEFS = `sefs-${DEFAULT_VAULT_PROFILE}`;
const SEFS_TARGETS = [MAIN_SEFS, ...PROFILES.filter((p) => p !== DEFAULT_VAULT_PROFILE).map((p) => `sefs-${p}`)];
const TARGETS = ['plain', 'gocryptfs', ...SEFS_TARGETS];

function parseArgs(argv: string[]): Options {
  const o: Options = {
    scratch: '', only: TARGETS, sizeMb: 1024, reads: 2000, writes: 200,
    files: 5000, seed: 42, stepTimeoutS: 0, out: path.join(REPO, 'bench-results'), cases: ['seq', 'randread', 'dedup', 'randwrite', 'small', 'tools'],
  };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split(/=(.*)/s, 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (k) {
      case '--scratch': o.scratch = val(); break;
      case '--dir': val(); break; // handled by scripts/bench
      case '--only': o.only = val().split(',').flatMap((t) => (t === 'sefs' ? SEFS_TARGETS : [t.trim()])); break;
      case '--size-mb': o.sizeMb = Number(val()); break;
      case '--cache-mb': o.cacheMb = Number(val()); break;
      case '--reads': o.reads = Number(val()); break;
      case '--writes': o.writes = Number(val()); break;
      case '--files': o.files = Number(val()); break;
      case '--seed': o.seed = Number(val()); break;
      case '--step-timeout': o.stepTimeoutS = Number(val()); break;
      case '--out': o.out = path.resolve(process.env.BENCH_START_DIR ?? process.cwd(), val()); break;
      case '--cases': o.cases = val().split(','); break;
      default: throw new Error(`unknown option ${argv[i]} (see scripts/bench --help)`);
    }
  }
  if (!o.scratch) throw new Error('--scratch DIR is required (scripts/bench passes it)');
  for (const t of o.only) if (![...TARGETS, 's3'].includes(t)) throw new Error(`unknown target ${t}`);
  if (!(o.sizeMb >= 1)) throw new Error('--size-mb must be >= 1');
  // A 1 GiB step at ~1 MB/s still finishes; a hung daemon is given up on.
  if (!o.stepTimeoutS) o.stepTimeoutS = Math.max(300, Math.round(o.sizeMb * 1.2));
  return o;
}

interface Sources { random: string; text: string; sample: string; tree: string; tarball: string; repo: string; npmProject: string }

/** The everyday-tool cases' sources, outside every target: a tree and its tarball, a git repository, this project's lock file. */
function prepareTools(src: Sources, o: Options): void {
  const g0 = Date.now();
  writeTree(src.tree, o.files, src.sample, o.seed + 11);
  mustRun('tar', ['-cf', src.tarball, '-C', src.tree, '.'], { timeoutS: 300 });
  fs.mkdirSync(src.repo);
  const git = (...args: string[]) => mustRun('git', ['-C', src.repo, '-c', 'user.name=bench', '-c', 'user.email=bench@localhost', ...args], { timeoutS: 600, quietStdout: true });
  git('init', '-q');
  fs.cpSync(src.tree, src.repo, { recursive: true });
  git('add', '-A');
  git('commit', '-q', '-m', 'tree');
  fs.mkdirSync(src.npmProject);
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(REPO, f), path.join(src.npmProject, f));
  log(`generated the tools' tree (${o.files} files), tarball and git repository in ${((Date.now() - g0) / 1000).toFixed(1)} s`);
}

async function runTarget(t: Target, o: Options, src: Sources, defs: CaseDef[]): Promise<void> {
  const size = o.sizeMb * MiB;
  const T = o.stepTimeoutS;
  // The other profiles differ from the default only in how chunks are compressed: the streams show it.
  const seqOnly = t instanceof SefsTarget && t.name !== MAIN_SEFS;
  const wanted = defs.filter((d) => o.cases.includes(d.group) && (!seqOnly || d.group === 'seq'));
  const fileA = () => path.join(t.dataDir, 'random.bin');
  const fileB = () => path.join(t.dataDir, 'text.txt');
  const fileA2 = () => path.join(t.dataDir, 'random-copy.bin');
  const has = (g: string) => wanted.some((d) => d.group === g);

  log(`== ${t.name}: setting up`);
  try {
    await t.setup();
  } catch (e) {
    const reason = `unavailable: ${(e as Error).message}`;
    log(`${t.name} ${reason}`);
    for (const d of wanted) put(d.id, t.name, reason);
    if (t instanceof FuseTarget) await t.abort();
    try { await t.teardown(); } catch { /* best effort */ }
    return;
  }

  /** Runs one step; a failure is recorded in the step's cells; a timeout ends this target. */
  const step = async (ids: string[], fn: () => Promise<void> | void): Promise<void> => {
    const ws = ids.filter((id) => wanted.some((d) => d.id === id));
    if (!ws.length) return;
    try {
      await fn();
    } catch (e) {
      const msg = (e as Error).message;
      for (const id of ws) if (typeof results[id]?.[t.name] !== 'number') put(id, t.name, `error: ${msg}`);
      note(t.name, `${ws.join(',')}: ${msg}`);
      if (e instanceof StepTimeout) throw e;
    }
  };

  try {
    // --- sequential writes (fresh mount; the daemon's peak RSS and CPU are taken per file)
    const rss: number[] = [];
    const seqWrite = async (id: string, source: string, dst: string, storedId: string) => {
      prewarm(source);
      const pid = t.pid();
      if (pid) resetPeakRss(pid);
      const before = duBytes(t.storeDir);
      const cpu0 = pid ? cpuSeconds(pid) : 0;
      const r = run('dd', [`if=${source}`, `of=${dst}`, 'bs=1M', 'conv=fsync'], { timeoutS: T });
      if (r.code !== 0) throw new Error(`dd exited ${r.code}: ${lastLines(r.stderr, 2)}`);
      const cpu = pid ? cpuSeconds(pid) - cpu0 : undefined;
      const st = fs.statSync(dst);
      if (st.size !== size) throw new Error(`wrote ${size} bytes but the file has ${st.size}`);
      put(id, t.name, mbps(size, r.ms), { ms: r.ms, daemonCpuS: cpu });
      run('sync', [], { timeoutS: 300 });
      const stored = duBytes(t.storeDir) - before;
      put(storedId, t.name, (100 * stored) / size, { bytes: stored });
      if (pid) rss.push(peakRssMB(pid));
      log(`${t.name} ${id}: ${mbps(size, r.ms).toFixed(1)} MB/s${cpu !== undefined ? `, daemon CPU ${cpu.toFixed(1)} s` : ''}`);
    };
    const seqRead = async (id: string, file: string, source: string) => {
      await t.cold();
      const r = run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'], { timeoutS: T });
      if (r.code !== 0) throw new Error(`dd exited ${r.code}: ${lastLines(r.stderr, 2)}`);
      put(id, t.name, mbps(size, r.ms), { ms: r.ms });
      log(`${t.name} ${id}: ${mbps(size, r.ms).toFixed(1)} MB/s`);
      // Untimed check that the bytes read back are the bytes written.
      const c = run('cmp', [source, file], { timeoutS: T });
      if (c.code !== 0) throw new Error(`content differs from what was written: ${lastLines(c.stdout + c.stderr, 2)}`);
    };
    const needA = has('seq') || has('randread') || has('randwrite') || has('dedup');
    if (needA && has('seq')) await step(['seq_write_random', 'stored_random'], () => seqWrite('seq_write_random', src.random, fileA(), 'stored_random'));
    else if (needA) mustRun('dd', [`if=${src.random}`, `of=${fileA()}`, 'bs=1M', 'conv=fsync'], { timeoutS: T });
    if (!fs.existsSync(fileA()) && needA) throw new Error('the random file could not be written; skipping the rest');
    if (has('seq')) {
      await step(['seq_write_text', 'stored_text'], () => seqWrite('seq_write_text', src.text, fileB(), 'stored_text'));
      if (rss.length) put('peak_rss_write', t.name, Math.max(...rss), { perFile: rss });
      await step(['seq_read_random'], () => seqRead('seq_read_random', fileA(), src.random));
      if (fs.existsSync(fileB())) await step(['seq_read_text'], () => seqRead('seq_read_text', fileB(), src.text));
      if (fs.existsSync(fileB())) fs.rmSync(fileB());
    }

    // --- 4 KiB random reads: fresh mount and dropped caches, then the same offsets again
    await step(['rr_cold_p50', 'rr_cold_p99', 'rr_first_p50', 'rr_first_p99', 'rr_warm_p50', 'rr_warm_p99'], async () => {
      await t.cold();
      const r = worker('randread', { file: fileA(), source: src.random, size, count: o.reads, seed: o.seed + 1 }, T);
      put('rr_cold_p50', t.name, r.cold.p50, r.cold);
      put('rr_cold_p99', t.name, r.cold.p99);
      put('rr_first_p50', t.name, r.cold.firstInMiB.p50, r.cold.firstInMiB);
      put('rr_first_p99', t.name, r.cold.firstInMiB.p99);
      put('rr_warm_p50', t.name, r.warm.p50, r.warm);
      put('rr_warm_p99', t.name, r.warm.p99);
      log(`${t.name} randread: cold p50 ${r.cold.p50.toFixed(3)} ms p99 ${r.cold.p99.toFixed(3)} ms (first in MiB p50 ${r.cold.firstInMiB.p50.toFixed(3)} ms, n=${r.cold.firstInMiB.n}), warm p50 ${r.warm.p50.toFixed(4)} ms`);
      if (r.cold.mismatches || r.warm.mismatches) throw new Error(`random reads returned wrong bytes: ${r.cold.mismatches} cold, ${r.warm.mismatches} warm of ${o.reads}`);
    });

    // --- dedup: the same bytes written again as a second file
    await step(['dedup_new', 'dedup_write'], () => {
      prewarm(src.random);
      run('sync', [], { timeoutS: 300 });
      const before = duBytes(t.storeDir);
      const r = run('dd', [`if=${src.random}`, `of=${fileA2()}`, 'bs=1M', 'conv=fsync'], { timeoutS: T });
      if (r.code !== 0) throw new Error(`dd exited ${r.code}: ${lastLines(r.stderr, 2)}`);
      run('sync', [], { timeoutS: 300 });
      const grown = duBytes(t.storeDir) - before;
      put('dedup_new', t.name, (100 * grown) / size, { bytes: grown });
      put('dedup_write', t.name, mbps(size, r.ms), { ms: r.ms });
      log(`${t.name} dedup: +${grown} bytes (${((100 * grown) / size).toFixed(2)} %)`);
      fs.rmSync(fileA2());
    });

    // --- 4 KiB random writes with fsync into the 1 GiB file
    await step(['rw_p50', 'rw_p99', 'rw_stored', 'rw_daemon_io'], () => {
      run('sync', [], { timeoutS: 300 });
      const pid = t.pid();
      const before = duBytes(t.storeDir);
      const io0 = pid ? ioWriteBytes(pid) : 0;
      const r = worker('randwrite', { file: fileA(), size, count: o.writes, seed: o.seed + 2 }, T);
      run('sync', [], { timeoutS: 300 });
      const grown = duBytes(t.storeDir) - before;
      put('rw_p50', t.name, r.p50, r);
      put('rw_p99', t.name, r.p99);
      put('rw_stored', t.name, grown / o.writes / 1024, { bytes: grown });
      if (pid) put('rw_daemon_io', t.name, (ioWriteBytes(pid) - io0) / o.writes / 1024);
      log(`${t.name} randwrite: p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, stored +${(grown / o.writes / 1024).toFixed(1)} KiB/write`);
    });
    if (fs.existsSync(fileA())) fs.rmSync(fileA());

    // --- many small files: create; then cold (remount + drop caches) ls -lR; read all; rm -rf
    if (has('small')) {
      const dir = path.join(t.dataDir, 'small');
      await step(['small_create'], () => {
        const r = worker('smallcreate', { dir, count: o.files, seed: o.seed + 3, textSample: src.sample }, T);
        put('small_create', t.name, r.ms / 1000, r);
        log(`${t.name} small create: ${(r.ms / 1000).toFixed(2)} s`);
      });
      await step(['small_ls'], async () => {
        await t.cold();
        const r = run('ls', ['-lR', dir], { timeoutS: T, quietStdout: true });
        if (r.code !== 0) throw new Error(`ls exited ${r.code}: ${lastLines(r.stderr, 2)}`);
        put('small_ls', t.name, r.ms / 1000);
      });
      await step(['small_read'], () => {
        const r = worker('smallread', { dir }, T);
        if (r.files !== o.files) throw new Error(`read back ${r.files} files, expected ${o.files}`);
        put('small_read', t.name, r.ms / 1000, r);
      });
      await step(['small_rm'], () => {
        const r = run('rm', ['-rf', dir], { timeoutS: T });
        if (r.code !== 0) throw new Error(`rm exited ${r.code}: ${lastLines(r.stderr, 2)}`);
        put('small_rm', t.name, r.ms / 1000);
        log(`${t.name} small: ls ${fmt(results.small_ls?.[t.name], "s")} s, read ${fmt(results.small_read?.[t.name], "s")} s, rm ${(r.ms / 1000).toFixed(2)} s`);
      });
    }

    // --- everyday tools: tar xf of a source tree (then sync, a cold read of all, rm -rf), git clone, npm ci
    if (has('tools')) {
      const untarred = path.join(t.dataDir, 'untar');
      await step(['tools_untar', 'tools_untar_sync'], () => {
        fs.mkdirSync(untarred);
        const r = run('tar', ['-xf', src.tarball, '-C', untarred], { timeoutS: T });
        if (r.code !== 0) throw new Error(`tar exited ${r.code}: ${lastLines(r.stderr, 2)}`);
        put('tools_untar', t.name, r.ms / 1000);
        const s = run('sync', [], { timeoutS: 300 });
        put('tools_untar_sync', t.name, s.ms / 1000);
        log(`${t.name} untar: ${(r.ms / 1000).toFixed(2)} s, then sync ${(s.ms / 1000).toFixed(2)} s`);
      });
      await step(['tools_read'], async () => {
        await t.cold();
        const r = worker('smallread', { dir: untarred }, T);
        if (r.files !== o.files) throw new Error(`read back ${r.files} files, expected ${o.files}`);
        put('tools_read', t.name, r.ms / 1000, r);
        const d = run('diff', ['-r', '-q', src.tree, untarred], { timeoutS: T });
        if (d.code !== 0) throw new Error(`the untarred tree differs from its source: ${lastLines(d.stdout + d.stderr, 2)}`);
      });
      await step(['tools_rm'], () => {
        const r = run('rm', ['-rf', untarred], { timeoutS: T });
        if (r.code !== 0) throw new Error(`rm exited ${r.code}: ${lastLines(r.stderr, 2)}`);
        put('tools_rm', t.name, r.ms / 1000);
      });
      await step(['tools_git_clone'], () => {
        const clone = path.join(t.dataDir, 'clone');
        const r = run('git', ['clone', '-q', '--no-local', src.repo, clone], { timeoutS: T });
        if (r.code !== 0) throw new Error(`git clone exited ${r.code}: ${lastLines(r.stderr, 2)}`);
        put('tools_git_clone', t.name, r.ms / 1000);
        const st = run('git', ['-C', clone, 'status', '--porcelain'], { timeoutS: T });
        if (st.code !== 0 || st.stdout.trim()) throw new Error(`the clone is not clean: ${lastLines(st.stdout + st.stderr, 2)}`);
        log(`${t.name} git clone: ${(r.ms / 1000).toFixed(2)} s`);
        fs.rmSync(clone, { recursive: true, force: true });
      });
      await step(['tools_npm_ci'], () => {
        const project = path.join(t.dataDir, 'npm');
        fs.cpSync(src.npmProject, project, { recursive: true });
        // From the machine's npm cache (scripts/setup.sh filled it): what is timed is the files written.
        const r = run('npm', ['ci', '--prefix', project, '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { timeoutS: T, quietStdout: true });
        if (r.code !== 0) throw new Error(`npm ci exited ${r.code}: ${lastLines(r.stderr, 2)}`);
        put('tools_npm_ci', t.name, r.ms / 1000);
        log(`${t.name} npm ci: ${(r.ms / 1000).toFixed(2)} s`);
        fs.rmSync(project, { recursive: true, force: true });
      });
    }
  } catch (e) {
    const msg = (e as Error).message;
    for (const d of wanted) if (results[d.id]?.[t.name] === undefined) put(d.id, t.name, `skipped: ${msg}`);
    if (e instanceof StepTimeout && t instanceof FuseTarget) {
      note(t.name, `a step timed out; the mount was detached (fusermount -uz) and the daemon killed`);
      await t.abort();
    }
  } finally {
    log(`== ${t.name}: tearing down`);
    try { await t.teardown(); } catch (e) { note(t.name, `teardown: ${(e as Error).message}`); }
  }
}

/** Requests in flight on every block device (reads, writes and discards: /sys/block/X/stat, field 9). */
function diskInFlight(): number {
  let total = 0;
  for (const dev of fs.readdirSync('/sys/block')) {
    try { total += Number(fs.readFileSync(`/sys/block/${dev}/stat`, 'utf8').trim().split(/\s+/)[8] ?? 0); } catch { /* gone */ }
  }
  return total;
}

/**
 * Between targets: a target's teardown frees gigabytes, which a disk mounted with online discard trims after
 * the journal commits, in the first seconds of the next target's writes. sync, then wait until no request has
 * been in flight for a second (30 s at most), so every target starts on a quiet disk.
 */
async function settleDisk(): Promise<void> {
  const s = Date.now();
  spawnSync('sync');
  let quietSince = Date.now();
  while (Date.now() - s < 30_000 && Date.now() - quietSince < 1000) {
    if (diskInFlight() > 0) quietSince = Date.now();
    await new Promise((r) => setTimeout(r, 50));
  }
  log(`disk settled in ${((Date.now() - s) / 1000).toFixed(1)} s`);
}

// ---------------------------------------------------------------------------------------------
// output

function fmt(v: Cell | undefined, unit: string): string {
  if (v === undefined) return '-';
  if (typeof v === 'string') return v.startsWith('unavailable') ? 'n/a' : v.startsWith('skipped') ? 'skip' : 'ERR';
  if (unit === 'ms') return v < 1 ? v.toFixed(3) : v < 100 ? v.toFixed(2) : v.toFixed(0);
  if (unit === '%') return v.toFixed(v < 10 ? 2 : 1);
  if (unit === 's') return v.toFixed(2);
  return v < 100 ? v.toFixed(1) : v.toFixed(0);
}

function ratio(a: Cell | undefined, b: Cell | undefined): string {
  if (typeof a !== 'number' || typeof b !== 'number' || b === 0) return '-';
  return `${(a / b).toFixed(2)}x`;
}

function table(defs: CaseDef[], targets: string[]): string {
  const cols = ['case', 'unit', ...targets, 'sel/gocfs', 'sel/plain'];
  const rows: string[][] = [];
  for (const d of defs) {
    const r = results[d.id];
    if (!r) continue;
    const unit = d.unit + (d.better === 'hi' ? ' ^' : d.better === 'lo' ? ' v' : '');
    rows.push([d.label, unit, ...targets.map((t) => fmt(r[t], d.unit)), ratio(r[MAIN_SEFS], r.gocryptfs), ratio(r[MAIN_SEFS], r.plain)]);
  }
  const w = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(cols), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function machineInfo() {
  const gv = run('gocryptfs', ['-version'], { timeoutS: 10 });
  const git = run('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { timeoutS: 10 });
  const dirty = run('git', ['-C', REPO, 'status', '--porcelain', 'src'], { timeoutS: 10 });
  return {
    host: os.hostname(), kernel: os.release(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model,
    memMB: Math.round(os.totalmem() / 1e6), node: process.version, loadavg: os.loadavg(),
    gocryptfs: gv.code === 0 ? gv.stdout.trim() : 'not installed',
    sefsCommit: git.stdout.trim() + (dirty.stdout.trim() ? ' (src has uncommitted changes)' : ''),
    sefsBuild: process.env.SEFS_BENCH_BUILD ?? 'up to date',
  };
}

async function main(): Promise<void> {
  OPTS = parseArgs(process.argv.slice(2));
  const o = OPTS;
  const t0 = Date.now();
  const loadStart = os.loadavg();
  fs.writeFileSync(path.join(o.scratch, 'node.pid'), String(process.pid));
  const defs = caseDefs(o);
  const size = o.sizeMb * MiB;

  log(`scratch ${o.scratch}; targets ${o.only.join(', ')}; size ${o.sizeMb} MiB; cases ${o.cases.join(',')}`);
  const srcDir = path.join(o.scratch, 'src');
  fs.mkdirSync(srcDir, { recursive: true });
  const src: Sources = {
    random: path.join(srcDir, 'random.bin'), text: path.join(srcDir, 'text.txt'), sample: path.join(srcDir, 'sample.txt'),
    tree: path.join(srcDir, 'tree'), tarball: path.join(srcDir, 'tree.tar'), repo: path.join(srcDir, 'repo'), npmProject: path.join(srcDir, 'npm'),
  };
  const order = TARGETS.filter((t) => o.only.includes(t));
  // The sources of the local targets (the S3 case makes its own).
  if (order.length > 0) {
    let g0 = Date.now();
    writeRandom(src.random, size);
    log(`generated ${o.sizeMb} MiB random in ${((Date.now() - g0) / 1000).toFixed(1)} s`);
    g0 = Date.now();
    writeText(src.text, size, o.seed);
    writeText(src.sample, 4 * MiB, o.seed + 7);
    log(`generated ${o.sizeMb} MiB text in ${((Date.now() - g0) / 1000).toFixed(1)} s`);
    if (o.cases.includes('tools')) prepareTools(src, o);
  }
  // The S3 case (--only s3, or with the others): needs scripts/s3-server.sh's server; its own table.
  let s3: S3BenchResult | string | undefined;
  if (o.only.includes('s3')) {
    const s = Date.now();
    s3 = await runS3Bench(o.scratch, o.sizeMb, Math.min(o.reads, 500), log).catch((e: Error) => `failed: ${e.message}`);
    log(`== s3: done in ${((Date.now() - s) / 1000).toFixed(0)} s`);
  }
  await settleDisk();
  for (const name of order) {
    const root = path.join(o.scratch, name);
    const t = name === 'plain' ? new PlainTarget(name, root)
      : name === 'gocryptfs' ? new GocryptfsTarget(name, root)
      : new SefsTarget(name, root, name.slice('sefs-'.length) as Profile);
    const s = Date.now();
    await runTarget(t, o, src, defs);
    log(`== ${name}: done in ${((Date.now() - s) / 1000).toFixed(0)} s`);
    await settleDisk();
  }

  const totalS = (Date.now() - t0) / 1000;
  const out = table(defs, order);
  const legend = `^ higher is better, v lower is better; MB = 1e6 bytes; ratios are ${MAIN_SEFS} (the default profile) divided by gocryptfs / plain.`;
  const m = machineInfo();
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`\nsefs bench: ${o.sizeMb} MiB files, ${m.cpus} CPUs, ${m.memMB} MB RAM, kernel ${m.kernel}, node ${m.node}, ${m.gocryptfs.split(';')[0]}, sefs ${m.sefsCommit}\n`);
  process.stdout.write(`load average at start ${la(loadStart)}, at end ${la(os.loadavg())} (other load skews every number)\n\n`);
  if (order.length > 0) process.stdout.write(`${out}\n\n${legend}\n`);
  if (s3 !== undefined) process.stdout.write(`\n${typeof s3 === 'string' ? `S3: ${s3}` : s3Table(s3)}\n`);
  for (const r of Object.values(results)) {
    for (const [t, v] of Object.entries(r)) if (typeof v === 'string' && v.startsWith('unavailable')) notes.push(`${t}: ${v}`);
  }
  const uniq = [...new Set(notes)];
  if (uniq.length) process.stdout.write(`\nNotes:\n${uniq.map((n) => `  - ${n}`).join('\n')}\n`);
  process.stdout.write(`\nTotal ${totalS.toFixed(0)} s.\n`);

  fs.mkdirSync(o.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const file = path.join(o.out, `bench-${stamp}.json`);
  const json = {
    date: new Date().toISOString(), totalSeconds: totalS, machine: { ...m, loadavgStart: loadStart },
    options: { ...o, scratch: undefined }, cases: defs, results, details, notes: uniq, table: out, s3,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`JSON: ${path.relative(process.env.BENCH_START_DIR ?? process.cwd(), file)}\n`);
}

if (process.argv[2] === '__worker') {
  try {
    process.stdout.write(JSON.stringify(workerMain(process.argv[3], JSON.parse(process.argv[4]))) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: (e as Error).message }) + '\n');
    process.exitCode = 1;
  }
} else {
  main().catch((e) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
