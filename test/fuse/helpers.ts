/**
 * Shared helpers of the FUSE suite: a real mount of a temp vault, driven by the built CLI
 * (`node dist/cli/main.js mount|umount`), and the tools the tests compare trees and files with.
 *
 * The suite needs FUSE: without /dev/fuse (or fusermount) it fails with a message saying what is missing,
 * it never skips. Every mount is remembered, so `disposeAll()` (and each TestMount's `dispose()`) unmounts
 * it even after a failure: `sefs umount` first, then kill -9 of the daemon by its PID and `fusermount -uz`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, afterEach, expect, vi } from 'vitest';
import { isMounted } from '../../src/fs/stale-mount.js';
import { CLI, ensureBuiltCli } from '../helpers/build.js';
import { alive, sleep, waitDead } from '../helpers/process.js';

export { alive, sleep } from '../helpers/process.js';

export { CLI } from '../helpers/build.js';
import { seededBytes } from '../helpers/inputs.js';

export { prng, seededBytes } from '../helpers/inputs.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;


// ---- preconditions ------------------------------------------------------------------------------

/**
 * Give this file's tests and hooks the time mounts need, whatever the command line says (`npm test` passes the
 * same values; a bare `npx vitest run test/fuse` would otherwise allow 5 s). Call at the top of each test file.
 */
export function fuseSuite(): void {
  vi.setConfig({ testTimeout: 300_000, hookTimeout: 180_000 });
}

/**
 * Fail loudly unless this machine can run the suite: /dev/fuse, fusermount, and a built CLI
 * (`npm test` builds first; a direct `vitest run` after a source change rebuilds here).
 */
let checked = false;
export function requireFuse(): void {
  if (checked) return;
  const problems: string[] = [];
  if (!existsSync('/dev/fuse') || !statSync('/dev/fuse').isCharacterDevice()) {
    problems.push('/dev/fuse does not exist: FUSE is unavailable (as root: modprobe fuse, or mknod -m 0666 /dev/fuse c 10 229; containers need --device /dev/fuse --cap-add SYS_ADMIN)');
  }
  if (spawnSync('sh', ['-c', 'command -v fusermount || command -v fusermount3']).status !== 0) {
    problems.push('fusermount is missing (Debian package fuse): run sudo bash scripts/setup.sh');
  }
  try {
    ensureBuiltCli();
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length) throw new Error(`The FUSE test suite cannot run on this machine:\n  - ${problems.join('\n  - ')}`);
  checked = true;
}

/** The programs a test needs; a missing one fails the test with the package to install. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) throw new Error(`missing programs: ${missing.join(', ')} (install them with sudo bash scripts/setup.sh)`);
}

// ---- processes -----------------------------------------------------------------------------------

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a bash script (with pipefail); reject with its output when it exits non-zero. */
export async function sh(script: string, options: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('bash', ['-c', `set -euo pipefail\n${script}`], options);
}

/** Run a program; reject with its output when it exits non-zero. */
export function run(
  file: string,
  args: string[],
  options: { cwd?: string; input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { cwd: options.cwd, maxBuffer: 256 * MiB, timeout: options.timeoutMs ?? 240_000, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', ...options.env } },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as Error & { code?: unknown };
          reject(new Error(`${file} ${args.join(' ')} failed (${String(e.code)}):\n${stderr}\n${stdout.slice(-4000)}`));
        } else resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

export { isMounted };

/** Run the CLI expecting failure; the message of the failure (it holds the exit code and stderr). */
export async function failure(args: string[], env?: Record<string, string>): Promise<string> {
  const outcome = await run(process.execPath, [CLI, ...args], { env }).then(
    () => 'succeeded',
    (err: Error) => err.message,
  );
  expect(outcome, `sefs ${args.join(' ')} should fail`).not.toBe('succeeded');
  return outcome;
}

// ---- a mounted vault -------------------------------------------------------------------------------

const live = new Set<TestMount>();
/** Mounts made since the last test ended (disposeEachTest). */
const made = new Set<TestMount>();

/** A temp vault and mount point under os.tmpdir(), mounted through the CLI as a daemon. */
export class TestMount {
  /** PID of the mount daemon while mounted. */
  pid = 0;

  private constructor(
    /** Temp directory holding vault/, mnt/ and work/ (sources and outputs outside the mount). */
    readonly dir: string,
  ) {}

  get vault(): string {
    return this.vaultAt ?? join(this.dir, 'vault');
  }
  get mnt(): string {
    return join(this.dir, 'mnt');
  }
  get work(): string {
    return join(this.dir, 'work');
  }
  /** A path inside the mount. */
  at(...parts: string[]): string {
    return join(this.mnt, ...parts);
  }
  /** A path outside the mount (on the host filesystem). */
  host(...parts: string[]): string {
    return join(this.work, ...parts);
  }

  /**
   * `vaultMb`: the vault lives on a tmpfs of that size (a real full disk for the tests that need one);
   * `env`: the daemon's extra environment (SEFS_FAULT_PLAN...); `mountArgs`: more arguments of every `sefs mount`
   * (--allow-other, --disk-cache-mb); `initArgs`: more arguments of its `sefs init` (--chunks s3://...); `sealed`:
   * a sealed vault; `vault`: where the vault is made instead of in the temp directory (the caller removes it).
   */
  static async create(name: string, options: { vaultMb?: number; env?: Record<string, string>; initArgs?: string[]; mountArgs?: string[]; sealed?: boolean; vault?: string } = {}): Promise<TestMount> {
    requireFuse();
    const dir = await mkdtemp(join(tmpdir(), `sefs-fuse-${name}-`));
    const m = new TestMount(dir);
    made.add(m);
    m.vaultAt = options.vault;
    m.env = options.env ?? {};
    m.mountArgs = options.mountArgs ?? [];
    await mkdir(m.work);
    if (options.vaultMb) {
      await mkdir(m.vault);
      await run('mount', ['-t', 'tmpfs', '-o', `size=${options.vaultMb}m`, 'tmpfs', m.vault]);
      m.vaultFs = true;
    }
    if (options.sealed) {
      // A sealed vault, with a cheap KDF: the passphrase file is in the temp directory, beside the vault.
      await writeFile(join(dir, 'pass'), 'correct horse battery staple');
      m.unlock = ['--passphrase-file', join(dir, 'pass')];
    }
    await run(process.execPath, [CLI, 'init', m.vault, ...m.unlock, ...(options.sealed ? ['--scrypt-log-n', '10'] : []), ...(options.initArgs ?? [])]);
    await m.mount();
    return m;
  }

  private env: Record<string, string> = {};
  private mountArgs: string[] = [];
  /** What `sefs mount` (and fsck) of a sealed vault need. */
  unlock: string[] = [];
  private vaultFs = false;
  private vaultAt: string | undefined;

  /** Mount with `sefs mount` (daemon mode); it returns once the mount is live. */
  async mount(): Promise<void> {
    live.add(this);
    const { stdout } = await run(process.execPath, [CLI, 'mount', this.vault, this.mnt, ...this.unlock, ...this.mountArgs], { timeoutMs: 60_000, env: this.env });
    const pid = /daemon pid (\d+)/.exec(stdout);
    if (!pid) throw new Error(`sefs mount printed no daemon pid: ${stdout}`);
    this.pid = Number(pid[1]);
    if (!(await isMounted(this.mnt))) throw new Error(`sefs mount returned but ${this.mnt} is not in /proc/mounts`);
  }

  /** Unmount with `sefs umount` (the daemon commits and exits); fail if it does not. */
  async unmount(): Promise<void> {
    const pid = this.pid;
    try {
      await run(process.execPath, [CLI, 'umount', this.mnt], { timeoutMs: 120_000 });
      if (pid && !(await waitDead(pid, 10_000))) throw new Error(`daemon ${pid} still running after sefs umount`);
      if (await isMounted(this.mnt)) throw new Error(`${this.mnt} still mounted after sefs umount`);
    } catch (err) {
      // The daemon's own account of its unmount (which step it is stuck in) says more than the timeout.
      (err as Error).message += `\nthe daemon's log ends:\n${await this.logTail()}`;
      // Still alive: its threads' states say whether it spins (R) or waits, and on what (wchan).
      if (pid && alive(pid)) (err as Error).message += `\nits threads:\n${(await run('ps', ['-L', '-o', 'tid,stat,pcpu,wchan:32,comm', '-p', String(pid)]).catch((e: Error) => ({ stdout: e.message }))).stdout}`;
      throw err;
    }
    this.pid = 0;
  }

  /** The last lines of the daemon's log (for a failure's message). */
  async logTail(lines = 40): Promise<string> {
    const text = await this.log().catch((err: Error) => `(no log: ${err.message})`);
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /**
   * Before each test: if an earlier failure left the vault unmounted (or its daemon dead), mount it again, so
   * that a test never runs against the bare mount point directory. (statfs always reaches the daemon; a stat of
   * the root may be answered from the kernel's attribute cache.)
   */
  async ensureMounted(): Promise<void> {
    if (this.pid && alive(this.pid) && (await isMounted(this.mnt)) && (await codeOf(statfs(this.mnt))) === 'OK') return;
    await this.forceUnmount();
    await this.mount();
  }

  async remount(): Promise<void> {
    await this.unmount();
    await this.mount();
  }

  /** kill -9 the daemon: the mount stays behind, stale (ENOTCONN). */
  async kill9(): Promise<void> {
    const pid = this.pid;
    process.kill(pid, 'SIGKILL');
    if (!(await waitDead(pid, 10_000))) throw new Error(`daemon ${pid} survived SIGKILL`);
    this.pid = 0;
  }

  /** Unmount whatever the state (after a failure too); never throws. */
  async forceUnmount(): Promise<void> {
    if (this.pid && alive(this.pid)) {
      try {
        await run(process.execPath, [CLI, 'umount', this.mnt], { timeoutMs: 30_000 });
        await waitDead(this.pid, 5_000);
      } catch (err) {
        process.stderr.write(`[fuse helpers] sefs umount ${this.mnt} failed: ${(err as Error).message}\n`);
      }
      if (alive(this.pid)) {
        process.kill(this.pid, 'SIGKILL');
        await waitDead(this.pid, 5_000);
      }
    }
    if (await isMounted(this.mnt)) await run('fusermount', ['-uz', this.mnt]).catch(() => run('umount', ['-l', this.mnt]).catch(() => {}));
    this.pid = 0;
    live.delete(this);
  }

  /** Unmount and remove the temp directory (kept with SEFS_KEEP_TEST_DIRS=1, or when the mount will not go). */
  async dispose(): Promise<void> {
    await this.forceUnmount();
    // A daemon that hit an unhandled rejection logged it and lived on: that is still a bug, and fails the suite.
    const bugs = (await this.log().catch(() => '')).split('\n').filter((line) => line.includes('BUG:'));
    if (process.env.SEFS_KEEP_TEST_DIRS || (await isMounted(this.mnt))) {
      process.stderr.write(`[fuse helpers] kept ${this.dir}\n`);
    } else {
      if (this.vaultFs) await run('umount', [this.vault]).catch(() => run('umount', ['-l', this.vault]));
      await rm(this.dir, { recursive: true, force: true });
    }
    if (bugs.length > 0) throw new Error(`the mount daemon logged bugs:\n${bugs.join('\n')}`);
  }

  /** The daemon's peak resident memory so far (MiB): VmHWM of /proc/PID/status. */
  /** Start the daemon's peak RSS (VmHWM) afresh, so a test measures its own peak, not an earlier test's. */
  async resetPeakRss(): Promise<void> {
    await writeFile(`/proc/${this.pid}/clear_refs`, '5');
  }

  async peakRssMb(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
  }

  /** Bytes of the chunk files under VAULT/chunks (complete chunks only). */
  async chunkBytes(): Promise<number> {
    let total = 0;
    for (const hex of await this.chunkNames()) total += (await lstat(this.chunkPath(hex)).catch(() => ({ size: 0 }))).size;
    return total;
  }

  /** The daemon's log. */
  log(): Promise<string> {
    return readFile(join(this.vault, 'sefs.log'), 'utf8');
  }

  /** Hex names of the chunk files under VAULT/chunks (complete chunks only, not temp files). */
  async chunkNames(): Promise<string[]> {
    const names: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(dir, e.name));
        else if (/^[0-9a-f]{64}$/.test(e.name)) names.push(e.name);
      }
    };
    await walk(join(this.vault, 'chunks'));
    return names.sort();
  }

  chunkPath(hex: string): string {
    return join(this.vault, 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
  }
}

/** Unmount every mount the helpers made in this process (for afterAll). */
export async function disposeAll(): Promise<void> {
  for (const m of [...live]) await m.dispose();
}

/**
 * For a file whose tests each make their own mounts: after each test, dispose of every mount it made (mounted
 * or not: its temp directory goes too), and after the file, of any still live.
 */
export function disposeEachTest(): void {
  afterEach(async () => {
    for (const m of [...made]) {
      made.delete(m);
      await m.dispose();
    }
  });
  afterAll(disposeAll);
}

// ---- content -------------------------------------------------------------------------------------

/** sha256 of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: MiB })
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/**
 * Write a whole file and fsync it: its commit is in the vault when this returns. A close alone is written
 * back a moment later (src/fs/writeback.ts), so tests that look into the vault or kill the daemon fsync.
 */
export async function writeFileSynced(path: string, data: Buffer | string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync an existing file (its pending write-back commit is made now, durably). */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** One entry of a tree as the tests compare it. */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size?: number;
  sha256?: string;
  target?: string;
  /** mtime in whole ms (files and symlinks only: directory times change as their entries do). */
  mtimeMs?: number;
}

/** Every entry below `root` by relative path: type, permission bits, size and sha256, link target, mtime (to the ms or the s). */
export async function treeDigest(root: string, options: { mtimes?: 'ms' | 's' } = {}): Promise<Record<string, TreeEntry>> {
  const unit = options.mtimes === 's' ? 1000 : 1;
  const out: Record<string, TreeEntry> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const st = await lstat(path);
      const mode = st.mode & 0o7777;
      const mtimeMs = options.mtimes ? Math.floor(st.mtimeMs / unit) * unit : undefined;
      if (st.isDirectory()) {
        out[rel] = { type: 'dir', mode };
        await walk(path);
      } else if (st.isSymbolicLink()) {
        out[rel] = { type: 'symlink', mode: 0, target: await readlink(path) };
      } else {
        out[rel] = { type: 'file', mode, size: st.size, sha256: await sha256File(path), ...(mtimeMs !== undefined ? { mtimeMs } : {}) };
      }
    }
  };
  await walk(root);
  return out;
}

/** The sizes the issue names: 0, 1, 2, 3 bytes, 4 KiB, 3 MiB - 1, 3 MiB, 3 MiB + 1, 20 MiB. */
export const EDGE_SIZES = [0, 1, 2, 3, 4 * KiB, 3 * MiB - 1, 3 * MiB, 3 * MiB + 1, 20 * MiB];

/**
 * A tree of seeded random files of the edge sizes (and a few in between), nested directories, an empty
 * directory, symlinks and a few modes. Returns its root.
 */
export async function makeTree(root: string, seed: number, sizes: number[] = EDGE_SIZES): Promise<string> {
  await mkdir(join(root, 'sub', 'deeper'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  for (const [i, size] of sizes.entries()) {
    const dir = i % 3 === 0 ? root : i % 3 === 1 ? join(root, 'sub') : join(root, 'sub', 'deeper');
    await writeFile(join(dir, `f-${size}.bin`), seededBytes(size, seed * 1000 + i), { mode: i % 2 ? 0o600 : 0o644 });
  }
  await writeFile(join(root, 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await writeFile(join(root, 'sub', 'a name with spaces, ünïcödé & symbols #1.txt'), 'named\n');
  await chmod(join(root, 'sub', 'deeper'), 0o750);
  await run('ln', ['-s', 'sub/deeper', join(root, 'link-to-dir')]);
  await run('ln', ['-s', 'f-1.bin', join(root, 'sub', 'link-to-file')]);
  await run('ln', ['-s', '/nonexistent/target', join(root, 'dangling')]);
  return root;
}

/** The errno code a promise rejects with ('OK' when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
