/**
 * POSIX details pjdfstest checks, through real tools on a real mount: paths up to PATH_MAX on a vault whose own
 * path is long (its meta/ twin is longer than PATH_MAX: safe-fs walks it), the errno of a truncate far past the
 * size limit, and directory times that move only when the directory's names change.
 */
import { mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, disposeEachTest, fuseSuite, run, sh, sleep, TestMount } from './helpers.js';

fuseSuite();

disposeEachTest();

let m: TestMount | undefined;

const PATH_MAX = 4096;

/** A relative path of exactly `bytes` bytes: directories of 120-byte names, then a file name. */
function longPath(bytes: number): { dirs: string; file: string } {
  const parts: string[] = [];
  let used = 0;
  for (let i = 0; used + 121 + 20 < bytes; i++) {
    parts.push(`d${String(i).padStart(3, '0')}`.padEnd(120, 'a'));
    used += 121;
  }
  const dirs = parts.join('/');
  return { dirs, file: `${dirs}/${'f'.padEnd(bytes - dirs.length - 1, 'g')}` };
}

describe.each([false, true])('a path of PATH_MAX - 1 bytes on a vault whose own path is 1,500 bytes long (sealed: %s)', (sealed) => {
  let base: string | undefined;
  afterEach(async () => {
    await m?.dispose();
    m = undefined;
    // rm -rf, not fs.rm: paths below the vault are longer than PATH_MAX, and only an fts walk removes them.
    if (base) await run('rm', ['-rf', base]);
    base = undefined;
  });

  it('is created, written, read, stat-ed, renamed and removed, and survives a remount', async () => {
    // The mount point stays short (fusermount takes no path near PATH_MAX); the vault does not.
    base = await mkdtemp(join(tmpdir(), 'sefs-long-'));
    const vault = join(base, ...Array.from({ length: 7 }, (_, i) => `${i}`.padEnd(240, 'v')), 'vault');
    await mkdir(vault, { recursive: true });
    m = await TestMount.create('long', { vault, sealed });
    expect(Buffer.byteLength(m.vault)).toBeGreaterThan(1500);

    const { dirs, file } = longPath(PATH_MAX - 1);
    expect(Buffer.byteLength(file)).toBe(PATH_MAX - 1);
    // Relative to the mount (as pjdfstest does): an absolute path through it would pass PATH_MAX itself.
    const inMount = (script: string) => sh(script, { cwd: m!.mnt });
    await inMount(`mkdir -p '${dirs}' && printf 'deep content' > '${file}'`);
    expect((await inMount(`cat '${file}'`)).stdout).toBe('deep content');
    expect((await inMount(`stat -c '%s %F' '${file}'`)).stdout.trim()).toBe('12 regular file');

    // A rename in place, and one of a directory near the top that carries the whole deep tree.
    await inMount(`mv '${file}' '${dirs}/renamed' && test ! -e '${file}'`);
    const top = dirs.slice(0, dirs.indexOf('/'));
    await inMount(`mv '${top}' moved && cat 'moved/${dirs.slice(top.length + 1)}/renamed' >/dev/null`);
    await inMount(`mv moved '${top}' && mv '${dirs}/renamed' '${file}'`);

    // One byte more is PATH_MAX: the kernel's ENAMETOOLONG, before the mount is asked.
    const over = await inMount(`touch '${file}x' 2>&1 || true`);
    expect(over.stdout).toMatch(/File name too long/);

    // Remount: the daemon walks meta/ at startup (references of every entry), through the long paths too.
    await m.remount();
    expect((await inMount(`cat '${file}'`)).stdout).toBe('deep content');
    await m.unmount();
    const fsck = await run(process.execPath, [CLI, 'fsck', m.vault, ...m.unlock]);
    expect(fsck.stdout).not.toMatch(/damaged|error/i);
    await m.mount();

    await inMount(`rm -rf '${top}' && test -z "$(ls -A)"`);
  });
});

describe.each([false, true])('a name of 256 bytes (sealed: %s)', (sealed) => {
  it('is ENAMETOOLONG for every call that names it, a rename to it included, and the daemon keeps serving', async () => {
    m = await TestMount.create('name-max', { sealed });
    await sh(`printf data > '${m.at('f')}' && mkdir '${m.at('d')}'`);
    // Each call through python, which reports the errno by name.
    const script = `
import errno, os, sys
os.chdir(sys.argv[1])
long = 'n' * 256
calls = {
  'create': lambda: os.open(long, os.O_CREAT | os.O_WRONLY, 0o644),
  'mkdir': lambda: os.mkdir(long),
  'symlink': lambda: os.symlink('f', long),
  'rename to': lambda: os.rename('f', long),
  'rename from': lambda: os.rename(long, 'g'),
  'stat': lambda: os.stat(long),
  'stat below': lambda: os.stat('d/' + long),
  'chmod': lambda: os.chmod(long, 0o600),
  'unlink': lambda: os.unlink(long),
}
for name, call in calls.items():
    try:
        call()
        print(name, 'OK')
    except OSError as e:
        print(name, errno.errorcode[e.errno])
`;
    const { stdout } = await run('python3', ['-c', script, m.mnt]);
    expect(stdout.trim().split('\n')).toEqual(['create', 'mkdir', 'symlink', 'rename to', 'rename from', 'stat', 'stat below', 'chmod', 'unlink'].map((c) => `${c} ENAMETOOLONG`));
    expect((await sh(`cat '${m.at('f')}'`)).stdout).toBe('data');
  });
});

describe('truncate far past the size limit (pjdfstest truncate/12)', () => {
  it('is EFBIG, leaves the file as it was, and the daemon keeps answering', async () => {
    m = await TestMount.create('truncate-huge');
    const f = m.at('f');
    await sh(`printf abc > '${f}'`);
    const truncated = await sh(`truncate -s 999999999999999 '${f}' 2>&1 || true`);
    expect(truncated.stdout).toMatch(/File too large/);
    // ftruncate of an open file: the same answer.
    const opened = await run('python3', ['-c', `import os\nfd = os.open('${f}', os.O_RDWR)\ntry:\n    os.ftruncate(fd, 999999999999999)\nexcept OSError as e:\n    print(e.errno == 27)`]);
    expect(opened.stdout.trim()).toBe('True');
    expect((await stat(f)).size).toBe(3);
    expect((await sh(`cat '${f}'`)).stdout).toBe('abc');
  });
});

describe('directory times', () => {
  it.each([false, true])("stay put when files inside are written and committed, also after the attribute cache expires and a remount (sealed: %s)", async (sealed) => {
    m = await TestMount.create('dir-times', { sealed });
    const d = m.at('d');
    // A long name too: in a sealed vault it is stored in a side file beside its hashed form.
    const files = [`${d}/f`, `${d}/${'long'.padEnd(200, 'n')}`];
    await sh(`mkdir '${d}' && for f in ${files.map((f) => `'${f}'`).join(' ')}; do printf one > "$f"; done && sync && touch -d '2000-01-01 00:00:00' '${d}'`);
    const before = await stat(d);
    // Appends commit on close (a temp entry renamed over the file's in meta/), a new content and a truncate too.
    await sh(`for f in ${files.map((f) => `'${f}'`).join(' ')}; do printf more >> "$f" && printf x > "$f" && truncate -s 10 "$f"; done && sync`);
    await sleep(2_000); // past attr_timeout: the kernel asks again
    const after = await stat(d);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.ctimeMs).toBe(before.ctimeMs);
    await m.remount();
    expect((await stat(d)).mtimeMs).toBe(before.mtimeMs);
    // A change of its names moves it.
    await sh(`touch '${d}/g'`);
    expect((await stat(d)).mtimeMs).toBeGreaterThan(before.mtimeMs);
  });

  it('after cp -a of a tree of files, every directory has its source mtime', async () => {
    m = await TestMount.create('cp-a-times');
    const src = m.host('src');
    // Directories with files of every size class (inline, packed small, several chunks), times set after.
    await sh(`
      mkdir -p '${src}'
      for i in $(seq 1 12); do
        mkdir -p '${src}'/d$i/sub$i/deeper
        printf x > '${src}'/d$i/tiny
        head -c $((i * 1000)) /dev/urandom > '${src}'/d$i/sub$i/small
        head -c $((i * 300000)) /dev/urandom > '${src}'/d$i/sub$i/deeper/large
        touch -d "2001-02-0$((i % 9 + 1)) 04:05:06" '${src}'/d$i/sub$i/deeper '${src}'/d$i/sub$i '${src}'/d$i
      done
      touch -d '1999-12-31 23:59:59' '${src}'`);
    await sh(`cp -a '${src}' '${m.at('copy')}' && sync`);
    await sleep(2_000);
    const listing = (root: string) => sh(`cd '${root}' && find . -type d -printf '%p %T@\\n' | sort`);
    expect((await listing(m.at('copy'))).stdout).toBe((await listing(src)).stdout);
    await m.remount();
    expect((await listing(m.at('copy'))).stdout).toBe((await listing(src)).stdout);
  });
});
