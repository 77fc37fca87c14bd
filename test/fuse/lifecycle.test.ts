/**
 * An unmount that ends although fusermount never returns (CI saw the daemon wait for it until killed).
 *
 * Where a mount may go: a mount point inside its own vault, the vault itself, or a vault inside the mount point
 * is refused at once with one line (issue 14 saw one hang for good), through symlinked paths too; and a mount reached
 * through a symlinked path works, stays mounted (it used to unmount itself 2 s later) and unmounts by either path.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountVault } from '../../src/fs/mount.js';
import { processAlive } from '../../src/vault/process-alive.js';
import { CLI, disposeEachTest, fuseSuite, isMounted, requireFuse, run, TestMount } from './helpers.js';

fuseSuite();
disposeEachTest();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
/** Daemons this file started (by the pid `sefs mount` printed), for the cleanup after a failure. */
const daemons = new Set<number>();

beforeAll(async () => {
  requireFuse();
  // Real, so that the paths the messages name are the ones built here.
  dir = await realpath(await mkdtemp(join(tmpdir(), 'sefs-lifecycle-')));
});

afterAll(async () => {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const mnt of mounts.filter((m) => m.startsWith(dir + '/'))) await run('fusermount', ['-uz', mnt]).catch(() => {});
  for (const pid of daemons) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  // A vault's pid file names a daemon a refused mount should never have started.
  for (const name of await readdir(dir)) {
    const pid = Number(await readFile(join(dir, name, 'sefs.pid'), 'utf8').catch(() => '0'));
    if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
});

/** `sefs mount` expected to be refused within 30 s: its stderr (one line), after checking the exit code. */
async function refusal(vault: string, mnt: string): Promise<string> {
  const outcome = await run(process.execPath, [CLI, 'mount', vault, mnt], { timeoutMs: 30_000 }).then(
    () => 'succeeded',
    (err: Error) => err.message,
  );
  expect(outcome).not.toBe('succeeded');
  // run() reports "failed (CODE)": exit code 1, not a timeout (null) or a signal.
  expect(outcome).toMatch(/failed \(1\):\nsefs: [^\n]+\n\n$/);
  return outcome;
}

async function initVault(name: string): Promise<string> {
  const vault = join(dir, name);
  await run(process.execPath, [CLI, 'init', vault]);
  return vault;
}

async function noMountUnder(path: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
  expect(mounts.filter((m) => m === path || m.startsWith(path + '/'))).toEqual([]);
}

describe('a mount nested in its vault is refused', () => {
  it('a mount point inside the vault (not created yet), or the vault itself', async () => {
    const vault = await initVault('v-inside');
    expect(await refusal(vault, join(vault, 'sub'))).toMatch(`mount point ${vault}/sub is inside the vault ${vault}`);
    expect(existsSync(join(vault, 'sub'))).toBe(false);
    expect(await refusal(vault, join(vault, 'meta'))).toMatch(/is inside the vault/);
    expect(await refusal(vault, vault)).toMatch(`mount point ${vault} is the vault itself`);
    expect(existsSync(join(vault, 'sefs.pid'))).toBe(false);
    await noMountUnder(vault);
  });

  it('the same through symlinks: a link to the vault as the mount point parent, a link as the vault', async () => {
    const vault = await initVault('v-links');
    await symlink(vault, join(dir, 'link-to-v'));
    expect(await refusal(vault, join(dir, 'link-to-v', 'm'))).toMatch(`mount point ${vault}/m is inside the vault ${vault}`);
    expect(await refusal(join(dir, 'link-to-v'), join(vault, 'm'))).toMatch(/is inside the vault/);
    expect(existsSync(join(vault, 'm'))).toBe(false);
    await noMountUnder(vault);
  });

  it('a vault inside the mount point, existing or not', async () => {
    const mnt = join(dir, 'outer');
    await mkdir(mnt);
    expect(await refusal(join(mnt, 'v'), mnt)).toMatch(`vault ${mnt}/v is inside the mount point ${mnt}`);
    expect(existsSync(join(mnt, 'v'))).toBe(false);
    await run(process.execPath, [CLI, 'init', join(mnt, 'v2')]);
    // Not "not empty": the nesting is what is wrong.
    expect(await refusal(join(mnt, 'v2'), mnt)).toMatch(/inside the mount point/);
    await noMountUnder(mnt);
  });

  it('the library refuses it too', async () => {
    const vault = await initVault('v-lib');
    await expect(mountVault(vault, join(vault, 'sub'))).rejects.toThrow(/inside the vault/);
    await noMountUnder(vault);
  });
});

describe('a mount point reached through a symlink', () => {
  it('stays mounted, serves files, and unmounts by the symlinked path and by the real path', async () => {
    const vault = await initVault('v-sym');
    const real = join(dir, 'real');
    await mkdir(real);
    await symlink(real, join(dir, 'link'));
    const viaLink = join(dir, 'link', 'm');
    const viaReal = join(real, 'm');

    const mount = async (): Promise<number> => {
      const { stdout } = await run(process.execPath, [CLI, 'mount', vault, viaLink], { timeoutMs: 60_000 });
      const pid = Number(/daemon pid (\d+)/.exec(stdout)?.[1]);
      daemons.add(pid);
      expect(stdout).toContain(`mounted at ${viaReal} `);
      return pid;
    };
    const unmountBy = async (path: string, pid: number): Promise<void> => {
      await run(process.execPath, [CLI, 'umount', path], { timeoutMs: 60_000 });
      for (let waited = 0; processAlive(pid) && waited < 10_000; waited += 100) await sleep(100);
      expect(processAlive(pid)).toBe(false);
      expect(await isMounted(viaReal)).toBe(false);
      expect(await isMounted(viaLink)).toBe(false);
    };

    let pid = await mount();
    // The daemon checks every 2 s that its mount is still there; a wrong path made it stop on the first check.
    await sleep(5_000);
    expect(processAlive(pid)).toBe(true);
    expect(await isMounted(viaReal)).toBe(true);
    expect(await isMounted(viaLink)).toBe(true);
    await writeFile(join(viaLink, 'through-link.txt'), 'written through the link\n');
    expect(await readFile(join(viaReal, 'through-link.txt'), 'utf8')).toBe('written through the link\n');
    await unmountBy(viaLink, pid);

    pid = await mount();
    expect(await readFile(join(viaLink, 'through-link.txt'), 'utf8')).toBe('written through the link\n');
    await unmountBy(viaReal, pid);
    // Nothing was written beside the mount: the file lives in the vault only.
    expect(await readdir(viaReal)).toEqual([]);
  });
});

describe('a fusermount that unmounts and never returns', () => {
  it('holds up the unmount a few seconds, not for good: the daemon names it in its log, ends, and the files are whole', async () => {
    // fuse-native unmounts with `fusermount -uz` and waits for it to exit and close its pipes. This one unmounts,
    // then sleeps with the pipes open: how a daemon in CI was seen waiting until it was killed.
    const bin = await mkdtemp(join(tmpdir(), 'sefs-fusermount-'));
    const sleeper = join(bin, 'sleeper.pid');
    const real = (await run('sh', ['-c', 'command -v fusermount'])).stdout.trim();
    await writeFile(join(bin, 'fusermount'), `#!/bin/sh\n${real} "$@" || exit $?\necho $$ > '${sleeper}'\nexec sleep 600\n`);
    await chmod(join(bin, 'fusermount'), 0o755);
    try {
      const m = await TestMount.create('hung-fusermount', { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
      await writeFile(m.at('kept.txt'), 'written before the unmount\n');
      const pid = m.pid;
      const started = Date.now();
      await m.unmount(); // fails unless the daemon ends and the mount is gone
      const seconds = (Date.now() - started) / 1000;
      expect(seconds).toBeLessThan(30);
      // The wrapper did run (so the daemon really waited on it), and is still running.
      const hung = Number(await readFile(sleeper, 'utf8'));
      expect(processAlive(hung)).toBe(true);
      const log = await m.log();
      expect(log).toMatch(/unmount: the mount is gone but fusermount has not returned after 5 s: going on \(children: \d+ S \S+ \/bin\/sh/);
      expect(processAlive(pid)).toBe(false);
      await m.mount();
      expect(await readFile(m.at('kept.txt'), 'utf8')).toBe('written before the unmount\n');
    } finally {
      const hung = Number(await readFile(sleeper, 'utf8').catch(() => '0'));
      if (hung > 0 && processAlive(hung)) process.kill(hung, 'SIGKILL');
      await rm(bin, { recursive: true, force: true });
    }
  });
});
