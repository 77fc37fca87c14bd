/**
 * What the built `sefs` prints for bad input, exactly: the first (and only) line on stderr and the exit code
 * (2 for bad usage, 1 for everything else); a reader that closes the pipe early ends it quietly with 0;
 * --version names the formats and the native parts; --debug adds the stack, and only then.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuiltCli } from './helpers/build.js';
import { FUSE_PATCH_LEVEL } from '../src/fs/fuse-binding.js';
import { seededBytes } from './helpers/inputs.js';

let dir: string;

function sefs(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  ensureBuiltCli();
  dir = await mkdtemp(join(tmpdir(), 'sefs-messages-'));
  await writeFile(join(dir, 'regular'), 'not a vault\n');
  await writeFile(join(dir, 'pass'), 'secret\n');
  await writeFile(join(dir, 'small.txt'), 'hello, world\n');
  expect(sefs('init', 'fastvault', '--profile', 'fast').code).toBe(0);
  expect(sefs('init', 'sealed', '--passphrase-file', 'pass', '--scrypt-log-n', '10').code).toBe(0);
  expect(sefs('encrypt', 'small.txt', '--store', 'store').code).toBe(0);
  await mkdir(join(dir, 'adir'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every bad input, its exact one-line message and its exit code. */
const CASES: [args: string[], line: string, code: number][] = [
  [['init', 'regular'], 'sefs: regular is a regular file, not a vault directory', 1],
  [['mount', 'regular', 'mnt'], 'sefs: regular is a regular file, not a vault directory', 1],
  [['mount', 'fastvault', 'regular'], 'sefs: regular is a regular file, not a directory', 1],
  [['fsck', 'regular'], 'sefs: regular is a regular file, not a vault directory', 1],
  [['gc', 'regular'], 'sefs: regular is a regular file, not a vault directory', 1],
  [['stats', 'regular'], 'sefs: regular is a regular file, not a vault directory', 1],
  [['fsck', 'nowhere'], 'sefs: nowhere does not exist', 1],
  [['stats', 'adir'], 'sefs: adir is not a sefs vault (no sefs.json; run sefs init)', 1],
  [['init', 'fastvault', '--profile', 'compat'], "sefs: fastvault is already a vault of profile fast: --profile compat cannot apply (the profile is chosen when a vault is created)", 1],
  [['init', 'fastvault', '--cache-mb', '64'], 'sefs: fastvault is already a vault with --cache-mb 128: --cache-mb 64 cannot apply (give it to sefs mount instead)', 1],
  [['init', 'fastvault', '--passphrase-file', 'pass'], 'sefs: fastvault is already an unsealed vault: a vault is sealed when it is created', 1],
  [['init', 'v', '--profile', 'turbo'], "sefs: --profile must be one of compat, fast, selective, got 'turbo'", 2],
  [['init', 'v', '--scrypt-log-n', '12'], 'sefs: --scrypt-log-n goes with --seal, --passphrase-file or --passphrase-fd', 2],
  [['init', 'v', '--seal', '--scrypt-log-n', '40'], "sefs: --scrypt-log-n must be an integer from 10 to 18, got '40'", 2],
  [['init', 'v', '--seal'], 'sefs: v is to be sealed: give its passphrase with --passphrase-file F or --passphrase-fd N (or run on a terminal to be asked)', 1],
  [['fsck', 'fastvault', '--threads', '-3'], "sefs: --threads must be an integer from 1 to 256, got '-3'", 2],
  [['fsck', 'fastvault', '--threads', 'many'], "sefs: --threads must be an integer from 1 to 256, got 'many'", 2],
  [['mount', 'fastvault', 'mnt', '--cache-mb', '0'], "sefs: --cache-mb must be an integer from 1 to 1048576, got '0'", 2],
  [['mount', 'fastvault', 'mnt', '-o', 'cache_mb=-1'], "sefs: -o cache_mb must be an integer from 1 to 1048576, got '-1'", 2],
  [['mount', 'fastvault', 'mnt', '-o', 'rw,bogus'], "sefs: unknown mount option 'bogus' (sefs takes allow_other, ro, rw, passphrase_file=F, cache_mb=N, disk_cache_mb=N, threads=N and the generic options of mount(8))", 2],
  [['mount', 'fastvault', 'mnt', '--disk-cache-mb', '0'], "sefs: --disk-cache-mb must be an integer from 1 to 1048576, got '0'", 2],
  [['init', 'v', '--chunks', '/some/dir'], "sefs: --chunks takes s3://BUCKET[/PREFIX], got '/some/dir'", 2],
  [['init', 'v', '--chunks', 's3://B'], 'sefs: s3://B: not a valid bucket name (3-63 of a-z 0-9 . -)', 1],
  [['init', 'fastvault', '--chunks', 's3://bucket-x'], 'sefs: fastvault is already a vault with its chunks in chunks/: --chunks s3://bucket-x cannot apply', 1],
  [['mount', 'nothing-here', 'mnt', '--read-only'], 'sefs: nothing-here is not a vault yet: a read-only mount cannot create one (run sefs init nothing-here)', 1],
  [['gc', 'fastvault', '--grace-minutes', '-1'], "sefs: --grace-minutes must be a number from 0 to 10080, got '-1'", 2],
  [['cat', 'small.txt.datamap', '--store', 'store', '--offset', '-1'], "sefs: --offset must be an integer from 0 to 9007199254740991, got '-1'", 2],
  [['fsck', 'fastvault', '--bogus'], "sefs: unknown option '--bogus' for sefs fsck (see 'sefs fsck --help')", 2],
  [['init', 'v', '-x'], "sefs: unknown option '-x' for sefs init (see 'sefs init --help')", 2],
  [['encrypt', 'small.txt', '--store'], 'sefs: --store needs a value', 2],
  [['fsck', 'fastvault', '--deep=yes'], 'sefs: --deep takes no value', 2],
  [['encrypt', 'small.txt'], 'sefs: --store is required', 2],
  [['encrypt'], 'sefs: missing FILE', 2],
  [['umount'], 'sefs: missing MOUNTPOINT', 2],
  [['fsck', 'a', 'b'], "sefs: unexpected argument 'b'", 2],
  [['frobnicate'], "sefs: unknown command 'frobnicate' (see 'sefs --help')", 2],
  [['completion', 'fish'], "sefs: no completion for shell 'fish': bash or zsh", 2],
  [['decrypt', 'small.txt.datamap', '--store', 'store', '--out', '/missing/x'], 'sefs: /missing/x: no such file or directory', 1],
  [['decrypt', 'small.txt.datamap', '--store', 'store', '--out', 'adir'], 'sefs: adir: is a directory', 1],
  [['stats', 'sealed'], 'sefs: sealed is sealed: give its passphrase with --passphrase-file F or --passphrase-fd N (or run on a terminal to be asked)', 1],
  [['stats', 'sealed', '--passphrase-fd', '250'], 'sefs: cannot read --passphrase-fd 250: the descriptor is not open', 1],
  [['stats', 'sealed', '--passphrase-file', 'nope'], 'sefs: cannot read passphrase file nope: ENOENT', 1],
  [['stats', 'sealed', '--passphrase-file', 'pass', '--passphrase-fd', '0'], 'sefs: give the passphrase once: --passphrase-file or --passphrase-fd, not both', 2],
  [['stats', 'fastvault', '--passphrase-file', 'pass'], `sefs: vault ${'<dir>'}/fastvault is not sealed: drop --passphrase-file`, 1],
];

describe('bad input: one exact line on stderr, nothing on stdout, and the exit code', () => {
  it.each(CASES)('sefs %j', (args, line, code) => {
    const r = sefs(...args);
    expect(r.stderr).toBe(`${line.replace('<dir>', dir)}\n`);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
  });

  it('no message names an internal temp file', () => {
    const r = sefs('decrypt', 'small.txt.datamap', '--store', 'store', '--out', '/missing/x');
    expect(r.stderr).not.toMatch(/tmp-/);
  });

  it('--debug (anywhere on the line) adds the stack trace; without it there is none', () => {
    const plain = sefs('fsck', 'regular');
    expect(plain.stderr.split('\n')).toHaveLength(2);
    const debug = sefs('fsck', '--debug', 'regular');
    expect(debug.code).toBe(1);
    const lines = debug.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('sefs: regular is a regular file, not a vault directory');
    expect(lines[1]).toMatch(/^VaultError: /);
    expect(lines.slice(2).every((l) => /^\s+at /.test(l))).toBe(true);
  });
});

describe('a reader that goes away', () => {
  /** Run sefs with stdout a pipe the reader closes after `keep` bytes; resolves to its exit code and stderr. */
  function closedEarly(args: string[], keep: number): Promise<{ code: number | null; stderr: string; got: number }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let got = 0;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= keep) child.stdout.destroy();
      });
      if (keep === 0) child.stdout.destroy();
      child.on('close', (code) => resolve({ code, stderr, got }));
    });
  }

  it('cat of a large file into a pipe closed after the first bytes: status 0, nothing on stderr', async () => {
    await writeFile(join(dir, 'big.bin'), seededBytes(8 * 1024 * 1024, 7));
    expect(sefs('encrypt', 'big.bin', '--store', 'store').code).toBe(0);
    const r = await closedEarly(['cat', 'big.bin.datamap', '--store', 'store'], 1);
    expect(r.got).toBeGreaterThan(0);
    expect(r.got).toBeLessThan(8 * 1024 * 1024);
    expect(r).toMatchObject({ code: 0, stderr: '' });
  });

  it.each([['fsck'], ['gc'], ['stats']])('%s into a pipe closed before it writes: status 0, nothing on stderr', async (command) => {
    const r = await closedEarly([command!, 'fastvault'], 0);
    expect(r).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('a passphrase asked for on a terminal', () => {
  /**
   * Run sefs on a pseudo-terminal (script(1)), answering each prompt once it is shown (typed earlier, the
   * terminal would still echo it); resolves to everything the terminal showed.
   */
  function onTerminal(args: string[], answers: string[]): Promise<{ code: number | null; shown: string }> {
    return new Promise((resolve) => {
      const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
      let shown = '';
      let asked = 0;
      child.stdout.on('data', (d: Buffer) => {
        shown += d.toString();
        const prompts = shown.match(/Passphrase for [^:]+: |Again, to confirm: /g)?.length ?? 0;
        while (asked < prompts && asked < answers.length) child.stdin.write(`${answers[asked++]}\r`);
      });
      child.on('close', (code) => resolve({ code, shown: shown.replace(/\r/g, '') }));
    });
  }

  it('init --seal asks twice without echo; the vault then opens with that passphrase and refuses another', async () => {
    const init = await onTerminal(['init', 'asked', '--seal', '--scrypt-log-n', '10'], ['typed secret', 'typed secret']);
    expect(init.shown).toBe('Passphrase for asked: \nAgain, to confirm: \nsefs: vault asked ready (profile selective, metadata sealed)\n');
    expect(init.code).toBe(0);
    const good = await onTerminal(['stats', 'asked', '--json'], ['typed secret']);
    expect(good.code).toBe(0);
    expect(good.shown).toMatch(/^Passphrase for asked: \n\{\n {2}"vault": /);
    expect(good.shown).not.toContain('typed secret');
    const bad = await onTerminal(['stats', 'asked'], ['typed secreT']);
    expect(bad).toEqual({ code: 1, shown: 'Passphrase for asked: \nsefs: wrong passphrase for this vault, or its sefs.json seal was altered (nothing was read or written)\n' });
    const differ = await onTerminal(['init', 'asked2', '--seal'], ['one', 'two']);
    expect(differ).toEqual({ code: 2, shown: 'Passphrase for asked2: \nAgain, to confirm: \nsefs: the two passphrases differ\n' });
  });
});

describe('sefs --version', () => {
  it('prints the package and format versions and whether the native addon is in use', () => {
    const r = sefs('--version');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^sefs \d+\.\d+\.\d+$/);
    expect(lines[1]).toBe('formats: vault 2, metadata entry 2, DataMap 1 (self_encryption 0.30-0.34, SHA3-256)');
    expect(lines[2]).toMatch(/^native addon: in use \(kernel (generic|avx2|avx512vl)(, AES-NI)?\)$/);
    expect(lines[3]).toBe(`FUSE binding: fuse-native, sefs patch level ${FUSE_PATCH_LEVEL}`);
    const off = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8', env: { ...process.env, SEFS_NATIVE: '0' } });
    expect(off.stdout.split('\n')[2]).toBe('native addon: off (SEFS_NATIVE=0)');
  });
});
