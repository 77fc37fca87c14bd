/**
 * What `sefs mount` refuses, with a clear message and nothing mounted: a non-empty mount point (it would hide
 * files), a vault already mounted, and a sealed vault without its passphrase (even through the library).
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountVault } from '../../src/fs/mount.js';
import { CLI, TestMount, failure, fuseSuite, isMounted, requireFuse, run } from './helpers.js';

fuseSuite();

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

describe('a read-only mount', () => {
  it('changes nothing in the vault: no crash leftover removed, no unreferenced chunk swept, writes are EROFS', async () => {
    requireFuse();
    const dir = await mkdtemp(join(tmpdir(), 'sefs-ro-'));
    const vault = join(dir, 'vault');
    const mnt = join(dir, 'mnt');
    try {
      await run(process.execPath, [CLI, 'init', vault]);
      // What a crash leaves: a temp entry in tmp/ and a chunk no entry names (a normal mount removes both).
      const leftover = join(vault, 'tmp', 'meta-0123456789abcdef');
      await writeFile(leftover, 'half-written entry');
      const hex = 'ab'.repeat(32);
      await mkdir(join(vault, 'chunks', 'ab', 'ab'), { recursive: true });
      const orphan = join(vault, 'chunks', 'ab', 'ab', hex);
      await writeFile(orphan, 'an orphan chunk');
      await run(process.execPath, [CLI, 'mount', vault, mnt, '--read-only']);
      try {
        const write = await run('sh', ['-c', `(echo x > '${join(mnt, 'new')}') 2>&1 || true`]);
        expect(write.stdout).toMatch(/Read-only file system/);
        expect(await stat(leftover).then(() => true, () => false)).toBe(true);
        expect(await stat(orphan).then(() => true, () => false)).toBe(true);
      } finally {
        await run(process.execPath, [CLI, 'umount', mnt]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
