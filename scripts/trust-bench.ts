/**
 * fsck / gc / stats timings on a vault of many small files, through the built CLI as a user runs it.
 *   npx tsx scripts/trust-bench.ts [--files N] [--sealed] [--keep]
 * Builds the vault without a mount (test/helpers/vault.ts): N files of 1-16 KiB in directories of 100,
 * one in ten a copy of another (dedup), and 5% of them removed again with their chunks backdated past
 * gc's grace period, so gc has work. Then times `sefs fsck`, `fsck --deep`, `stats`, `gc --dry-run` (twice
 * each), `gc` (once with work, once without) and `fsck` again, and writes the figures to
 * bench-results/trust-bench-<time>.json. Needs `npm run build` first.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { plainCodec } from '../src/vault/meta-codec.js';
import { createSeal } from '../src/vault/seal.js';
import { initVault } from '../src/vault/config.js';
import { CLI, ROOT, ensureBuiltCli } from '../test/helpers/build.js';
import { prng, seededBytes } from '../test/helpers/inputs.js';
import { VaultBuilder } from '../test/helpers/vault.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, sealed: { type: 'boolean' }, keep: { type: 'boolean' } } });
const count = Number(values.files);
ensureBuiltCli();

const dir = await mkdtemp(join(tmpdir(), 'sefs-trust-bench-'));
const vault = join(dir, 'vault');
const pwFile = join(dir, 'pw');
const pass = Buffer.from('trust bench passphrase');
const seal = values.sealed ? await createSeal(pass) : undefined;
await initVault(vault, { seal });
await writeFile(pwFile, pass);
const passArgs = values.sealed ? ['--passphrase-file', pwFile] : [];

// ---- build ----
let t = performance.now();
const builder = new VaultBuilder(vault, seal?.codec ?? plainCodec);
const rand = prng(11);
const contents: Buffer[] = [];
const removed: string[] = [];
let logical = 0;
for (let i = 0; i < count; i++) {
  const data = i % 10 === 9 ? contents[Math.floor(rand() * contents.length)]! : seededBytes(1024 + Math.floor(rand() * 15 * 1024), i);
  contents.push(data);
  const path = `/d${String(Math.floor(i / 100)).padStart(3, '0')}/f${i}.bin`;
  await builder.add(path, data);
  if (i % 20 === 18) removed.push(path);
  else logical += data.length;
}
for (const path of removed) await unlink(builder.meta.diskPath(path));
const past = (Date.now() - 2 * 3600_000) / 1000;
const chunksDir = join(vault, 'chunks');
for (const a of await readdir(chunksDir)) {
  for (const b of await readdir(join(chunksDir, a))) {
    for (const f of await readdir(join(chunksDir, a, b))) await utimes(join(chunksDir, a, b, f), past, past);
  }
}
const buildSeconds = (performance.now() - t) / 1000;
execFileSync('sync');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const loadStart = load();
console.log(`load average ${loadStart} (other load moves every figure)`);
console.log(`built ${count - removed.length} files (${(logical / 1e6).toFixed(1)} MB) in ${buildSeconds.toFixed(1)} s${values.sealed ? ', sealed' : ''}: ${vault}`);

// ---- time the commands (each twice: the first run after the build may still wait on writeback) ----
function once(args: string[]): { seconds: number; exit: number; output: Record<string, unknown> } {
  const start = performance.now();
  let stdout = '';
  let exit = 0;
  try {
    stdout = execFileSync(process.execPath, [CLI, ...args, ...passArgs, '--json'], { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
  } catch (err) {
    const e = err as { status: number; stdout: string };
    exit = e.status;
    stdout = e.stdout;
  }
  return { seconds: (performance.now() - start) / 1000, exit, output: JSON.parse(stdout) as Record<string, unknown> };
}

function time(label: string, args: string[], runs = 2) {
  const results = Array.from({ length: runs }, () => once(args));
  const seconds = results.map((r) => Number(r.seconds.toFixed(2)));
  const last = results.at(-1)!;
  const brief = Object.fromEntries(Object.entries(last.output).filter(([k, v]) => typeof v !== 'object' && k !== 'vault'));
  console.log(`${label.padEnd(16)} ${seconds.map((s) => s.toFixed(2).padStart(6)).join(' ')} s  exit ${last.exit}  ${JSON.stringify(brief)}`);
  return { label, seconds, exit: last.exit, output: brief };
}

const rows = [
  time('fsck', ['fsck', vault]),
  time('fsck --deep', ['fsck', vault, '--deep']),
  time('stats', ['stats', vault]),
  time('gc --dry-run', ['gc', vault, '--dry-run']),
  time('gc', ['gc', vault], 1),
  time('gc (nothing)', ['gc', vault], 1),
  time('fsck (after gc)', ['fsck', vault], 1),
];

const out = join(ROOT, 'bench-results', `trust-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await mkdir(join(ROOT, 'bench-results'), { recursive: true });
const loadEnd = load();
console.log(`load average ${loadEnd}`);
await writeFile(out, JSON.stringify({ files: count - removed.length, sealed: !!values.sealed, logicalBytes: logical, buildSeconds, loadStart, loadEnd, rows }, null, 2) + '\n');
console.log(`figures in ${out}`);
if (values.keep) console.log(`vault kept: ${vault}`);
else await rm(dir, { recursive: true, force: true });
