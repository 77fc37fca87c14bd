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
import { describe, expect, it } from 'vitest';
import { CLI, disposeEachTest, fuseSuite, requireTools, run, sh, sleep, TestMount } from './helpers.js';
import { ATTR_TIMEOUT_S } from '../../src/fs/kernel-options.js';

fuseSuite();
disposeEachTest();

let m: TestMount | undefined;

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

const fsckClean = async (mount: TestMount): Promise<void> => {
  const r = await run(process.execPath, [CLI, 'fsck', mount.vault, ...mount.unlock]);
  expect(r.stdout + r.stderr).toMatch(/no damage/);
};

/** Python calls the tools do not make: os.setxattr with flags, and getxattr(2) into a buffer too small. */
const PY_XATTR = `
import ctypes, errno, os, sys
path = sys.argv[1]
def code(f):
    try:
        f()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
out = []
out.append(code(lambda: os.setxattr(path, 'user.c', b'1', os.XATTR_CREATE)))
out.append(code(lambda: os.setxattr(path, 'user.c', b'2', os.XATTR_CREATE)))
out.append(code(lambda: os.setxattr(path, 'user.r', b'1', os.XATTR_REPLACE)))
out.append(code(lambda: os.setxattr(path, 'user.c', b'22', os.XATTR_REPLACE)))
out.append(code(lambda: os.getxattr(path, 'user.none')))
out.append(code(lambda: os.removexattr(path, 'user.none')))
out.append(code(lambda: os.setxattr(path, 'user.' + 'n' * 251, b'')))
out.append(code(lambda: os.setxattr(path, 'user.' + 'n' * 250, b'')))
out.append(code(lambda: os.setxattr(path, 'user.big', b'v' * 65536)))
out.append(code(lambda: os.setxattr(path, 'user.huge', b'v' * 65537)))
out.append(code(lambda: os.setxattr(path, 'nonamespace', b'1')))
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(1)
n = libc.getxattr(path.encode(), b'user.c', buf, ctypes.c_size_t(1))
out.append(errno.errorcode[ctypes.get_errno()] if n < 0 else str(n))
out.append(str(libc.getxattr(path.encode(), b'user.c', None, ctypes.c_size_t(0))))
out.append(os.getxattr(path, 'user.c').decode())
print(' '.join(out))
`;

describe('inode numbers', () => {
  // Sealed, a rename writes a new host symlink (its target is sealed for its place): the number must not follow it.
  it.each([['a plain', false], ['a sealed', true]])('stay the same across stat calls, commits, renames and remounts, and differ between nodes, in %s vault', async (_, sealed) => {
    m = await TestMount.create('posix-ino', { sealed });
    await sh(`cd ${m.mnt} && echo one > f && mkdir d && ln -s f s && echo two > d/g && mkfifo p`);
    const names = ['f', 'd', 's', 'd/g', 'p'];
    const first = await Promise.all(names.map((n) => inodeOf(m!.at(n))));
    expect(new Set(first).size).toBe(names.length);
    expect(await Promise.all(names.map((n) => inodeOf(m!.at(n))))).toEqual(first);
    // Commits replace the metadata file: the number stays.
    for (let i = 0; i < 3; i++) await sh(`cd ${m.mnt} && echo more${i} >> f && sync f`);
    expect(await inodeOf(m.at('f'))).toBe(first[0]);
    await sh(`cd ${m.mnt} && mv f f2 && mv d d2 && mv s s2 && mv f2 f && mv d2 d && mv s2 s && mv s d/s && mv d/s s`);
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
    // rename(2) onto another name of the same file changes nothing (mv refuses to try).
    await run('python3', ['-c', `import os\nos.rename('${m.at('b')}', '${m.at('d/c')}')`]);
    expect((await statOf(m.at('b')))[0]!.split(' ')[1]).toBe('2');
    expect((await readFile(m.at('d/c'))).equals(big)).toBe(true);
    await sh(`cd ${m.mnt} && rm b d/c`);
    await m.unmount();
    // The last name took the record and its chunks along.
    expect(readdirSync(join(m.vault, 'links'))).toEqual([]);
    await fsckClean(m);
    const gc = await run(process.execPath, [CLI, 'gc', m.vault]);
    expect(gc.stdout + gc.stderr).toMatch(/ 0 (chunks|B)/);
  });

  it('a change through one name shows at once through the others (no wait for the attribute timeout)', async () => {
    m = await TestMount.create('posix-links-fresh');
    // One process, each step right after the last: well inside the kernel's 1 s of cached attributes, which
    // each name has apart (libfuse's high-level API); the binding has the kernel drop the other names'.
    const py = `
import os, sys
os.chdir(sys.argv[1])
def seen(name):
    st = os.lstat(name)
    return '%s:%d:%o:%d:%d' % (name, st.st_nlink, st.st_mode & 0o7777, st.st_size, st.st_mtime_ns)
out = []
with open('a', 'w') as f: f.write('x')
os.lstat('a')
os.link('a', 'b')
out.append(seen('a'))
os.link('a', 'c')
out.append(seen('c'))
os.unlink('b')
out.append(seen('c'))
os.link('a', 'd')
out.append(seen('c'))
os.chmod('a', 0o600)
out.append(seen('c'))
os.utime('d', ns=(10**18, 10**18))
out.append(seen('c'))
os.rename('d', 'e')
with open('e', 'r+') as f:
    f.write('longer')
    f.flush()
    os.fsync(f.fileno())
out.append(seen('c'))
open('z', 'w').close()
os.rename('z', 'c')
out.append(seen('e'))
print(' '.join(out))
`;
    const seen = (await run('python3', ['-c', py, m.mnt])).stdout.trim().split(' ');
    const [source, made, unlinked, linked, chmodded, touched, written, renamedOver] = seen.map((l) => l.split(':'));
    expect(source!.slice(0, 2)).toEqual(['a', '2']); // the source of a link
    expect(made!.slice(0, 3)).toEqual(['c', '3', '644']);
    expect(unlinked![1]).toBe('2');
    expect(linked![1]).toBe('3');
    expect(chmodded![2]).toBe('600');
    expect(touched![4]).toBe(String(10n ** 18n));
    expect(written![3]).toBe('6');
    expect(renamedOver!.slice(0, 2)).toEqual(['e', '2']);
  });

  it('of a symlink: one node with its names counted, changes through one shown at once by the others, across remounts; refused in a sealed vault', async () => {
    m = await TestMount.create('posix-links-symlink');
    // cp -al and rsync -H link symlinks as they link files. One process, each step right after the last (inside
    // the kernel's 1 s of cached attributes, which each name has apart).
    const py = `
import os, sys
os.chdir(sys.argv[1])
def seen(name):
    st = os.lstat(name)
    return '%s:%d:%d:%d:%d:%s' % (name, st.st_ino, st.st_nlink, st.st_uid, st.st_mtime_ns, os.readlink(name))
out = []
os.symlink('../target', 's')
os.lstat('s')
os.mkdir('d')
os.link('s', 'd/t', follow_symlinks=False)
out.append(seen('s'))
os.link('s', 'u', follow_symlinks=False)
out.append(seen('d/t'))
os.lchown('u', 1234, 1234)
out.append(seen('s'))
os.utime('s', ns=(10**18, 10**18), follow_symlinks=False)
out.append(seen('u'))
os.unlink('d/t')
out.append(seen('u'))
os.symlink('other', 'v')
os.rename('v', 'u')
out.append(seen('s'))
print(' '.join(out))
`;
    const seen = (await run('python3', ['-c', py, m.mnt])).stdout.trim().split(' ').map((l) => l.split(':'));
    const [linked, linkedAgain, chowned, touched, unlinked, renamedOver] = seen;
    const ino = linked![1];
    expect(linked!.slice(2)).toEqual(['2', '0', linked![4], '../target']);
    expect(linkedAgain!.slice(1, 3)).toEqual([ino, '3']);
    expect(chowned![3]).toBe('1234');
    expect(touched![4]).toBe(String(10n ** 18n));
    expect(unlinked!.slice(1, 3)).toEqual([ino, '2']);
    expect(renamedOver!.slice(1, 3)).toEqual([ino, '1']);
    await sh(`cd ${m.mnt} && ln -P s w`);
    await m.remount();
    const after = await statOf(m.at('s'), m.at('w'));
    expect(after.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([`${ino} 2 symbolic`, `${ino} 2 symbolic`]);
    expect((await run('readlink', [m.at('w')])).stdout.trim()).toBe('../target');
    await sh(`cd ${m.mnt} && rm s`);
    expect((await statOf(m.at('w')))[0]!.split(' ')[1]).toBe('1');
    await fsckClean(m);

    const sealed = await TestMount.create('posix-links-symlink-sealed', { sealed: true });
    await sh(`cd ${sealed.mnt} && ln -s target s`);
    const refused = await run('python3', ['-c', `import os\ntry:\n  os.link('${sealed.at('s')}', '${sealed.at('t')}', follow_symlinks=False)\nexcept OSError as e:\n  print(e.errno)`]);
    expect(refused.stdout.trim()).toBe('1'); // EPERM: a sealed symlink's target is sealed for its one name
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
    await fsckClean(m);
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
    await fsckClean(m);
  });
});

describe('extended attributes', () => {
  it('follow the kernel rules, are kept by commits, renames, links and remounts, sealed in a sealed vault', async () => {
    requireTools('setfattr', 'getfattr');
    m = await TestMount.create('posix-xattr', { sealed: true });
    await sh(`cd ${m.mnt} && echo one > f && setfattr -n user.a -v hello f && setfattr -n trusted.t -v secret-value f && setfattr -n security.s -v 0x00ff f`);
    const r = await run('python3', ['-c', PY_XATTR, m.at('f')]);
    expect(r.stdout.trim()).toBe('ok EEXIST ENODATA ok ENODATA ENODATA ERANGE ok ok E2BIG ENOTSUP ERANGE 2 22');
    // Commits (through another name too), a rename and a remount keep them.
    await sh(`cd ${m.mnt} && echo two >> f && sync f && ln f g && echo three >> g && sync g && mv f h && setfattr -x user.big h`);
    await m.remount();
    const dump = async (name: string): Promise<string> => (await run('getfattr', ['--absolute-names', '-d', '-m', '-', '-e', 'hex', m!.at(name)])).stdout.split('\n').slice(1).join('\n');
    const h = await dump('h');
    expect(h).toContain(`user.a=0x${Buffer.from('hello').toString('hex')}`);
    expect(h).toContain(`trusted.t=0x${Buffer.from('secret-value').toString('hex')}`);
    expect(h).toContain('security.s=0x00ff');
    expect(h).toContain('user.c=0x3232');
    expect(h).not.toContain('user.big');
    expect(await dump('g')).toBe(h);
    expect(await readFile(m.at('g'), 'utf8')).toBe('one\ntwo\nthree\n');
    // Sealed: no value is in the clear anywhere in the vault.
    expect((await run('grep', ['-rl', 'secret-value', m.vault]).catch(() => ({ stdout: '' }))).stdout).toBe('');
    // A directory keeps none: it lists none and refuses a set (native-notes/hard-links.md).
    await sh(`mkdir ${m.at('d')}`);
    expect((await run('getfattr', ['--absolute-names', '-d', m.at('d')])).stdout).toBe('');
    await expect(sh(`setfattr -n user.x -v 1 ${m.at('d')}`)).rejects.toThrow(/Operation not supported/);
    // File capabilities are never stored (nosuid mount); the binding answers their get without the JS thread.
    // A well-formed value (vfs_cap_data revision 2, cap_net_raw effective): the kernel refuses a malformed one itself.
    const capNetRaw = '0x0100000200200000000000000000000000000000';
    await expect(sh(`setfattr -n security.capability -v ${capNetRaw} ${m.at('h')}`)).rejects.toThrow(/Operation not supported/);
    await expect(sh(`getfattr -n security.capability ${m.at('h')}`)).rejects.toThrow(/No such attribute/);
    await expect(sh(`setfattr -n security.selinux -v system_u:object_r:user_home_t:s0 ${m.at('h')}`)).rejects.toThrow(/Operation not supported/);
    await expect(sh(`getfattr -n security.selinux ${m.at('h')}`)).rejects.toThrow(/No such attribute/);
    await fsckClean(m);
  });
});

describe('fallocate', () => {
  it('grows a file as a hole, keeps the size with -n, punches and zeroes ranges, refuses the rest', async () => {
    requireTools('fallocate');
    m = await TestMount.create('posix-fallocate');
    const size = (name: string): string[] => {
      const st = lstatSync(m!.at(name));
      return [String(st.size), String(st.blocks)];
    };
    await sh(`cd ${m.mnt} && fallocate -l 10M a`);
    expect(size('a')).toEqual([String(10 * 1024 * 1024), '0']);
    await sh(`cd ${m.mnt} && fallocate -n -l 20M a`);
    expect(size('a')[0]).toBe(String(10 * 1024 * 1024));
    const data = Buffer.alloc(5 * 1024 * 1024, 0x5a);
    await writeFile(m.at('b'), data);
    await sh(`cd ${m.mnt} && fallocate -p -o 1M -l 2M b && fallocate -z -o 4M -l 2M b`);
    const expected = Buffer.concat([data.subarray(0, 1024 * 1024), Buffer.alloc(2 * 1024 * 1024), data.subarray(3 * 1024 * 1024, 4 * 1024 * 1024), Buffer.alloc(2 * 1024 * 1024)]);
    await m.remount();
    expect((await readFile(m.at('b'))).equals(expected)).toBe(true);
    expect(Number(size('b')[1]) * 512).toBe(2 * 1024 * 1024); // the zeros are holes
    await expect(sh(`cd ${m.mnt} && fallocate -c -o 0 -l 1M b`)).rejects.toThrow(/Operation not supported/);
    await expect(sh(`cd ${m.mnt} && fallocate -i -o 0 -l 1M b`)).rejects.toThrow(/Operation not supported/);
    await fsckClean(m);
  });
});

describe('round trips', () => {
  /** A tree of every kind of node, with hard links and xattrs, made on a plain directory. */
  const makeSource = (src: string): Promise<unknown> =>
    sh(
      `mkdir -p ${src}/d/e && cd ${src} && printf data > f && ln f d/hard && mkfifo -m 600 fifo && mknod chr c 1 5 && mknod blk b 8 1 && ` +
        `ln -s f sym && seq 1 200000 > big && ln big d/e/big2 && setfattr -n user.k -v v1 f && setfattr -n trusted.t -v tt big && ` +
        `setfattr -n user.bin -v 0x$(head -c 3000 /dev/urandom | od -An -tx1 | tr -d ' \\n') d/e/big2 && touch -d 2001-02-03 d/e d`,
    );

  it('rsync -aHAX copies into the mount and back with no difference', async () => {
    requireTools('rsync', 'setfattr');
    m = await TestMount.create('posix-rsync');
    const src = join(m.work, 'src');
    await makeSource(src);
    await sh(`rsync -aHAX ${src}/ ${m.mnt}/dst/`);
    await m.remount();
    // Nothing left to do either way: same names, types, links, modes, times, devices and xattrs.
    expect((await sh(`rsync -aHAXn -i --delete ${src}/ ${m.mnt}/dst/`)).stdout).toBe('');
    await sh(`rsync -aHAX ${m.mnt}/dst/ ${m.work}/back/`);
    expect((await sh(`rsync -aHAXn -i --delete ${src}/ ${m.work}/back/`)).stdout).toBe('');
    const inodes = (await sh(`cd ${m.mnt}/dst && stat -c '%i %h' f d/hard big d/e/big2`)).stdout.trim().split('\n');
    expect(inodes[0]).toBe(inodes[1]);
    expect(inodes[2]).toBe(inodes[3]);
    expect(inodes[0]!.endsWith(' 2')).toBe(true);
    await fsckClean(m);
  });

  it('tar --xattrs extracts into the mount what tar lists and getfattr shows of the source', async () => {
    requireTools('tar', 'getfattr');
    m = await TestMount.create('posix-tar-xattrs');
    const src = join(m.work, 'src');
    await makeSource(src);
    await sh(`cd ${src} && tar --sort=name --xattrs --xattrs-include='*' --numeric-owner -cf ${m.work}/a.tar .`);
    await sh(`cd ${m.mnt} && tar --xattrs --xattrs-include='*' --numeric-owner -xpf ${m.work}/a.tar`);
    await m.remount();
    await sh(`cd ${m.mnt} && tar --sort=name --xattrs --xattrs-include='*' --numeric-owner -cf ${m.work}/b.tar .`);
    const listing = async (tarball: string): Promise<string> => (await run('tar', ['--xattrs', '--numeric-owner', '-tvvf', tarball])).stdout;
    expect(await listing(join(m.work, 'b.tar'))).toBe(await listing(join(m.work, 'a.tar')));
    const attrs = async (root: string): Promise<string> => (await sh(`cd ${root} && getfattr -R -d -m - -e hex . 2>/dev/null | sort`)).stdout;
    expect(await attrs(m.mnt)).toBe(await attrs(src));
    await fsckClean(m);
  });
});
