/**
 * POSIX nodes on a real mount, driven by real tools: stable inode numbers (use_ino) across stat calls,
 * commits, renames and remounts; hard links (ln, st_nlink, shared content, each name removable alone, across
 * commits and remounts); FIFOs, sockets and devices stored as entries (never as real nodes in the vault);
 * tar archives holding all of these extracted into the mount and compared with tar's own listing; fsck of
 * the vault afterwards.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, disposeAll, fuseSuite, requireTools, run, sh, sleep, TestMount } from './helpers.js';
import { ATTR_TIMEOUT_S } from '../../src/fs/kernel-options.js';

fuseSuite();
afterAll(disposeAll);

let m: TestMount | undefined;
afterEach(async () => {
  await m?.dispose();
  m = undefined;
});

/** `stat -c` of paths (inode, links, type, size, major:minor) as one line each. */
const statOf = async (...paths: string[]): Promise<string[]> => (await run('stat', ['-c', '%i %h %F %s %t:%T', ...paths])).stdout.trim().split('\n');
const inodeOf = async (path: string): Promise<string> => (await statOf(path))[0]!.split(' ')[0]!;

/** Every node below a vault's meta/ and links/ is a regular file, directory or symlink: nothing special lands there. */
function hostKinds(vault: string): Set<string> {
  const kinds = new Set<string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const st = lstatSync(join(dir, name));
      kinds.add(st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'special');
      if (st.isDirectory()) walk(join(dir, name));
    }
  };
  walk(join(vault, 'meta'));
  try {
    walk(join(vault, 'links'));
  } catch {
    // no hard link made yet
  }
  return kinds;
}

const fsckClean = async (vault: string): Promise<void> => {
  const r = await run(process.execPath, [CLI, 'fsck', vault]);
  expect(r.stdout + r.stderr).toMatch(/no damage/);
};

describe('inode numbers', () => {
  it('stay the same across stat calls, commits, renames and remounts, and differ between nodes', async () => {
    m = await TestMount.create('posix-ino');
    await sh(`cd ${m.mnt} && echo one > f && mkdir d && ln -s f s && echo two > d/g && mkfifo p`);
    const names = ['f', 'd', 's', 'd/g', 'p'];
    const first = await Promise.all(names.map((n) => inodeOf(m!.at(n))));
    expect(new Set(first).size).toBe(names.length);
    expect(await Promise.all(names.map((n) => inodeOf(m!.at(n))))).toEqual(first);
    // Commits replace the metadata file: the number stays.
    for (let i = 0; i < 3; i++) await sh(`cd ${m.mnt} && echo more${i} >> f && sync f`);
    expect(await inodeOf(m.at('f'))).toBe(first[0]);
    await sh(`cd ${m.mnt} && mv f f2 && mv d d2 && mv s s2 && mv f2 f && mv d2 d && mv s2 s`);
    expect(await Promise.all(names.map((n) => inodeOf(m!.at(n))))).toEqual(first);
    await m.remount();
    expect(await Promise.all(names.map((n) => inodeOf(m!.at(n))))).toEqual(first);
    // Node's stat (BigInt) agrees with stat(1): the kernel shows the daemon's number (use_ino).
    expect(String(lstatSync(m.at('d/g'), { bigint: true }).ino)).toBe(first[3]);
  });
});

describe('hard links', () => {
  it('share content and attributes, count names, survive commits and remounts, and go one name at a time', async () => {
    m = await TestMount.create('posix-links');
    await sh(`cd ${m.mnt} && printf hello > a && mkdir d && ln a b && ln a d/c`);
    // Each name is its own inode to the kernel (libfuse's high-level API): what it cached of one name is
    // fresh again after the attribute timeout.
    await sleep(ATTR_TIMEOUT_S * 1000 + 200);
    let s = await statOf(m.at('a'), m.at('b'), m.at('d/c'));
    expect(new Set(s.map((l) => l.split(' ')[0])).size).toBe(1);
    expect(s.map((l) => l.split(' ')[1])).toEqual(['3', '3', '3']);
    // A write by one name is the content of all; a chmod by one is the mode of all.
    await sh(`cd ${m.mnt} && printf ' world' >> b && chmod 600 d/c && sync b`);
    await sleep(ATTR_TIMEOUT_S * 1000 + 200);
    for (const n of ['a', 'b', 'd/c']) expect(await readFile(m.at(n), 'utf8')).toBe('hello world');
    expect((await run('stat', ['-c', '%a', m.at('a')])).stdout.trim()).toBe('600');
    // A bigger content (chunks in the store), committed through another name.
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    await writeFile(m.at('d/c'), big);
    await sleep(ATTR_TIMEOUT_S * 1000 + 200);
    expect((await readFile(m.at('a'))).equals(big)).toBe(true);
    await m.remount();
    s = await statOf(m.at('a'), m.at('b'), m.at('d/c'));
    expect(s.every((l) => l.startsWith(`${s[0]!.split(' ')[0]} 3 regular file ${big.length}`))).toBe(true);
    expect((await readFile(m.at('b'))).equals(big)).toBe(true);
    await sh(`cd ${m.mnt} && rm a`);
    await sleep(ATTR_TIMEOUT_S * 1000 + 200);
    expect((await statOf(m.at('b')))[0]!.split(' ')[1]).toBe('2');
    await sh(`cd ${m.mnt} && mv b d/c`); // a rename onto another name of the same file changes nothing
    expect((await readFile(m.at('d/c'))).equals(big)).toBe(true);
    await sh(`cd ${m.mnt} && rm b d/c`);
    await m.unmount();
    // The last name took the record and its chunks along.
    expect(readdirSync(join(m.vault, 'links'))).toEqual([]);
    await fsckClean(m.vault);
    const gc = await run(process.execPath, [CLI, 'gc', m.vault]);
    expect(gc.stdout + gc.stderr).toMatch(/ 0 (chunks|B)/);
  });

  it('a file open by one name keeps its changes when that name is removed and another is left', async () => {
    m = await TestMount.create('posix-links-open');
    await sh(`cd ${m.mnt} && printf one > a && ln a b`);
    await run('python3', ['-c', `import os\nfd = os.open('${m.at('a')}', os.O_WRONLY | os.O_APPEND)\nos.unlink('${m.at('a')}')\nos.write(fd, b' two')\nos.close(fd)`]);
    await m.remount();
    expect(await readFile(m.at('b'), 'utf8')).toBe('one two');
    expect((await statOf(m.at('b')))[0]!.split(' ')[1]).toBe('1');
  });
});

describe('special nodes', () => {
  it('FIFOs, sockets and devices are entries with their type and rdev; a FIFO carries data through the kernel', async () => {
    m = await TestMount.create('posix-special');
    await sh(`cd ${m.mnt} && mkfifo -m 640 p && mknod c c 1 3 && mknod b b 7 0 && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('${m.at('sock')}')"`);
    const s = await statOf(m.at('p'), m.at('c'), m.at('b'), m.at('sock'));
    expect(s.map((l) => l.split(' ').slice(2).join(' '))).toEqual(['fifo 0 0:0', 'character special file 0 1:3', 'block special file 0 7:0', 'socket 0 0:0']);
    expect((await run('stat', ['-c', '%a', m.at('p')])).stdout.trim()).toBe('640');
    // Reader and writer meet in the kernel's pipe: the daemon never sees the data.
    const out = await sh(`cd ${m.mnt} && (echo through-the-fifo > p &) && cat p`);
    expect(out.stdout.trim()).toBe('through-the-fifo');
    // The mount is nodev (as libfuse and gocryptfs mount by default): a device in a vault, which may be
    // untrusted ground, opens nothing.
    await expect(sh(`echo x > ${m.at('c')}`)).rejects.toThrow(/Permission denied/);
    await m.remount();
    expect(await statOf(m.at('p'), m.at('c'))).toEqual(s.slice(0, 2));
    expect(hostKinds(m.vault).has('special')).toBe(false);
    await fsckClean(m.vault);
  });
});

describe('tar', () => {
  it('extracts hard links, FIFOs and devices into the mount as tar lists them', async () => {
    requireTools('tar');
    m = await TestMount.create('posix-tar');
    const src = join(m.work, 'src');
    await sh(`mkdir -p ${src}/d && cd ${src} && printf data > f && ln f d/hard && mkfifo fifo && mknod chr c 1 5 && mknod blk b 8 1 && ln -s f sym && seq 1 100000 > big && ln big big2`);
    await sh(`cd ${src} && tar --sort=name --numeric-owner -cf ${m.work}/a.tar .`);
    await sh(`cd ${m.mnt} && tar --numeric-owner -xpf ${m.work}/a.tar`);
    await sleep(ATTR_TIMEOUT_S * 1000 + 200); // see 'hard links' above
    // Archived again from the mount, tar lists the same members (hard links as links, types, modes, devices).
    await sh(`cd ${m.mnt} && tar --sort=name --numeric-owner -cf ${m.work}/b.tar .`);
    const listing = async (tarball: string): Promise<string> =>
      (await run('tar', ['--numeric-owner', '-tvf', tarball])).stdout
        .split('\n')
        .map((l) => l.replace(/\d{4}-\d\d-\d\d \d\d:\d\d/, ''))
        .sort()
        .join('\n');
    const [a, b] = [await listing(join(m.work, 'a.tar')), await listing(join(m.work, 'b.tar'))];
    expect(b).toBe(a);
    expect(b).toMatch(/link to/);
    await m.remount();
    await sh(`cd ${m.mnt} && tar --sort=name --numeric-owner -cf ${m.work}/c.tar .`);
    expect(await listing(join(m.work, 'c.tar'))).toBe(a);
    await sh(`cmp ${src}/big ${m.mnt}/big2`);
    await fsckClean(m.vault);
  });
});
