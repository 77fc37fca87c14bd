/**
 * Creates take fresh inodes made ahead of need (src/vault/fresh-entries.ts): a new file's metadata entry is an
 * empty inode the daemon made in VAULT/tmp/fresh-0 or fresh-1 before the create, renamed into place with
 * renameat2(RENAME_NOREPLACE). What a create shows must not depend on where its inode came from: mode, owner,
 * times and EEXIST are those of a create in place (SEFS_FRESH_INODES=0); an empty pool falls back to that; a
 * daemon killed mid-burst leaves only names that were created, and the next mount starts with a new pool.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, TestMount, codeOf, disposeAll, fuseSuite, run, sleep } from './helpers.js';

fuseSuite();
afterAll(() => disposeAll());

const POOL = 128;
/** Made in one batch (fresh-entries.ts): the pool is refilled once that many have been taken. */
const BATCH = 32;
/** The system's python (one on root's PATH may be in a directory the other user cannot reach). */
const PYTHON = '/usr/bin/python3';
const BOXES = ['fresh-0', 'fresh-1'];

/** Host inode numbers of the fresh inodes waiting in a vault's tmp/. */
async function waiting(m: TestMount): Promise<Set<number>> {
  const out = new Set<number>();
  for (const box of BOXES) {
    const dir = join(m.vault, 'tmp', box);
    for (const name of await readdir(dir).catch(() => [])) out.add((await lstat(join(dir, name))).ino);
  }
  return out;
}

/** Wait until the fresh inodes waiting are as `ok` wants them (the pool fills in the background). */
async function poolBecomes(m: TestMount, ok: (now: Set<number>) => boolean, ms = 20_000): Promise<Set<number>> {
  let now = await waiting(m);
  for (let waited = 0; !ok(now) && waited < ms; waited += 100) {
    await sleep(100);
    now = await waiting(m);
  }
  expect(ok(now), `${now.size} fresh inodes waiting`).toBe(true);
  return now;
}

const poolHolds = (m: TestMount, n: number): Promise<Set<number>> => poolBecomes(m, (now) => now.size === n);

/** `n` empty files f0.. in `dir`, made with open(O_CREAT|O_EXCL) and close by one process. */
const createEmpty = (dir: string, n: number, prefix = 'f') =>
  run(process.execPath, ['-e', `const fs=require('fs');for(let i=0;i<${n};i++)fs.closeSync(fs.openSync(${JSON.stringify(dir)}+'/${prefix}'+i,'wx'))`]);

const hostIno = async (m: TestMount, name: string): Promise<number> => (await lstat(join(m.vault, 'meta', name))).ino;

/** A file created with open(O_CREAT|O_EXCL, mode) under `umask` by python (as `user`, a uid:gid, when given). */
async function create(m: TestMount, name: string, mode: number, umask: number, user?: string): Promise<void> {
  const py = `import os; os.umask(${umask}); os.close(os.open(${JSON.stringify(m.at(name))}, os.O_CREAT | os.O_EXCL | os.O_WRONLY, ${mode}))`;
  const [uid, gid] = user?.split(':') ?? [];
  if (user) await run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', PYTHON, '-c', py]);
  else await run(PYTHON, ['-c', py]);
}

/** The times of a visible file in ns, as stat shows them. */
async function timesNs(path: string): Promise<{ atime: bigint; mtime: bigint; ctime: bigint }> {
  const st = await stat(path, { bigint: true });
  return { atime: st.atimeNs, mtime: st.mtimeNs, ctime: st.ctimeNs };
}

describe('fresh inodes for creates', () => {
  it('a create puts a waiting inode in place, and the pool fills again', async () => {
    const m = await TestMount.create('fresh-use');
    const before = await poolHolds(m, POOL);
    await mkdir(m.at('d'));
    // Empty files (no write: no commit, which would put a new entry in place of the created one), more than a
    // batch: the pool is refilled.
    const n = BATCH + 8;
    await createEmpty(m.at('d'), n);
    await run('mkfifo', [m.at('d', 'fifo')]);
    const names = [...Array.from({ length: n }, (_, i) => `d/f${i}`), 'd/fifo'];
    const used = await Promise.all(names.map((name) => hostIno(m, name)));
    for (const ino of used) expect(before.has(ino)).toBe(true);
    const after = await poolBecomes(m, (now) => now.size > POOL - BATCH && [...now].some((ino) => !before.has(ino)));
    for (const ino of used) expect(after.has(ino)).toBe(false);
    const shown = await Promise.all(names.map(async (n) => (await lstat(m.at(n))).ino));
    await m.remount();
    expect(await Promise.all(names.map(async (n) => (await lstat(m.at(n))).ino))).toEqual(shown);
    for (let i = 0; i < n; i++) expect((await stat(m.at('d', `f${i}`))).size).toBe(0);
    expect((await lstat(m.at('d', 'fifo'))).isFIFO()).toBe(true);
  });

  it('mode, owner and times are what a create in place gives; EEXIST for any taken name, the inode kept', async () => {
    const pooled = await TestMount.create('fresh-attrs', { mountArgs: ['--allow-other'] });
    const inPlace = await TestMount.create('fresh-attrs-in-place', { mountArgs: ['--allow-other'], env: { SEFS_FRESH_INODES: '0' } });
    const cases: [string, number, number, string | undefined][] = [
      ['plain', 0o644, 0o022, undefined],
      ['private', 0o666, 0o077, undefined],
      ['wide', 0o777, 0, undefined],
      ['setid', 0o6755, 0, undefined],
      ['sticky', 0o1600, 0, undefined],
      ['nobody', 0o640, 0o022, '65534:65534'],
      ['sg/root', 0o664, 0o002, undefined],
      ['sg/nobody', 0o2775, 0, '65534:65534'],
    ];
    for (const m of [pooled, inPlace]) {
      await chmod(m.dir, 0o711); // the other user walks to the mount point
      await chmod(m.mnt, 0o777);
      await mkdir(m.at('sg'), { mode: 0o777 });
      await run('chown', ['0:100', m.at('sg')]);
      await chmod(m.at('sg'), 0o2777);
    }
    await poolHolds(pooled, POOL);
    for (const [name, mode, umask, user] of cases) {
      const shown: string[] = [];
      for (const m of [pooled, inPlace]) {
        const t0 = BigInt(Date.now() - 50) * 1_000_000n;
        await create(m, name, mode, umask, user);
        const t1 = BigInt(Date.now() + 50) * 1_000_000n;
        const st = await stat(m.at(name));
        shown.push(`${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.size}`);
        const t = await timesNs(m.at(name));
        for (const v of Object.values(t)) expect(v >= t0 && v <= t1, `${name}: a time of the create`).toBe(true);
        // Taken from the pool: the kernel's one now, all three, as open(O_CREAT) gives them.
        if (m === pooled) expect([t.atime, t.mtime]).toEqual([t.ctime, t.ctime]);
      }
      expect(shown[0], name).toBe(shown[1]);
    }
    expect((await waiting(inPlace)).size).toBe(0);

    // EEXIST for a file, a directory, a symlink (dangling too) and a FIFO; nothing taken from the pool.
    await symlink('nowhere', pooled.at('dangling'));
    await run('mkfifo', [pooled.at('fifo')]);
    await sleep(500); // fewer than a batch taken: nothing is being made
    const full = await waiting(pooled);
    expect(full.size).toBe(POOL - cases.length - 1);
    for (const name of ['plain', 'sg', 'dangling', 'fifo']) {
      expect(await codeOf(run(PYTHON, ['-c', `import os; os.open(${JSON.stringify(pooled.at(name))}, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)`])), name).not.toBe('OK');
      expect(await codeOf(writeFile(pooled.at(name), 'x', { flag: 'wx' })), name).toBe('EEXIST');
    }
    expect(await waiting(pooled)).toEqual(full);
    expect((await lstat(pooled.at('dangling'))).isSymbolicLink()).toBe(true);
    expect((await stat(pooled.at('plain'))).size).toBe(0);
  });

  it('an empty or a small pool: creates are made in place, each file as it should be', async () => {
    for (const size of ['0', '2']) {
      const m = await TestMount.create(`fresh-small-${size}`, { env: { SEFS_FRESH_INODES: size, SEFS_TRACE_OPS: '1' } });
      await mkdir(m.at('d'));
      // A burst the pool cannot keep up with: 8 processes at once, 25 creates each back to back. (One process
      // alone no longer outruns a pool of 2: a refill of two takes tens of microseconds, a create through FUSE more.)
      await Promise.all(
        Array.from({ length: 8 }, (_, p) =>
          run(process.execPath, ['-e', `const fs=require('fs');for(let i=${p * 25};i<${p * 25 + 25};i++)fs.writeFileSync(${JSON.stringify(m.at('d'))}+'/f'+i,'n'+i)`]),
        ),
      );
      await m.unmount();
      const use = /creates: (\d+) took a fresh inode, (\d+) found none/.exec(await m.log());
      if (size === '0') expect(await m.log()).toMatch(/creates: no fresh inodes/);
      else {
        expect(Number(use![1]) + Number(use![2])).toBe(200);
        expect(Number(use![1])).toBeGreaterThan(0);
        expect(Number(use![2])).toBeGreaterThan(0);
      }
      await m.mount();
      for (let i = 0; i < 200; i++) expect(await readFile(m.at('d', `f${i}`), 'utf8')).toBe(`n${i}`);
    }
  });

  it('a sealed vault takes them too', async () => {
    const m = await TestMount.create('fresh-sealed', { sealed: true });
    const before = await poolHolds(m, POOL);
    const long = 'n'.repeat(200); // a long sealed name: its side file is written before the node
    for (const name of ['a', long]) await writeFile(m.at(name), '', { flag: 'wx' });
    const entries = await readdir(join(m.vault, 'meta'));
    const taken = (await Promise.all(entries.map((n) => lstat(join(m.vault, 'meta', n))))).filter((st) => st.isFile() && before.has(st.ino));
    expect(taken.length).toBe(2);
    await writeFile(m.at('a'), 'sealed a');
    await m.remount();
    expect(await readFile(m.at('a'), 'utf8')).toBe('sealed a');
    expect((await stat(m.at(long))).size).toBe(0);
  });

  it('kill -9 mid-burst: only created names show, each empty or whole; the next mount starts a new pool, fsck is clean', async () => {
    const m = await TestMount.create('fresh-crash');
    await poolHolds(m, POOL);
    await mkdir(m.at('d'));
    const writer = spawn(process.execPath, ['-e', `const fs=require('fs');for(let i=0;i<5000;i++){fs.writeFileSync(${JSON.stringify(m.at('d'))}+'/f'+i,'content of '+i);console.log(i)}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let last = -1;
    writer.stdout.on('data', (d: Buffer) => (last = Number(d.toString().trim().split('\n').pop())));
    const ended = new Promise((r) => writer.once('exit', r));
    while (last < 300) await sleep(10);
    await m.kill9();
    await ended;
    expect((await waiting(m)).size).toBeGreaterThan(0); // what the next mount must remove
    const remounted = Date.now();
    await m.mount(); // clears the stale mount
    const names = await readdir(m.at('d'));
    expect(names.length).toBeGreaterThanOrEqual(last + 1);
    for (const name of names) {
      const i = /^f(\d+)$/.exec(name);
      expect(i, name).not.toBeNull();
      expect(Number(i![1])).toBeLessThanOrEqual(last + 1); // at most the one in flight
      const content = await readFile(m.at('d', name), 'utf8');
      expect(['', `content of ${i![1]}`]).toContain(content);
    }
    // The pool the crash left was removed (host inode numbers may come back: its files' birth times say), a new one made.
    await poolHolds(m, POOL);
    for (const box of BOXES) {
      for (const name of await readdir(join(m.vault, 'tmp', box))) expect((await stat(join(m.vault, 'tmp', box, name))).birthtimeMs).toBeGreaterThanOrEqual(remounted - 1000);
    }
    expect((await readdir(join(m.vault, 'tmp'))).sort()).toEqual(BOXES);
    await m.unmount();
    expect(await waiting(m)).toEqual(new Set());
    await run(process.execPath, [CLI, 'fsck', m.vault]);
  });
});
