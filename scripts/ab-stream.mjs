// A/B of streaming through sefs builds (native-notes/benchmarking.md, seventh session). One measurement through
// a fresh foreground daemon of BUILD (a checkout with dist/ built), one JSON line: MB/s or latencies, and the
// daemon's CPU ms per thread over the timed part only. Source files in AB_SRC (default /var/tmp/srab): random.bin
// and text.txt (e.g. the bench's, kept with --keep). Run as root (drops the page cache).
//   node scripts/ab-stream.mjs prep BUILD VAULT             a vault (PROFILE) with both files written through the mount
//   node scripts/ab-stream.mjs read BUILD VAULT FILE        cold: new daemon, drop_caches, dd bs=1M to /dev/null
//   node scripts/ab-stream.mjs rand BUILD VAULT FILE [N]    cold: N (2000) 4 KiB preads at seeded offsets, checked
//   node scripts/ab-stream.mjs write BUILD VAULT FILE       a fresh vault at VAULT, dd bs=1M conv=fsync
// Environment: PROFILE=fast|compat|selective (the vault's; default: the build's), BYTID=1 (CPU per thread id), NODEFLAGS='--trace-gc' (daemon node flags), PERF=FILE (perf record -g
// of the daemon over the timed part, reads and writes), TRACE=1 (SEFS_TRACE_OPS=1: the op table lands in VAULT.log).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
const [cmd, build, vault, file, countArg] = process.argv.slice(2);
const SRC = process.env.AB_SRC ?? '/var/tmp/srab';
const mnt = `${vault}.mnt`;
const TICK = 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mounted = () => fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
function threads(pid) {
  const out = {};
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(f[11]) + Number(f[12])) * TICK;
      const key = Number(t) === pid ? "main" : (process.env.BYTID ? comm + ":" + t : comm);
      out[key] = (out[key] ?? 0) + ms;
    } catch {}
  }
  return out;
}
async function mount(env = {}) {
  fs.mkdirSync(mnt, { recursive: true });
  const args = [...(process.env.NODEFLAGS ? process.env.NODEFLAGS.split(' ') : []), `${build}/dist/cli/main.js`, 'mount', vault, mnt, '--foreground'];
  const child = spawn('node', args, { stdio: ['ignore', fs.openSync(`${vault}.log`, 'a'), fs.openSync(`${vault}.log`, 'a')], env: { ...process.env, ...env, ...(process.env.TRACE ? { SEFS_TRACE_OPS: "1" } : {}) }, detached: true });
  for (let i = 0; i < 300 && !mounted(); i++) await sleep(50);
  if (!mounted()) throw new Error('no mount');
  await sleep(300);
  return child;
}
async function umount(child) {
  execFileSync('node', [`${build}/dist/cli/main.js`, 'umount', mnt]);
  await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
}
/** With PERF=FILE: a perf record -g of the daemon, from before the timed part to its end. */
async function startPerf(pid) {
  if (!process.env.PERF) return undefined;
  const perf = spawn('perf', ['record', '-F', '1999', '-g', '-p', String(pid), '-o', process.env.PERF], { stdio: 'ignore' });
  await sleep(500);
  return perf;
}
async function stopPerf(perf) {
  if (!perf) return;
  perf.kill('SIGINT');
  await new Promise((r) => perf.on('exit', r));
}
// The vault's profile: PROFILE, else the build's default.
const initVault = () => execFileSync('node', [`${build}/dist/cli/main.js`, 'init', vault, ...(process.env.PROFILE ? ['--profile', process.env.PROFILE] : [])]);
const drop = () => { execFileSync('sync'); fs.writeFileSync('/proc/sys/vm/drop_caches', '3'); };
const now = () => Number(process.hrtime.bigint()) / 1e6;
if (cmd === 'prep') {
  initVault();
  const d = await mount();
  for (const f of ['random.bin', 'text.txt']) execFileSync('dd', [`if=${SRC}/${f}`, `of=${mnt}/${f}`, 'bs=1M', 'conv=fsync'], { stdio: 'ignore' });
  await umount(d);
} else if (cmd === 'write') {
  // write FILE into a fresh vault at VAULT (removed first), timed like the bench (dd conv=fsync)
  fs.rmSync(vault, { recursive: true, force: true });
  initVault();
  execFileSync('dd', [`if=${SRC}/${file}`, 'of=/dev/null', 'bs=1M'], { stdio: 'ignore' });
  const d = await mount();
  const before = threads(d.pid);
  const perf = await startPerf(d.pid);
  const t0 = now();
  execFileSync('dd', [`if=${SRC}/${file}`, `of=${mnt}/${file}`, 'bs=1M', 'conv=fsync'], { stdio: 'ignore' });
  const ms = now() - t0;
  const after = threads(d.pid);
  await stopPerf(perf);
  const cpu = {};
  for (const k of Object.keys(after)) cpu[k] = (after[k] - (before[k] ?? 0));
  await umount(d);
  console.log(JSON.stringify({ build: build.split('/').pop(), file, write: true, mbs: +(fs.statSync(`${SRC}/${file}`).size / 1e6 / (ms / 1000)).toFixed(1), load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0], cpu }));
} else if (cmd === 'read' || cmd === 'rand') {
  const d = await mount();
  drop();
  const before = threads(d.pid);
  const perf = await startPerf(d.pid);
  const t0 = now();
  let res;
  if (cmd === 'read') {
    execFileSync('dd', [`if=${mnt}/${file}`, 'of=/dev/null', 'bs=1M'], { stdio: 'ignore' });
    const ms = now() - t0;
    const size = fs.statSync(`${SRC}/${file}`).size;
    res = { mbs: +(size / 1e6 / (ms / 1000)).toFixed(1), ms: Math.round(ms) };
  } else {
    const size = fs.statSync(`${SRC}/${file}`).size;
    const count = Number(countArg ?? 2000);
    let x = 42; const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const fd = fs.openSync(`${mnt}/${file}`, 'r'), src = fs.openSync(`${SRC}/${file}`, 'r');
    const buf = Buffer.alloc(4096), ref = Buffer.alloc(4096);
    const lat = [], first = []; const seen = new Set(); let bad = 0;
    for (let i = 0; i < count; i++) {
      const off = Math.floor(rnd() * (size / 4096)) * 4096;
      const a = now(); fs.readSync(fd, buf, 0, 4096, off); const ms = now() - a;
      lat.push(ms); const r = Math.floor(off / 1048576); if (!seen.has(r)) { seen.add(r); first.push(ms); }
      fs.readSync(src, ref, 0, 4096, off); if (!buf.equals(ref)) bad++;
    }
    const p = (a, q) => { const s = [...a].sort((m, n) => m - n); return +s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)].toFixed(3); };
    res = { p50: p(lat, 0.5), p90: p(lat, 0.9), first50: p(first, 0.5), first90: p(first, 0.9), nFirst: first.length, bad };
  }
  const after = threads(d.pid);
  await stopPerf(perf);
  const cpu = {};
  for (const k of Object.keys(after)) cpu[k] = (after[k] - (before[k] ?? 0));
  await umount(d);
  console.log(JSON.stringify({ build: build.split('/').pop(), file, ...res, load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0], cpu }));
}
