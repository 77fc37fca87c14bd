// A/B of the small-file path (native-notes/benchmarking.md, sixth session): one run against one target.
//   node scripts/ab-small.mjs TARGET N [PHASES] [ENV=VALUE,...]
// TARGET: a sefs checkout with its build (dist/cli/main.js), or "gocryptfs". A fresh vault and mount under
// $AB_DIR (default /tmp, as the bench). PHASES, in order (default create,ls,read,rm): create (N files of
// 512-4096 bytes, 100 per directory, by a node loop), ls (new daemon, page cache dropped, ls -lR), lsw (the same
// with the page cache kept: what the disk costs ls is ls minus lsw), read (every
// file read whole), rm, tar (tar xf of $AB_TAR, default /var/tmp/ab-tree.tar: `node scripts/ab-tree.mjs
// /var/tmp/ab-tree 2000`), tread (cold read of it), trm.
// ENV: extra environment of the daemon (SEFS_TRACE_OPS=1, AB_NODE_ARGS=--cpu-prof ..., AB_PERF=PHASE to run
// perf record on the daemon during that phase). Prints one JSON line: per phase wall ms and the daemon's user
// and system CPU ms. Run as root (drop_caches). scripts/ab-rounds.sh alternates targets over rounds.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [target, nStr, phasesArg, extra] = process.argv.slice(2);
const N = Number(nStr ?? 1000);
const phases = (phasesArg ?? 'create,ls,read,rm').split(',');
const base = fs.mkdtempSync(path.join(process.env.AB_DIR ?? '/tmp', 'ab-run-'));
const mnt = path.join(base, 'mnt');
const store = path.join(base, 'store');
fs.mkdirSync(mnt);
const env = { ...process.env, ...(extra ? Object.fromEntries(extra.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) : {}) };
let daemon;
const isGo = target === 'gocryptfs';
const main = isGo ? '' : path.join(target, 'dist/cli/main.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mounted = () => fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return [Number(f[11]) * 10, Number(f[12]) * 10];
}
async function mount() {
  if (isGo) daemon = spawn('gocryptfs', ['-fg', '-q', '-passfile', path.join(base, 'pass'), store, mnt], { stdio: ['ignore', 'ignore', 'inherit'], env });
  else daemon = spawn('node', [...(env.AB_NODE_ARGS ? env.AB_NODE_ARGS.split(' ') : []), main, 'mount', store, mnt, '--foreground'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  for (let i = 0; i < 300 && !mounted(); i++) await sleep(50);
  if (!mounted()) throw new Error('mount failed');
}
async function umount() {
  const exited = new Promise((r) => daemon.once('exit', r));
  if (isGo) spawnSync('fusermount', ['-u', mnt]);
  else spawnSync('node', [main, 'umount', mnt], { stdio: 'inherit' });
  await exited;
}
function drop() {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}
let perfPhase;
function timed(fn) {
  let perf;
  if (env.AB_PERF === perfPhase) {
    perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-g', '-p', String(daemon.pid), '-o', env.AB_PERF_OUT ?? 'perf.data'], { stdio: 'ignore' });
    spawnSync('sleep', ['0.5']);
  }
  try { return timedRun(fn); } finally { if (perf) { perf.kill('SIGINT'); spawnSync('sleep', ['1']); } }
}
function timedRun(fn) {
  const c0 = cpuMs(daemon.pid);
  const t0 = performance.now();
  fn();
  const wall = performance.now() - t0;
  const c1 = cpuMs(daemon.pid);
  return { wall: Math.round(wall), usr: c1[0] - c0[0], sys: c1[1] - c0[1] };
}
const child = (code, ...args) => {
  const r = spawnSync('node', ['-e', code, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('child failed');
};

const CREATE = `
const fs=require('fs'),path=require('path');const [dir,n]=[process.argv[1],+process.argv[2]];
let s=7;const rnd=()=>(s=(s*1103515245+12345)>>>0);const text=Buffer.alloc(8192);for(let i=0;i<text.length;i++)text[i]=97+(rnd()%26);
for(let i=0;i<n;i++){const d=path.join(dir,'d'+String(Math.floor(i/100)).padStart(3,'0'));if(i%100===0)fs.mkdirSync(d,{recursive:true});
const len=512+(rnd()%3585);fs.writeFileSync(path.join(d,'f'+String(i).padStart(5,'0')+'.txt'),text.subarray(0,len));}`;
const READ = `
const fs=require('fs'),path=require('path');let files=0;const walk=(d)=>{for(const e of fs.readdirSync(d,{withFileTypes:true})){const p=path.join(d,e.name);if(e.isDirectory())walk(p);else{fs.readFileSync(p);files++;}}};walk(process.argv[1]);if(files!==+process.argv[2])throw new Error('files '+files);`;

const out = { target: path.basename(target), n: N };
try {
  if (isGo) {
    fs.writeFileSync(path.join(base, 'pass'), 'benchpass\n');
    fs.mkdirSync(store);
    execFileSync('gocryptfs', ['-init', '-q', '-passfile', path.join(base, 'pass'), store], { stdio: 'ignore' });
  } else execFileSync('node', [main, 'init', store], { stdio: 'ignore' });
  await mount();
  const tree = path.join(mnt, 'tree');
  const untar = path.join(mnt, 'untar');
  // As the bench's cold(): a new daemon, then the page cache dropped.
  const cold = async () => { await umount(); await mount(); drop(); };
  const lsR = () => spawnSync('ls', ['-lR', tree], { stdio: ['ignore', 'ignore', 'inherit'] });
  const count = (dir) => Number(execFileSync('find', [dir, '-type', 'f']).toString().split('\n').filter(Boolean).length);
  for (const ph of phases) {
    perfPhase = ph;
    if (ph === 'create') out.create = timed(() => child(CREATE, tree, String(N)));
    else if (ph === 'ls') { await cold(); out.ls = timed(lsR); }
    else if (ph === 'lsw') { await umount(); await mount(); out.lsw = timed(lsR); }
    else if (ph === 'read') out.read = timed(() => child(READ, tree, String(N)));
    else if (ph === 'rm') out.rm = timed(() => spawnSync('rm', ['-rf', tree], { stdio: 'inherit' }));
    else if (ph === 'tar') { fs.mkdirSync(untar); out.tar = timed(() => spawnSync('tar', ['-xf', env.AB_TAR ?? '/var/tmp/ab-tree.tar', '-C', untar], { stdio: 'inherit' })); }
    else if (ph === 'tread') { await cold(); const n = count(env.AB_TREE ?? '/var/tmp/ab-tree'); out.tread = timed(() => child(READ, untar, String(n))); }
    else if (ph === 'trm') out.trm = timed(() => spawnSync('rm', ['-rf', untar], { stdio: 'inherit' }));
    else throw new Error('unknown phase ' + ph);
  }
  await umount();
} finally {
  if (mounted()) spawnSync('fusermount', ['-uz', mnt]);
  if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
  fs.rmSync(base, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
