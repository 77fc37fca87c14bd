/**
 * What `sefs mount` refuses, with a clear message and nothing mounted: a non-empty mount point (it would hide
 * files), a vault already mounted, and a sealed vault without its passphrase (even through the library).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountVault } from '../../src/fs/mount.js';
import { CLI, TestMount, fuseSuite, isMounted, requireFuse, run } from './helpers.js';

fuseSuite();

/** Run the CLI expecting failure; the message of the failure (it holds the exit code and stderr). */
async function failure(args: string[]): Promise<string> {
  const outcome = await run(process.execPath, [CLI, ...args]).then(
    () => 'succeeded',
    (err: Error) => err.message,
  );
  expect(outcome, `sefs ${args.join(' ')} should fail`).not.toBe('succeeded');
  return outcome;
}

describe('mount refusals', () => {
  let dir: string;
  beforeAll(async () => {
    requireFuse();
    dir = await mkdtemp(join(tmpdir(), 'sefs-guards-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a non-empty mount point', async () => {
    const mnt = join(dir, 'busy');
    await mkdir(mnt);
    await writeFile(join(mnt, 'precious'), 'keep me visible');
    expect(await failure(['mount', join(dir, 'v1'), mnt])).toMatch(/not empty/);
    expect(await isMounted(mnt)).toBe(false);
  });

  it('refuses a vault that is already mounted', async () => {
    const m = await TestMount.create('guards');
    try {
      const other = join(dir, 'other');
      expect(await failure(['mount', m.vault, other])).toMatch(/already mounted/);
      expect(await isMounted(other)).toBe(false);
    } finally {
      await m.dispose();
    }
  });

  it('refuses a sealed vault without its passphrase, through the CLI and the library', async () => {
    const vault = join(dir, 'sealed');
    const pass = join(dir, 'pass');
    await writeFile(pass, 'correct horse battery staple');
    await run(process.execPath, [CLI, 'init', vault, '--passphrase-file', pass, '--scrypt-log-n', '10']);
    const mnt = join(dir, 'sealed-mnt');
    expect(await failure(['mount', vault, mnt])).toMatch(/passphrase/);
    expect(await isMounted(mnt)).toBe(false);
    await expect(mountVault(vault, mnt)).rejects.toThrow(/sealed/);
    expect(await isMounted(mnt)).toBe(false);
  });
});
