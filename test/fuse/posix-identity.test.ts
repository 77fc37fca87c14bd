/**
 * Who owns what, and exact times, on a real mount with --allow-other (the kernel's allow_other and
 * default_permissions), as root: a second user (made here with useradd) creates files that are theirs, reads
 * what the mode bits allow and is refused the rest; modes are exactly what the caller asked for (no daemon
 * umask); the root directory keeps its own mode and owner over a remount. Times: nanoseconds, before 1970 and
 * in 2200, exact through touch and stat and over a remount; ctime moves at once on truncate. A directory holding
 * a file that a process still reads is removed with rm -rf: no .fuse_hidden name, the reader reads on.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLI, disposeAll, fuseSuite, run, seededBytes, sh, sha256, sleep, TestMount } from './helpers.js';

fuseSuite();

const OTHER = 'sefs-other';
let otherUid = 0;
let otherGid = 0;
let madeUser = false;
let m: TestMount;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('posix-identity tests run as root (they add a user and mount with allow_other)');
  const known = await run('id', ['-u', OTHER]).then(
    () => true,
    () => false,
  );
  if (!known) {
    await run('useradd', ['--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', OTHER]);
    madeUser = true;
  }
  otherUid = Number((await run('id', ['-u', OTHER])).stdout.trim());
  otherGid = Number((await run('id', ['-g', OTHER])).stdout.trim());
  m = await TestMount.create('identity', { mountArgs: ['--allow-other'] });
  // The other user must be able to walk to the mount point (mkdtemp made its directory 0700).
  await chmod(m.dir, 0o711);
});
beforeEach(() => m.ensureMounted());
afterAll(async () => {
  try {
    await disposeAll();
  } finally {
    if (madeUser) await run('userdel', [OTHER]);
  }
});

/** Run a bash script as the other user (umask 022 unless the script sets one); its result, never a throw. */
function asOther(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('setpriv', [`--reuid=${otherUid}`, `--regid=${otherGid}`, '--clear-groups', 'bash', '-c', `umask 022\n${script}`], {
      cwd: m.mnt,
      env: { PATH: process.env.PATH, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('--allow-other: a second user', () => {
  it('creates files, directories and symlinks that are owned by them, also after a commit and a remount', async () => {
    await mkdir(m.at('shared'));
    await chmod(m.at('shared'), 0o777);
    const made = await asOther('cd shared && echo mine > file && mkdir dir && ln -s file link && mkdir -p dir/sub && echo deep > dir/sub/f');
    expect(made, made.stderr).toMatchObject({ code: 0 });
    for (const name of ['file', 'dir', 'link', 'dir/sub', 'dir/sub/f']) {
      const st = await lstat(m.at('shared', name));
      expect([name, st.uid, st.gid]).toEqual([name, otherUid, otherGid]);
    }
    await m.remount();
    for (const name of ['file', 'dir', 'link', 'dir/sub/f']) {
      const st = await lstat(m.at('shared', name));
      expect([name, st.uid, st.gid]).toEqual([name, otherUid, otherGid]);
    }
    expect((await asOther('cat shared/file')).stdout).toBe('mine\n');
  });

  it('reads what the mode bits allow and is refused the rest (EACCES), as root is not', async () => {
    await mkdir(m.at('modes'));
    await writeFile(m.at('modes', 'public'), 'for all\n', { mode: 0o644 });
    await writeFile(m.at('modes', 'private'), 'root only\n', { mode: 0o600 });
    await chmod(m.at('modes', 'private'), 0o600);
    expect((await asOther('cat modes/public')).stdout).toBe('for all\n');
    const refusedRead = await asOther('cat modes/private');
    expect(refusedRead.code).not.toBe(0);
    expect(refusedRead.stderr).toMatch(/Permission denied/);
    // A directory that is not theirs (0755 root) takes no new name from them, and its files no writes.
    const refusedCreate = await asOther('echo x > modes/new');
    expect(refusedCreate.stderr).toMatch(/Permission denied/);
    const refusedWrite = await asOther('echo x >> modes/public');
    expect(refusedWrite.stderr).toMatch(/Permission denied/);
    expect(await readdir(m.at('modes'))).toEqual(['private', 'public']);
    // chmod of a file that is not theirs: EPERM; of their own: fine.
    const refusedChmod = await asOther('chmod 777 modes/public');
    expect(refusedChmod.stderr).toMatch(/Operation not permitted/);
  });

  it('gets exactly the mode asked for: umask 0 and mkdir 0777 give 0777, the umask applies once', async () => {
    await mkdir(m.at('umask'));
    await chmod(m.at('umask'), 0o777);
    const made = await asOther('cd umask && (umask 0; mkdir -m 0777 open; mkdir plain0; touch f0) && mkdir plain022 && touch f022 && mkdir -m 1777 sticky');
    expect(made, made.stderr).toMatchObject({ code: 0 });
    const mode = async (name: string) => ((await lstat(m.at('umask', name))).mode & 0o7777).toString(8);
    expect(await mode('open')).toBe('777');
    expect(await mode('plain0')).toBe('777');
    expect(await mode('f0')).toBe('666');
    expect(await mode('plain022')).toBe('755');
    expect(await mode('f022')).toBe('644');
    expect(await mode('sticky')).toBe('1777');
    // Root's own mkdir too (the daemon's umask, 022 in the test runner's environment or not, never applies).
    await sh(`umask 0; mkdir -m 0777 ${m.at('umask', 'by-root')}`);
    expect(await mode('by-root')).toBe('777');
  });

  it('in a setgid directory a new node gets the directory group, and a new directory the setgid bit', async () => {
    await mkdir(m.at('sgid'));
    await chown(m.at('sgid'), 0, 0);
    await chmod(m.at('sgid'), 0o2777);
    const made = await asOther('cd sgid && touch f && mkdir d');
    expect(made, made.stderr).toMatchObject({ code: 0 });
    const f = await lstat(m.at('sgid', 'f'));
    const d = await lstat(m.at('sgid', 'd'));
    expect([f.uid, f.gid]).toEqual([otherUid, 0]);
    expect([d.uid, d.gid, (d.mode & 0o7777).toString(8)]).toEqual([otherUid, 0, '2755']);
  });
});

describe('the mount root', () => {
  it('has its own mode and owner (not meta/s 0700); chmod and chown of it persist over a remount', async () => {
    const before = await stat(m.mnt);
    expect((before.mode & 0o7777).toString(8)).toBe('755');
    await chmod(m.mnt, 0o751);
    await chown(m.mnt, otherUid, otherGid);
    expect(await asOther('touch created-in-root && echo ok')).toMatchObject({ code: 0, stdout: 'ok\n' });
    await m.remount();
    const after = await stat(m.mnt);
    expect([(after.mode & 0o7777).toString(8), after.uid, after.gid]).toEqual(['751', otherUid, otherGid]);
    // meta/ itself stays private.
    expect(((await stat(`${m.vault}/meta`)).mode & 0o777).toString(8)).toBe('700');
    await chown(m.mnt, 0, 0);
    await chmod(m.mnt, 0o755);
    expect((await stat(m.mnt)).uid).toBe(0);
  });
});

/** A file's times as `stat` prints them, to the nanosecond. */
async function times(path: string): Promise<{ atime: string; mtime: string; ctime: string }> {
  const out = (await run('stat', ['-c', '%.9X %.9Y %.9Z', path])).stdout.trim().split(' ');
  return { atime: out[0]!, mtime: out[1]!, ctime: out[2]! };
}

describe('times', () => {
  it('keep their nanoseconds through touch -d and stat, over a commit and a remount', async () => {
    await mkdir(m.at('times'));
    const file = m.at('times', 'f');
    await writeFile(file, 'x');
    await run('touch', ['-d', '2001-02-03 04:05:06.123456789', file]);
    expect(await times(file)).toMatchObject({ atime: '981173106.123456789', mtime: '981173106.123456789' });
    await run('touch', ['-h', '-d', '2003-04-05 06:07:08.987654321', m.at('times')]);
    await sh(`ln -s f ${m.at('times', 'link')} && touch -h -d '1999-12-31 23:59:59.999999999' ${m.at('times', 'link')}`);
    await m.remount();
    expect(await times(file)).toMatchObject({ atime: '981173106.123456789', mtime: '981173106.123456789' });
    expect((await times(m.at('times', 'link'))).mtime).toBe('946684799.999999999');
    // The directory's own time: the link made in it since moved it, so set it again and read it back.
    await run('touch', ['-d', '2003-04-05 06:07:08.987654321', m.at('times')]);
    expect((await times(m.at('times'))).mtime).toBe('1049522828.987654321');
  });

  it('before 1970 and in 2200 are stored, not replaced by now', async () => {
    const file = m.at('times', 'old-and-new');
    await writeFile(file, 'x');
    await run('touch', ['-m', '-d', '1969-07-20 20:17:40.5', file]);
    await run('touch', ['-a', '-d', '2200-01-01 00:00:00.000000001', file]);
    const expected = { mtime: '-14182939.500000000', atime: '7258118400.000000001' };
    expect(await times(file)).toMatchObject(expected);
    await m.remount();
    expect(await times(file)).toMatchObject(expected);
    await run('touch', ['-d', '1901-12-13 20:45:52', file]);
    expect((await times(file)).mtime).toBe('-2147483648.000000000');
  });

  it('keep their nanoseconds in a sealed vault, where a rename seals the entry and the link again', async () => {
    const base = await mkdtemp(join(tmpdir(), 'sefs-identity-sealed-'));
    const pass = join(base, 'pass');
    await writeFile(pass, 'correct horse battery staple');
    const vault = join(base, 'vault');
    const mnt = join(base, 'mnt');
    await run(process.execPath, [CLI, 'init', vault, '--passphrase-file', pass, '--scrypt-log-n', '10']);
    const mount = () => run(process.execPath, [CLI, 'mount', vault, mnt, '--passphrase-file', pass]);
    await mount();
    try {
      await mkdir(join(mnt, 'd'));
      await writeFile(join(mnt, 'd', 'f'), 'sealed');
      await sh(`cd ${mnt}/d && ln -s f link && touch -d '2001-02-03 04:05:06.123456789' f && touch -h -d '1969-07-20 20:17:40.000000001' link`);
      await rename(join(mnt, 'd', 'f'), join(mnt, 'g'));
      await rename(join(mnt, 'd', 'link'), join(mnt, 'link2'));
      await run(process.execPath, [CLI, 'umount', mnt]);
      await mount();
      expect(await times(join(mnt, 'g'))).toMatchObject({ atime: '981173106.123456789', mtime: '981173106.123456789' });
      expect((await times(join(mnt, 'link2'))).mtime).toBe('-14182939.999999999');
    } finally {
      await run(process.execPath, [CLI, 'umount', mnt]).catch(() => run('fusermount', ['-uz', mnt]).catch(() => {}));
      await rm(base, { recursive: true, force: true });
    }
  });

  it('ctime moves at once on truncate, O_TRUNC, chmod and a write, as the kernel shows it', async () => {
    const file = m.at('times', 'ctime');
    await writeFile(file, seededBytes(10_000, 1));
    let last = (await times(file)).ctime;
    const moved = async (what: string, script: string) => {
      await sleep(20);
      await sh(script);
      const now = (await times(file)).ctime;
      expect(now > last, `${what}: ctime ${now} should be after ${last}`).toBe(true);
      last = now;
    };
    await moved('truncate', `truncate -s 5000 ${file}`);
    await moved('O_TRUNC', `: > ${file}`);
    await moved('chmod', `chmod 600 ${file}`);
    await moved('write', `echo more >> ${file}`);
    await moved('touch', `touch -d 2001-01-01 ${file}`);
  });
});

describe('rm -rf beside an open file', () => {
  it('removes the directory while a process still reads the file: no .fuse_hidden name, the reader reads on', async () => {
    const data = seededBytes(3 * 1024 * 1024 + 17, 77);
    await mkdir(m.at('gone'));
    await writeFile(m.at('gone', 'big'), data);
    await writeFile(m.at('gone', 'other'), 'x');
    // A reader that has the file open, reads a little, waits for a line on stdin, then reads the rest.
    const reader = spawn('python3', ['-c', 'import sys,os,hashlib\nf=open(sys.argv[1],"rb")\nh=hashlib.sha256(f.read(1000))\nprint("open",flush=True)\nsys.stdin.readline()\nh.update(f.read())\nprint(h.hexdigest(),f.tell(),flush=True)', m.at('gone', 'big')]);
    let out = '';
    reader.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !out.includes('open'); i++) await sleep(50);
    expect(out).toContain('open');
    await run('rm', ['-rf', m.at('gone')]);
    expect(await readdir(m.mnt)).not.toContain('gone');
    // Past the moment space reclamation looks at the removed entry's chunks: the open file still holds them.
    await sleep(3000);
    reader.stdin.end('go\n');
    await new Promise((res) => reader.on('close', res));
    const [, digest, size] = out.trim().split(/\s+/);
    expect(digest).toBe(sha256(data));
    expect(size).toBe(String(data.length));
    // Nothing was left in the vault for it.
    expect((await sh(`find ${m.vault}/meta -name '.fuse_hidden*' | wc -l`)).stdout.trim()).toBe('0');
  });

  it('an unlinked open file: fstat still works and says nlink 0, reads, writes, fchmod and futimens go on', async () => {
    await mkdir(m.at('unl'));
    const f = m.at('unl', 'f');
    const script = [
      'import os',
      `fd=os.open("${f}",os.O_CREAT|os.O_RDWR,0o644)`,
      'os.write(fd,b"Hello, World!")',
      `os.unlink("${f}")`,
      'st=os.fstat(fd)',
      'os.pwrite(fd,b"J",0)',
      `print(st.st_nlink,st.st_size,os.pread(fd,13,0).decode(),sorted(os.listdir("${m.at('unl')}")))`,
      'os.fchmod(fd,0o600)',
      'os.utime(fd,ns=(1,-1))',
      'st=os.fstat(fd)',
      'print(oct(st.st_mode),st.st_atime_ns,st.st_mtime_ns)',
    ].join('\n');
    const out = await run('python3', ['-c', script]);
    expect(out.stdout.trim().split('\n')).toEqual(['0 13 Jello, World! []', '0o100600 1 -1']);
    await run('rmdir', [m.at('unl')]);
  });
});
