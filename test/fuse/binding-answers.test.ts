/**
 * Requests the binding answers without the JS thread (fuse-native patch level 6).
 *
 * The attribute cache: getattrs answered in C from attributes JS gave
 * moments before (a readdir's stats, a change's answer, a getattr's answer). What must hold whatever the
 * timing: a path never shows another path's attributes (an expired entry, a hash bucket shared with other
 * paths), and once a change returns, every stat shows it, also when the kernel has forgotten the name and
 * asks the daemon again (drop_caches between the change and the stat: the kernel's own cache would
 * otherwise answer and hide a stale entry in ours). readdir's d_type and d_ino agree with lstat.
 *
 * Lookups of missing names (level 8): in a directory made through the mount the binding knows every name, and
 * answers ENOENT for any other itself. Checked against a plain directory taking the same random operations,
 * with the kernel's names forgotten before each comparison, so that every lookup reaches the binding.
 *
 * Closes: sefs has no flush op (libfuse answers the first FLUSH ENOSYS, and the kernel sends no more), so
 * close(2) never waits for the JS thread; a file changed through one handle is committed after its last close.
 */
import { lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { appendFile, chmod, chown, link, mkdir, open, readFile, rename, rm, rmdir, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, disposeEachTest, fuseSuite, prng, run, seededBytes, sleep, TestMount } from './helpers.js';
import { ATTR_TIMEOUT_S } from '../../src/fs/kernel-options.js';

fuseSuite();
disposeEachTest();

let m: TestMount | undefined;

/** The kernel forgets every dentry and inode it holds: the next stat of a name is a lookup the daemon answers. */
const forgetNames = (): Promise<unknown> => writeFile('/proc/sys/vm/drop_caches', '2');

/** What a tree made by makeSmallTree holds: path -> [is a directory, size]. */
type Expected = Map<string, [boolean, number]>;

/** `dirs` directories of `files` files each, every file a size of its own (so a wrong entry shows). */
async function makeSmallTree(root: string, dirs: number, files: number): Promise<Expected> {
  const expected: Expected = new Map();
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    await mkdir(dir);
    expected.set(dir, [true, -1]);
    for (let f = 0; f < files; f++) {
      const size = 1 + d * files + f;
      await writeFile(join(dir, `f${f}`), Buffer.alloc(size, 97));
      expected.set(join(dir, `f${f}`), [false, size]);
    }
  }
  return expected;
}

/** Every path's type and size as expected, and every path a different inode number. */
function checkTree(expected: Expected, order: string[]): void {
  const inodes = new Map<number, string>();
  for (const path of order) {
    const st = lstatSync(path);
    const [isDir, size] = expected.get(path)!;
    expect({ path, isDir: st.isDirectory() }).toEqual({ path, isDir });
    if (!isDir) expect({ path, size: st.size }).toEqual({ path, size });
    expect(inodes.get(st.ino), `${path} and ${inodes.get(st.ino)} share inode ${st.ino}`).toBeUndefined();
    inodes.set(st.ino, path);
  }
}

describe('the binding answers getattrs from attributes JS gave', () => {
  it('never with another path\'s attributes, fresh, half expired or expired', async () => {
    m = await TestMount.create('attrs-own', { env: { SEFS_TRACE_OPS: '1' } });
    const expected = await makeSmallTree(m.at(), 12, 40);
    const paths = [...expected.keys()];
    const reversed = [...paths].reverse();
    const scrambled = paths.map((p, i) => [p, (i * 7919) % paths.length] as const).sort((a, b) => a[1] - b[1]).map(([p]) => p);
    await m.remount();
    for (let round = 0; round < 3; round++) {
      await run('ls', ['-lR', m.mnt]); // readdir stats: the cache holds every name
      checkTree(expected, scrambled);
      // Half of the entries expire while the others are refreshed by getattr answers, then all of them.
      await sleep((ATTR_TIMEOUT_S * 1000) / 2 + 100);
      await forgetNames();
      checkTree(expected, reversed.slice(0, paths.length / 2));
      await sleep((ATTR_TIMEOUT_S * 1000) / 2 + 100);
      await forgetNames();
      checkTree(expected, scrambled);
      await sleep(ATTR_TIMEOUT_S * 1000 + 100);
      await forgetNames();
      checkTree(expected, paths);
    }
    await m.unmount();
    // The cache was used: the lookups that followed the listings were answered in the binding (the last
    // mount's line: the log also holds the first mount's).
    const counts = [...(await m.log()).matchAll(/attribute cache: (\d+) getattrs answered in the binding/g)];
    expect(counts.length).toBe(2);
    expect(Number(counts[1]![1])).toBeGreaterThan(paths.length);
  });

  it('readdir gives each name the type and inode number lstat gives it', async () => {
    m = await TestMount.create('attrs-dirent');
    await makeSmallTree(m.at(), 3, 20);
    await symlink('d0/f1', m.at('link'));
    await run('mkfifo', [m.at('fifo')]);
    await m.remount();
    const script = `
import os, stat, sys
bad = []
for root, dirs, files in os.walk(sys.argv[1]):
    for e in os.scandir(root):
        st = os.lstat(e.path)
        if e.inode() != st.st_ino or e.is_dir(follow_symlinks=False) != stat.S_ISDIR(st.st_mode) \\
           or e.is_symlink() != stat.S_ISLNK(st.st_mode) or e.is_file(follow_symlinks=False) != stat.S_ISREG(st.st_mode):
            bad.append(e.path)
print(len(bad), bad[:5])`;
    expect((await run('python3', ['-c', script, m.mnt])).stdout.trim()).toBe('0 []');
  });

  it('shows every change once it returns, also to a lookup made after the kernel forgot the name', async () => {
    m = await TestMount.create('attrs-change');
    await makeSmallTree(m.at(), 2, 5);
    await mkdir(m.at('d0', 'sub'));
    await writeFile(m.at('d0', 'sub', 'deep'), 'deep');
    const fresh = async (): Promise<void> => {
      await run('ls', ['-lR', m!.mnt]); // everything cached, in the kernel and in the binding
    };
    const after = async <T>(change: () => Promise<unknown>, look: () => T): Promise<T> => {
      await fresh();
      await change();
      await forgetNames();
      return look();
    };
    const f = m.at('d0', 'f1');
    expect(await after(() => chmod(f, 0o640), () => statSync(f).mode & 0o7777)).toBe(0o640);
    expect(await after(() => chown(f, 1234, 5678), () => [statSync(f).uid, statSync(f).gid])).toEqual([1234, 5678]);
    expect(await after(() => utimes(f, 1_000_000, 2_000_000), () => statSync(f).mtimeMs)).toBe(2_000_000_000);
    expect(await after(() => truncate(f, 12345), () => statSync(f).size)).toBe(12345);
    expect(await after(() => appendFile(f, 'xyz'), () => statSync(f).size)).toBe(12348);
    // Another process's change (not this one's syscalls): the same.
    expect(await after(() => run('chmod', ['600', f]), () => statSync(f).mode & 0o7777)).toBe(0o600);

    const dirMtime = statSync(m.at('d1')).mtimeMs;
    await sleep(20);
    expect(await after(() => writeFile(m!.at('d1', 'new'), 'n'), () => statSync(m!.at('d1')).mtimeMs)).toBeGreaterThan(dirMtime);
    const links = statSync(m.at('d1')).nlink;
    expect(await after(() => mkdir(m!.at('d1', 'nd')), () => statSync(m!.at('d1')).nlink)).toBe(links + 1);
    expect(await after(() => rmdir(m!.at('d1', 'nd')), () => statSync(m!.at('d1')).nlink)).toBe(links);

    // Names that went, came or moved.
    expect(await after(() => rm(m!.at('d1', 'f0')), () => codeOfStat(m!.at('d1', 'f0')))).toBe('ENOENT');
    expect(await after(() => rename(m!.at('d1', 'f2'), m!.at('d1', 'f3')), () => [codeOfStat(m!.at('d1', 'f2')), statSync(m!.at('d1', 'f3')).size])).toEqual(['ENOENT', 8]);
    expect(await after(() => rename(m!.at('d0', 'sub'), m!.at('d1', 'moved')), () => [codeOfStat(m!.at('d0', 'sub', 'deep')), statSync(m!.at('d1', 'moved', 'deep')).size])).toEqual(['ENOENT', 4]);
    expect(await after(() => symlink('f3', m!.at('d1', 'sl')), () => lstatSync(m!.at('d1', 'sl')).isSymbolicLink())).toBe(true);
    expect(await after(() => link(m!.at('d1', 'f3'), m!.at('d1', 'hl')), () => [statSync(m!.at('d1', 'f3')).nlink, statSync(m!.at('d1', 'hl')).nlink])).toEqual([2, 2]);
    expect(await after(() => rm(m!.at('d1', 'hl')), () => statSync(m!.at('d1', 'f3')).nlink)).toBe(1);
    // A file made where a directory was, and the other way round.
    expect(await after(() => rm(m!.at('d1', 'moved'), { recursive: true }).then(() => writeFile(m!.at('d1', 'moved'), 'now a file')), () => lstatSync(m!.at('d1', 'moved')).isFile())).toBe(true);
    expect(await after(() => rm(m!.at('d1', 'f4')).then(() => mkdir(m!.at('d1', 'f4'))), () => lstatSync(m!.at('d1', 'f4')).isDirectory())).toBe(true);
    expect(readdirSync(m.at('d1')).sort()).toEqual(['f1', 'f3', 'f4', 'moved', 'new', 'sl']);
  });
});

describe('names the kernel keeps as missing (negative_timeout)', () => {
  it('a name looked up and not found shows at once when made through the mount, whatever makes it', async () => {
    m = await TestMount.create('negative');
    await mkdir(m.at('d'));
    await writeFile(m.at('d/source'), 'source');
    const makers: [string, (p: string) => Promise<unknown>][] = [
      ['created', (p) => writeFile(p, 'x')],
      ['mkdir', (p) => mkdir(p)],
      ['symlink', (p) => symlink('source', p)],
      ['link', (p) => link(m!.at('d/source'), p)],
      ['rename', async (p) => (await writeFile(m!.at('d/tmp'), 'y'), rename(m!.at('d/tmp'), p))],
      ['mkfifo', (p) => run('mkfifo', [p])],
    ];
    for (const [how, make] of makers) {
      const path = m.at(`d/${how}`);
      // Twice: the second is answered by the kernel's negative entry, if it keeps one.
      for (let i = 0; i < 2; i++) expect(() => lstatSync(path), how).toThrow(/ENOENT/);
      await make(path);
      expect(lstatSync(path).ino, how).toBeGreaterThan(0);
      expect(readdirSync(m.at('d')), how).toContain(how);
    }
    // And a name removed is missing at once, then made again.
    await rm(m.at('d/created'));
    expect(() => lstatSync(m!.at('d/created'))).toThrow(/ENOENT/);
    await writeFile(m.at('d/created'), 'again');
    expect(await readFile(m.at('d/created'), 'utf8')).toBe('again');
  });

  it('repeated lookups of a missing name are answered by the kernel, not the daemon', async () => {
    m = await TestMount.create('negative-count', { env: { SEFS_TRACE_OPS: '1' } });
    for (let i = 0; i < 50; i++) expect(() => lstatSync(m!.at('missing'))).toThrow(/ENOENT/);
    await m.unmount();
    const calls = Number(/op getattr: (\d+) calls/.exec(await m.log())?.[1] ?? 0);
    // The first lookup, and the mount's own few (its root); not one per lstat.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(10);
  });
});

/**
 * 1,200 random creates, links, symlinks, renames, removals and unlinks of open files under `mnt` and `plain` side
 * by side: each must give the same outcome in both, and every 20 steps, with the kernel's names forgotten (every
 * lookup then reaches the binding), every name the same type. `between` runs every 200 steps.
 */
async function randomNamesWalk(mnt: string, plain: string, seed: number, between?: () => Promise<void>, names = ['a', 'b', 'c'], sealed = false): Promise<void> {
  // Names at three depths, so renames move known directories into, out of and over one another.
  const paths = names.flatMap((x) => [x, ...names.flatMap((y) => [`${x}/${y}`, ...names.map((z) => `${x}/${y}/${z}`)])]);
  const shape = (root: string, path: string): string => {
    try {
      const st = lstatSync(join(root, path));
      return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : `file ${st.size}`;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'error';
    }
  };
  const rand = prng(seed);
  const any = (): string => paths[Math.floor(rand() * paths.length)]!;
  const parentOf = (path: string): string => path.split('/').slice(0, -1).join('/');
  /** Mostly a name that is there (what a removal or a rename takes), sometimes any. */
  const pickThere = (): string => {
    const there = paths.filter((path) => shape(plain, path).match(/^(dir|link|file)/));
    return there.length > 0 && rand() < 0.9 ? there[Math.floor(rand() * there.length)]! : any();
  };
  /** Mostly a name whose directory is there (what a create takes), sometimes any. */
  const pickPlace = (): string => {
    const places = paths.filter((path) => parentOf(path) === '' || shape(plain, parentOf(path)) === 'dir');
    return rand() < 0.9 ? places[Math.floor(rand() * places.length)]! : any();
  };
  const outcome = (op: (root: string) => Promise<unknown>, root: string): Promise<string> =>
    op(root).then(
      () => 'OK',
      (err: NodeJS.ErrnoException) => err.code ?? String(err),
    );
  /** An open file unlinked, then closed: libfuse renames it to a hidden name meanwhile. */
  const openUnlinked = async (root: string, path: string): Promise<void> => {
    const fh = await open(join(root, path), 'r');
    try {
      await unlink(join(root, path));
    } finally {
      await fh.close();
    }
  };
  const ops: [string, (p: string, q: string) => (root: string) => Promise<unknown>][] = [
    ['mkdir', (_p, q) => (root) => mkdir(join(root, q))],
    ['create', (_p, q) => (root) => writeFile(join(root, q), q, { flag: 'wx' })],
    ['unlink', (p) => (root) => unlink(join(root, p))],
    ['rmdir', (p) => (root) => rmdir(join(root, p))],
    ['rename', (p, q) => (root) => rename(join(root, p), join(root, q))],
    // A sealed vault refuses a symlink a second name (EPERM: its target is sealed for its one name).
    ['link', (p, q) => (root) => (sealed && shape(plain, p) === 'link' ? Promise.resolve() : link(join(root, p), join(root, q)))],
    ['symlink', (_p, q) => (root) => symlink('target', join(root, q))],
    ['unlink while open', (p) => (root) => openUnlinked(root, p)],
  ];
  const tally = new Map<string, number>();
  for (let step = 0; step < 1200; step++) {
    const [what, make] = ops[Math.floor(rand() * ops.length)]!;
    const [p, q] = [pickThere(), pickPlace()];
    const op = make(p, q);
    const got = await outcome(op, mnt);
    expect(got, `step ${step}: ${what} ${p} ${q}`).toBe(await outcome(op, plain));
    tally.set(`${what} ${got}`, (tally.get(`${what} ${got}`) ?? 0) + 1);
    if (step % 20 === 19) {
      await forgetNames(); // the lookups below reach the daemon
      for (const path of paths) expect(shape(mnt, path), `after step ${step}: ${path}`).toBe(shape(plain, path));
    }
    if (step % 200 === 199) await between?.();
  }
  // Every kind of change succeeded many times (a walk of failures would test little).
  for (const [what] of ops) expect(tally.get(`${what} OK`) ?? 0, `${what} succeeded: ${JSON.stringify([...tally])}`).toBeGreaterThan(10);
}

describe('lookups answered ENOENT from the names of directories made through the mount (patch level 8)', () => {
  it('agree with a plain directory through random creates, links, renames and removals, also of open files', async () => {
    m = await TestMount.create('names', { env: { SEFS_TRACE_OPS: '1' } });
    const mnt = m.at('t');
    const plain = m.host('plain');
    await mkdir(mnt);
    await mkdir(plain);
    await randomNamesWalk(mnt, plain, 8);
    await m.unmount();
    // The binding answered: lookups of missing names in directories it knew.
    const line = /(\d+) lookups answered ENOENT from the names of (\d+) directories/.exec(await m.log());
    expect(Number(line?.[1])).toBeGreaterThan(100);
  });

  it('never hide a name (a directory renamed away and back), nor answer ENOENT for a name too long to exist', async () => {
    m = await TestMount.create('names-back');
    await mkdir(m.at('d'));
    await writeFile(m.at('d/f'), 'f');
    await rename(m.at('d'), m.at('e')); // the directory is known no longer (its path changed)
    await mkdir(m.at('d')); // a new d: known, empty
    await forgetNames();
    expect(codeOfStat(m.at('d/f'))).toBe('ENOENT');
    await rmdir(m.at('d'));
    await rename(m.at('e'), m.at('d')); // the old one back: its f must show
    await forgetNames();
    expect(readFileSync(m.at('d/f'), 'utf8')).toBe('f');
    expect(codeOfStat(m.at('d/g'))).toBe('ENOENT');
    // A name too long to exist is refused as such, also in a directory whose names the binding knows.
    await mkdir(m.at('known'));
    expect(codeOfStat(m.at('known', 'n'.repeat(255)))).toBe('ENOENT');
    expect(codeOfStat(m.at('known', 'n'.repeat(256)))).toBe('ENAMETOOLONG');
  });
});

/** Lookups answered ENOENT, and directories listed by JS, over every mount of `m` (each unmount logs its own). */
async function listedAndAbsent(m: TestMount): Promise<{ listed: number; absent: number }> {
  const lines = [...(await m.log()).matchAll(/(\d+) lookups answered ENOENT from the names of \d+ directories \((\d+) listed by JS\)/g)];
  return { absent: lines.reduce((n, l) => n + Number(l[1]), 0), listed: lines.reduce((n, l) => n + Number(l[2]), 0) };
}

describe('lookups answered ENOENT from the names of directories JS lists for the binding (patch level 10)', () => {
  it('agree with a plain directory in the mount root and in directories older than the mount, across remounts', async () => {
    m = await TestMount.create('listed', { env: { SEFS_TRACE_OPS: '1' } });
    const plain = m.host('plain');
    await mkdir(plain);
    // Every 200 steps a remount: each directory is then older than the mount, its names unknown until listed.
    await randomNamesWalk(m.mnt, plain, 9, () => m!.remount());
    await m.unmount();
    const { listed, absent } = await listedAndAbsent(m);
    expect(listed).toBeGreaterThan(5);
    expect(absent).toBeGreaterThan(100);
  });

  it('the same in a sealed vault, with a name long enough to be stored in its long form', async () => {
    m = await TestMount.create('listed-sealed', { sealed: true, env: { SEFS_TRACE_OPS: '1' } });
    const plain = m.host('plain');
    await mkdir(plain);
    await randomNamesWalk(m.mnt, plain, 10, () => m!.remount(), ['a', 'b', 'l'.repeat(200)], true);
    await m.unmount();
    const { listed, absent } = await listedAndAbsent(m);
    expect(listed).toBeGreaterThan(5);
    expect(absent).toBeGreaterThan(100);
  });

  it('count the hidden name of a file removed while open among a listed directory\'s names', async () => {
    m = await TestMount.create('listed-hidden', { env: { SEFS_TRACE_OPS: '1' } });
    await mkdir(m.at('d'));
    await writeFile(m.at('d/f'), 'kept open');
    await m.remount(); // d is older than this mount now
    const fh = await open(m.at('d/f'), 'r');
    try {
      await unlink(m.at('d/f')); // libfuse renames f to a hidden name while it is open
      // Not listed by readdir (sefs keeps it in memory): libfuse names it .fuse_hidden, its node id and its count of
      // hidden files (1 here), in hex; a node id below 64 after a fresh mount.
      const hex = (n: number) => n.toString(16).padStart(8, '0');
      const candidates = Array.from({ length: 64 }, (_, id) => `.fuse_hidden${hex(id + 1)}${hex(1)}`);
      const hidden = candidates.find((name) => codeOfStat(m!.at('d', name)) === 'exists');
      expect(hidden).toBeDefined();
      for (const n of ['x', 'y', 'z']) expect(codeOfStat(m.at('d', n))).toBe('ENOENT'); // misses enough: d is listed
      await forgetNames();
      expect(lstatSync(m.at('d', hidden!)).size).toBe(9); // answered by JS, not ENOENT by the binding
      expect(codeOfStat(m.at('d', 'w'))).toBe('ENOENT');
    } finally {
      await fh.close();
    }
    await m.unmount();
    expect((await listedAndAbsent(m)).listed).toBe(1);
  });
});

describe('writes to new files held in the binding (patch level 9)', () => {
  it('show at once to stat, to other readers and after close and remount, in order, with the mtime of the write', async () => {
    m = await TestMount.create('held', { env: { SEFS_TRACE_OPS: '1' } });
    const expected = new Map<string, Buffer>();
    // Appends of every size up to past a run's limit, and writes that jump back and forth.
    for (const [name, pieces] of [
      ['one', [seededBytes(3000, 1)]],
      ['appends', Array.from({ length: 300 }, (_, i) => seededBytes(1 + ((i * 37) % 2000), 10 + i))],
      ['large', Array.from({ length: 6 }, (_, i) => seededBytes(100_000, 400 + i))],
    ] as const) {
      const fh = await open(m.at(name), 'wx');
      let size = 0;
      for (const piece of pieces) {
        await fh.write(piece, 0, piece.length, size);
        size += piece.length;
        expect(statSync(m.at(name)).size, name).toBe(size);
      }
      await fh.close();
      expected.set(name, Buffer.concat(pieces));
    }
    const jumps = await open(m.at('jumps'), 'wx');
    const model = Buffer.alloc(50_000);
    const rand = prng(9);
    for (let i = 0; i < 200; i++) {
      const at = Math.floor(rand() * 45_000);
      const piece = seededBytes(1 + Math.floor(rand() * 4000), 900 + i);
      await jumps.write(piece, 0, Math.min(piece.length, model.length - at), at);
      piece.copy(model, at, 0, Math.min(piece.length, model.length - at));
    }
    const jumpsSize = Number((await run('stat', ['-c', '%s', m.at('jumps')])).stdout.trim());
    await jumps.close();
    expected.set('jumps', model.subarray(0, jumpsSize));

    // A write past the file size limit is refused as ever (EFBIG), not held.
    const far = await open(m.at('far'), 'wx');
    expect(await far.write('x', 2 ** 40).then(() => 'OK', (err: NodeJS.ErrnoException) => err.code)).toBe('EFBIG');
    await far.close();

    // A reader opening a file its writer still holds sees every byte, and the writes after it.
    const writer = await open(m.at('shared'), 'wx');
    await writer.write('written before the reader, ');
    const reader = await open(m.at('shared'), 'r');
    expect(await reader.readFile('utf8')).toBe('written before the reader, ');
    await writer.write('and after', 27);
    expect((await reader.read(Buffer.alloc(100), 0, 100, 0)).bytesRead).toBe(36);
    await reader.close();
    await writer.close();
    expected.set('shared', Buffer.from('written before the reader, and after'));

    // The mtime is the write's, and a utimens after the write wins (tar: write, close, utime).
    const before = Date.now();
    await writeFile(m.at('timed'), 'timed');
    const after = Date.now();
    await sleep(1200);
    const mtime = statSync(m.at('timed')).mtimeMs;
    expect(mtime).toBeGreaterThanOrEqual(before - 5);
    expect(mtime).toBeLessThanOrEqual(after + 5);
    await writeFile(m.at('utimed'), 'utimed');
    await utimes(m.at('utimed'), 1_000_000, 2_000_000);
    expected.set('timed', Buffer.from('timed')).set('utimed', Buffer.from('utimed'));

    for (const [name, bytes] of expected) expect((await readFile(m.at(name))).equals(bytes), name).toBe(true);
    await m.unmount();
    const line = /held writes: (\d+) writes of new files answered in the binding/.exec(await m.log());
    expect(Number(line?.[1])).toBeGreaterThan(300);
    await m.mount();
    for (const [name, bytes] of expected) expect((await readFile(m.at(name))).equals(bytes), `${name} after a remount`).toBe(true);
    expect(statSync(m.at('utimed')).mtimeMs).toBe(2_000_000_000);
    expect(Math.abs(statSync(m.at('timed')).mtimeMs - mtime)).toBeLessThan(1);
  });
});

describe('creates answered in the binding (patch level 11)', () => {
  it('make files as JS does: mode, owner, inode number, content, and every change right after, across a remount', async () => {
    m = await TestMount.create('creates', { env: { SEFS_TRACE_OPS: '1' } });
    await mkdir(m.at('d'));
    const expected = new Map<string, Buffer>();
    // A burst in a directory made through the mount (its names are known): the binding answers these, while the
    // write-back commits of the ones before replace their entries (keeping the directory's times meanwhile: a
    // create landing in between would lose its mtime).
    let lastCreate = 0;
    for (let i = 0; i < 400; i++) {
      const bytes = seededBytes(1 + ((i * 97) % 5000), 2000 + i);
      lastCreate = Date.now();
      await writeFile(m.at('d', `f${i}`), bytes, { mode: i % 2 ? 0o600 : 0o640 });
      expected.set(`d/f${i}`, bytes);
      if (i % 50 === 49) await sleep(150); // commits run now, as the creates go on
    }
    await sleep(1500); // every commit done
    expect(statSync(m.at('d')).mtimeMs).toBeGreaterThanOrEqual(lastCreate - 10);
    // A name that is not plain ASCII, and one in the root (its names are not known yet): JS's creates.
    await writeFile(m.at('d', 'é.txt'), 'accented');
    await writeFile(m.at('top'), 'top');
    expected.set('d/é.txt', Buffer.from('accented')).set('top', Buffer.from('top'));
    // Changes right after a create, each the first request to reach JS since it (JS takes the create first).
    const renamed = await open(m.at('d', 'moving'), 'wx');
    await rename(m.at('d', 'moving'), m.at('d', 'moved'));
    await renamed.write('moved while open');
    await renamed.close();
    expected.set('d/moved', Buffer.from('moved while open'));
    await writeFile(m.at('d', 'gone'), 'x');
    await unlink(m.at('d', 'gone'));
    await writeFile(m.at('d', 'linked'), 'two names');
    await link(m.at('d', 'linked'), m.at('d', 'other'));
    expected.set('d/linked', Buffer.from('two names')).set('d/other', Buffer.from('two names'));
    const chmodded = await open(m.at('d', 'chmodded'), 'wx', 0o644);
    await chmodded.chmod(0o604);
    await chmodded.write('chmod while open');
    await chmodded.close();
    expected.set('d/chmodded', Buffer.from('chmod while open'));
    // O_EXCL on a name the binding made: EEXIST, and the file is untouched.
    expect(await open(m.at('d', 'f1'), 'wx').then(() => 'opened', (err: NodeJS.ErrnoException) => err.code)).toBe('EEXIST');

    const shown = new Map<string, { ino: number; mode: number; uid: number; gid: number; size: number }>();
    for (const name of expected.keys()) {
      const st = statSync(m.at(name));
      shown.set(name, { ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size });
      expect(st.size, name).toBe(expected.get(name)!.length);
    }
    expect(shown.get('d/f1')!.mode).toBe(0o100600);
    expect(shown.get('d/f2')!.mode).toBe(0o100640);
    expect(shown.get('d/chmodded')!.mode).toBe(0o100604);
    expect(shown.get('d/other')!.ino).toBe(shown.get('d/linked')!.ino);
    const inos = [...shown].filter(([name]) => name !== 'd/other').map(([, s]) => s.ino);
    expect(new Set(inos).size).toBe(inos.length);
    expect(readdirSync(m.at('d')).sort()).toEqual([...expected.keys()].filter((n) => n.startsWith('d/')).map((n) => n.slice(2)).sort());
    expect(lstatSync(m.at('d', 'gone'), { throwIfNoEntry: false })).toBeUndefined();

    await m.unmount();
    const made = /creates answered in the binding: (\d+)/.exec(await m.log());
    expect(Number(made?.[1])).toBeGreaterThanOrEqual(300); // of 400+: a few go to JS while prepared inodes are refilled
    await m.mount();
    for (const [name, bytes] of expected) {
      expect((await readFile(m.at(name))).equals(bytes), `${name} after a remount`).toBe(true);
      const st = statSync(m.at(name));
      expect({ ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size }, name).toEqual(shown.get(name));
    }
    await m.unmount();
    await run(process.execPath, [CLI, 'fsck', m.vault]); // rejects unless the vault is clean
  });

  it('wait while a commit replaces an entry in their directory and puts its times back', async () => {
    // The daemon's JS thread stops 400 ms between a commit's replacement of an entry and the restore of the
    // directory's times; a create the binding answered in that window would have its mtime undone.
    m = await TestMount.create('creates-dir-times', { env: { SEFS_TEST_DIR_TIMES_PAUSE_MS: '400' } });
    await mkdir(m.at('d'));
    await writeFile(m.at('d', 'warm'), 'the binding has prepared inodes by now');
    await sleep(1500);
    await writeFile(m.at('d', 'a'), 'committed 100 ms after its close');
    await sleep(250); // a's commit is in its pause now
    const created = Date.now();
    await writeFile(m.at('d', 'b'), 'created during the pause');
    await sleep(1500);
    expect(statSync(m.at('d')).mtimeMs).toBeGreaterThanOrEqual(created - 10);
    expect(lstatSync(join(m.vault, 'meta', 'd')).mtimeMs).toBeGreaterThanOrEqual(created - 10);
  });
});

describe('chmod, chown and utimens of files the binding made, answered in the binding (patch level 12)', () => {
  /** What stat shows of a file that these tests compare. */
  const shownOf = (path: string) => {
    const st = statSync(path, { bigint: true });
    return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: st.atimeNs, mtime: st.mtimeNs };
  };
  /** The blocks sefs shows: what is stored (no holes here), in 512-byte units. */
  const blocksShown = (path: string): boolean => {
    const st = statSync(path);
    return st.blocks === Math.ceil(st.size / 512);
  };

  it('show as a plain directory shows them, at once and after a remount, with a write after a change winning', async () => {
    m = await TestMount.create('changes', { env: { SEFS_TRACE_OPS: '1' } });
    const plain = join(m.work, 'plain');
    await mkdir(plain);
    await mkdir(m.at('d'));
    await writeFile(m.at('d', 'warm'), 'the binding has prepared inodes by now');
    await sleep(1000);
    // tar's order per file (as root): create, write, futimens, fchown, fchmod, close; checked against the same
    // calls in a plain directory, through the open handle and right after the close.
    const names: string[] = [];
    for (let i = 0; i < 150; i++) {
      const name = `f${i}`;
      names.push(name);
      const bytes = seededBytes(1 + ((i * 131) % 6000), 7000 + i);
      const times: [number, number] = [1_500_000_000 + i + 0.25, 1_400_000_000 + i * 1000 + 0.5];
      for (const path of [join(plain, name), m.at('d', name)]) {
        const fh = await open(path, 'wx', 0o600);
        await fh.write(bytes, 0, bytes.length, 0);
        await fh.utimes(...times);
        await fh.chown(1000 + (i % 3), 2000 + (i % 5));
        await fh.chmod([0o644, 0o755, 0o600, 0o4755, 0o2750][i % 5]);
        if (path === m.at('d', name)) {
          expect(shownOf(path), `${name} while open`).toEqual(shownOf(join(plain, name)));
          expect(blocksShown(path), `${name}'s blocks while open`).toBe(true);
        }
        await fh.close();
      }
      expect(shownOf(m.at('d', name)), name).toEqual(shownOf(join(plain, name)));
      expect(blocksShown(m.at('d', name)), `${name}'s blocks`).toBe(true);
    }

    // A write after a change the binding answered: its mtime wins over the utimens, as the data follows.
    const late = await open(m.at('d', 'late'), 'wx');
    await late.write('first ');
    await late.utimes(1_000_000, 1_000_000);
    const beforeLate = Date.now();
    await late.write('second', 6);
    await late.chmod(0o640);
    await late.close();
    // A change by path from elsewhere while the file is open, and one after a rename of the open file.
    const other = await open(m.at('d', 'other'), 'wx');
    await other.write('changed by path');
    await chmod(m.at('d', 'other'), 0o604);
    await utimes(m.at('d', 'other'), 1_200_000_000, 1_300_000_000);
    await other.close();
    const moved = await open(m.at('d', 'moving'), 'wx');
    await moved.write('renamed, then changed');
    await rename(m.at('d', 'moving'), m.at('d', 'moved'));
    await moved.chmod(0o606);
    await moved.utimes(1_100_000_000, 1_100_000_000);
    await moved.close();
    // A time whose nanoseconds do not fit in 64 bits: JS's to answer (not a wrapped time kept silently).
    const far = await open(m.at('d', 'far'), 'wx');
    await far.write('far');
    const farAnswer = await far.utimes(2e10, 2e10).then(() => 'set', (err: NodeJS.ErrnoException) => err.code);
    const farShown = statSync(m.at('d', 'far')).mtimeMs;
    await far.close();
    expect(farAnswer).toBe('set');
    expect(farShown).toBeGreaterThan(9.2e12); // clamped to the last time kept (2262), as ext4 clamps to its range
    const check = () => {
      const late = statSync(m!.at('d', 'late'));
      expect(late.size).toBe(12);
      expect(late.mtimeMs).toBeGreaterThanOrEqual(beforeLate - 5);
      expect(late.mode).toBe(0o100640);
      expect(statSync(m!.at('d', 'other')).mode).toBe(0o100604);
      expect(statSync(m!.at('d', 'other')).mtimeMs).toBe(1_300_000_000_000);
      expect(statSync(m!.at('d', 'moved')).mode).toBe(0o100606);
      expect(statSync(m!.at('d', 'moved')).mtimeMs).toBe(1_100_000_000_000);
      expect(statSync(m!.at('d', 'far')).mtimeMs, `far (its utimens: ${farAnswer})`).toBe(farShown);
    };
    check();
    const shown = new Map(names.map((name) => [name, shownOf(m!.at('d', name))]));
    const lateMtime = statSync(m.at('d', 'late')).mtimeMs;

    await m.unmount();
    const line = /held writes: .*; (\d+) chmod, chown and utimens of them answered in the binding/.exec(await m.log());
    expect(Number(line?.[1])).toBeGreaterThanOrEqual(300); // of 450 and more: a few files are JS's creates
    await m.mount();
    for (const name of names) {
      const { atime: _atime, ...after } = shownOf(m.at('d', name)); // a read may move atime (relatime)
      const { atime: _shownAtime, ...before } = shown.get(name)!;
      expect(after, `${name} after a remount`).toEqual(before);
      expect((await readFile(m.at('d', name))).equals(seededBytes(1 + ((Number(name.slice(1)) * 131) % 6000), 7000 + Number(name.slice(1)))), name).toBe(true);
    }
    check();
    expect(statSync(m.at('d', 'late')).mtimeMs).toBe(lateMtime);
    expect(await readFile(m.at('d', 'late'), 'utf8')).toBe('first second');
    await m.unmount();
    await run(process.execPath, [CLI, 'fsck', m.vault]);
  });
});

describe('closes', () => {
  it('close without a round trip to JS (sefs has no flush), and a written file is committed after its last close', async () => {
    m = await TestMount.create('ro-close', { env: { SEFS_TRACE_OPS: '1' } });
    for (let i = 0; i < 20; i++) await writeFile(m.at(`f${i}`), `file ${i}`);
    for (let i = 0; i < 20; i++) expect(await readFile(m.at(`f${i}`), 'utf8')).toBe(`file ${i}`);
    // A writer keeps its handle while a reader opens and closes the file: the reader's close commits nothing,
    // the writer's last close does.
    const writer = await open(m.at('shared'), 'w');
    await writer.write('first part, ');
    const reader = await open(m.at('shared'), 'r');
    expect(await reader.readFile('utf8')).toBe('first part, ');
    await reader.close();
    await writer.write('second part');
    await writer.close();
    await m.unmount();
    // No close reached the daemon's JS: not the 21 writers', not the 21 readers'.
    const log = await m.log();
    expect(log).toMatch(/op release: \d+ calls/);
    expect(log).not.toMatch(/op flush:/);
    await m.mount();
    expect(await readFile(m.at('shared'), 'utf8')).toBe('first part, second part');
    expect(await readFile(m.at('f7'), 'utf8')).toBe('file 7');
  });
});

function codeOfStat(path: string): string {
  try {
    lstatSync(path);
    return 'exists';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}
