/**
 * Installing like a user: `npm pack`, then `npm install -g` of the tarball into a temporary prefix, and the
 * installed `sefs` (not this checkout) runs --version, init, a mount, a file written and read back, and an unmount.
 * The install takes its dependencies from npm's cache when it has them (--prefer-offline: a CI machine that has
 * just run `npm ci` has them all), so it needs no network there; its postinstall patches and builds fuse-native
 * and builds the native addon from the sources in the tarball.
 */
import { existsSync, realpathSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/build.js';
import { FUSE_PATCH_LEVEL } from '../../src/fs/fuse-binding.js';
import { fuseSuite, isMounted, requireFuse, run } from './helpers.js';

fuseSuite();

let dir: string;
let sefs: string;

beforeAll(async () => {
  requireFuse();
  dir = await mkdtemp(join(tmpdir(), 'sefs-install-'));
});
afterAll(async () => {
  if (!dir) return;
  const mnt = join(dir, 'mnt');
  if (await isMounted(mnt)) await run(sefs, ['umount', mnt]).catch(() => run('fusermount', ['-uz', mnt]));
  await rm(dir, { recursive: true, force: true });
});

describe('npm pack, npm install -g of the tarball, and the installed sefs', () => {
  it('packs a tarball holding what its postinstall runs, and no build output of this machine', async () => {
    await run('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, timeoutMs: 120_000 });
    const tgz = (await readdir(dir)).filter((f) => /^sefs-.*\.tgz$/.test(f));
    expect(tgz).toHaveLength(1);
    const files = (await run('tar', ['tzf', join(dir, tgz[0]!)])).stdout.split('\n');
    for (const f of ['scripts/patch-fuse-native.mjs', 'scripts/fuse-native.patch', 'scripts/build-native.mjs', 'src/core/native/sha3x4-addon.c', 'src/core/native/file-times.c', 'src/core/native/file-times.h', 'dist/cli/main.js']) {
      expect(files).toContain(`package/${f}`);
    }
    expect(files.filter((f) => /\.node$|\.map$/.test(f))).toEqual([]);
  });

  it('installs globally into a temporary prefix; the postinstall patches fuse-native and builds the addon', async () => {
    const tgz = (await readdir(dir)).find((f) => f.endsWith('.tgz'))!;
    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '-g', '--prefix', prefix, join(dir, tgz), '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], {
      cwd: dir,
      timeoutMs: 600_000,
    });
    sefs = join(prefix, 'bin', 'sefs');
    expect(existsSync(sefs)).toBe(true);
    // The installed copy, not this checkout.
    expect(realpathSync(sefs)).toBe(join(prefix, 'lib', 'node_modules', 'sefs', 'dist', 'cli', 'main.js'));
    const v = (await run(sefs, ['--version'], { cwd: dir })).stdout.split('\n');
    expect(v[0]).toMatch(/^sefs \d+\.\d+\.\d+$/);
    expect(v[1]).toMatch(/^formats: vault 2, /);
    // This machine has a C compiler (setup.sh installs one): the addon is built and in use.
    expect(v[2]).toMatch(/^native addon: in use \(kernel /);
    expect(v[3]).toBe(`FUSE binding: fuse-native, sefs patch level ${FUSE_PATCH_LEVEL}`);
  });

  it('the installed sefs inits a vault, mounts it, writes and reads a file, and unmounts', async () => {
    const vault = join(dir, 'vault');
    const mnt = join(dir, 'mnt');
    expect((await run(sefs, ['init', vault], { cwd: dir })).stdout).toBe(`sefs: vault ${vault} ready (profile selective)\n`);
    await run(sefs, ['mount', vault, mnt], { cwd: dir });
    expect(await isMounted(mnt)).toBe(true);
    await run('sh', ['-c', `printf 'installed and mounted\\n' > ${mnt}/hello && sync`]);
    expect((await run('cat', [join(mnt, 'hello')])).stdout).toBe('installed and mounted\n');
    await run(sefs, ['umount', mnt], { cwd: dir });
    expect(await isMounted(mnt)).toBe(false);
    // Its content is in the vault: a second mount reads it back.
    await run(sefs, ['mount', vault, mnt, '--read-only'], { cwd: dir });
    expect((await run('cat', [join(mnt, 'hello')])).stdout).toBe('installed and mounted\n');
    await run(sefs, ['umount', mnt], { cwd: dir });
    expect(await isMounted(mnt)).toBe(false);
  });
});
