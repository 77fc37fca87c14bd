/**
 * The mount refuses an unpatched fuse-native. The upstream index.js is rebuilt from the installed one by reversing
 * scripts/fuse-native.patch and loaded from a package directory of its own (beside the real addon and
 * dependencies), so the real install is never touched.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSE_PATCH_LEVEL, FuseBindingError, loadFuse } from '../src/fs/fuse-binding.js';
import { ROOT } from './helpers/build.js';

const req = createRequire(import.meta.url);
const installed = dirname(req.resolve('fuse-native/package.json'));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sefs-binding-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fuse-native package directory whose index.js is `indexJs`, with the installed addon and dependencies. */
async function fakePackage(name: string, indexJs: string): Promise<string> {
  const pkg = join(dir, name, 'fuse-native');
  await mkdir(pkg, { recursive: true });
  await writeFile(join(pkg, 'index.js'), indexJs);
  await copyFile(join(installed, 'package.json'), join(pkg, 'package.json'));
  await symlink(join(installed, 'build'), join(pkg, 'build'));
  await symlink(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
  return pkg;
}

describe('loadFuse', () => {
  it('loads the installed, patched fuse-native', () => {
    expect(loadFuse().sefsPatchLevel).toBe(FUSE_PATCH_LEVEL);
  });

  it('refuses the upstream index.js, saying how to fix it', async () => {
    const work = join(dir, 'reverse');
    await mkdir(work);
    await copyFile(join(installed, 'index.js'), join(work, 'index.js'));
    execFileSync('git', ['apply', '-R', '--include=index.js', join(ROOT, 'scripts', 'fuse-native.patch')], { cwd: work });
    const upstream = await readFile(join(work, 'index.js'), 'utf8');
    expect(upstream).not.toContain('SEFS-PATCH');

    const pkg = await fakePackage('upstream', upstream);
    // It loads as a module (the upstream JS checks nothing): the refusal is ours.
    expect(typeof req(pkg)).toBe('function');
    expect(() => loadFuse(pkg)).toThrow(FuseBindingError);
    expect(() => loadFuse(pkg)).toThrow(/is not patched by sefs: .*node \/\S*scripts\/patch-fuse-native\.mjs/);
  });

  it('turns the patched index.js refusing an addon of another level into the same advice', async () => {
    const patched = await readFile(join(installed, 'index.js'), 'utf8');
    const other = patched.replace(`const SEFS_PATCH_LEVEL = ${FUSE_PATCH_LEVEL}\n`, `const SEFS_PATCH_LEVEL = ${FUSE_PATCH_LEVEL + 1}\n`);
    expect(other).not.toBe(patched);
    const pkg = await fakePackage('other-level', other);
    expect(() => loadFuse(pkg)).toThrow(FuseBindingError);
    expect(() => loadFuse(pkg)).toThrow(/cannot load fuse-native: .*not the sefs-patched addon.*patch-fuse-native\.mjs/);
  });
});
