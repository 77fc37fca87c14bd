/**
 * File and namespace system calls on a real mount: pread at random offsets, pwrite, truncate, O_APPEND,
 * O_TRUNC, rename, unlink of an open file, the errors of mkdir/rmdir/unlink/open as a kernel filesystem
 * gives them, symlinks, chmod/utimes, and the errors of link(2). Content is checked in the same handle,
 * after reopening, and after a remount (then it comes from the vault, not the kernel's page cache).
 */
import { constants as fsc } from 'node:fs';
import {
  type FileHandle,
  chmod,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
  statfs,
  symlink,
  truncate,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { codeOf, disposeAll, fuseSuite, KiB, MiB, prng, seededBytes, sha256, sha256File, TestMount } from './helpers.js';

fuseSuite();

let m: TestMount;
beforeAll(async () => {
  m = await TestMount.create('syscalls');
});
beforeEach(() => m.ensureMounted());
afterAll(disposeAll);

/** Read `length` bytes at `position` through a handle (short only at the end of the file). */
async function pread(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

async function pwrite(fh: FileHandle, position: number, data: Buffer): Promise<void> {
  let done = 0;
  while (done < data.length) done += (await fh.write(data, done, data.length - done, position + done)).bytesWritten;
}

/** The whole file through a handle, and its size by fstat. */
async function readAll(fh: FileHandle): Promise<Buffer> {
  return pread(fh, 0, (await fh.stat()).size + 1);
}

describe('pread', () => {
  it('4 KiB at 1,000 random offsets of a 64 MiB file equal the source', async () => {
    const size = 64 * MiB;
    const src = seededBytes(size, 101);
    await writeFile(m.at('random-64M.bin'), src);
    await m.remount(); // read from the vault, not from pages the copy left in the kernel's cache
    const rand = prng(102);
    const offsets = Array.from({ length: 1000 }, (_, i) => {
      if (i < 20) return (1 + 3 * i) * MiB - [2048, 1, 0][i % 3]!; // straddling and at chunk boundaries
      if (i < 25) return size - 1 - i; // the tail: short reads
      return Math.floor(rand() * size);
    });
    const fh = await open(m.at('random-64M.bin'), 'r');
    try {
      expect((await fh.stat()).size).toBe(size);
      for (const off of offsets) {
        const got = await pread(fh, off, 4 * KiB);
        const want = src.subarray(off, Math.min(size, off + 4 * KiB));
        if (!got.equals(want)) expect.fail(`pread of 4 KiB at ${off}: ${got.length} bytes, sha256 ${sha256(got)} != ${sha256(want)}`);
      }
      expect((await pread(fh, size, 4 * KiB)).length).toBe(0); // at EOF
      expect((await pread(fh, size + MiB, 4 * KiB)).length).toBe(0); // past EOF
    } finally {
      await fh.close();
    }
  });

  it('a 4 KiB write in the middle of the 64 MiB file stores 3 new chunks (its own and the two keyed by it)', async () => {
    const path = m.at('random-64M.bin');
    const before = new Set(await m.chunkNames());
    const fh = await open(path, 'r+');
    const patch = seededBytes(4 * KiB, 103);
    try {
      await pwrite(fh, 30 * MiB + 100, patch);
      await fh.sync(); // durable now (a close alone is written back a moment later)
    } finally {
      await fh.close();
    }
    const added = (await m.chunkNames()).filter((n) => !before.has(n));
    expect(added.length).toBe(3);
    const want = seededBytes(64 * MiB, 101);
    patch.copy(want, 30 * MiB + 100);
    await m.remount();
    expect(await sha256File(path)).toBe(sha256(want));
  });
});

describe('pwrite', () => {
  /** Random writes (some past the end, leaving holes) into a file, mirrored in a model buffer. */
  async function randomWrites(path: string, initial: number, seed: number, count: number, maxLen: number): Promise<Buffer> {
    let model = seededBytes(initial, seed);
    await writeFile(path, model);
    const rand = prng(seed);
    const fh = await open(path, 'r+');
    try {
      for (let i = 0; i < count; i++) {
        const len = 1 + Math.floor(rand() * maxLen);
        // Mostly inside the file, sometimes past its end (a hole that must read as zeros).
        const pos = Math.floor(rand() * (model.length + (i % 10 === 9 ? 2 * MiB : 0)));
        const data = seededBytes(len, seed * 7919 + i);
        await pwrite(fh, pos, data);
        if (pos + len > model.length) model = Buffer.concat([model, Buffer.alloc(pos + len - model.length)]);
        data.copy(model, pos);
        if (i % 25 === 0) {
          // Read back a random window, in the same handle, before any commit.
          const at = Math.floor(rand() * model.length);
          expect((await pread(fh, at, 64 * KiB)).equals(model.subarray(at, at + 64 * KiB)), `window at ${at} after write ${i}`).toBe(true);
        }
      }
      const all = await readAll(fh);
      expect(all.length).toBe(model.length);
      expect(sha256(all)).toBe(sha256(model));
    } finally {
      await fh.close();
    }
    return model;
  }

  it('random writes into a large file read back in the same handle, after reopen and after a remount', async () => {
    const big = await randomWrites(m.at('pwrite-big.bin'), 10 * MiB + 123, 201, 200, 64 * KiB);
    const small = await randomWrites(m.at('pwrite-small.bin'), 100 * KiB, 202, 100, 8 * KiB);
    const tiny = await randomWrites(m.at('pwrite-tiny.bin'), 2, 203, 5, 3); // inline content, grows past 3 bytes
    // Over the mount's in-memory budget (32 blocks of 1 MiB per file): blocks are encrypted early, then rewritten.
    const budget = await randomWrites(m.at('pwrite-budget.bin'), 40 * MiB + 7, 204, 150, 256 * KiB);
    const files = { 'pwrite-big.bin': big, 'pwrite-small.bin': small, 'pwrite-tiny.bin': tiny, 'pwrite-budget.bin': budget };
    const expectFiles = async () => {
      for (const [name, model] of Object.entries(files)) {
        const got = await readFile(m.at(name));
        expect(got.length, name).toBe(model.length);
        expect(sha256(got), name).toBe(sha256(model));
      }
    };
    await expectFiles();
    await m.remount();
    await expectFiles();
  });

  it('two handles on one file see one content; truncate by path meets the open file', async () => {
    const path = m.at('two-handles.bin');
    const model = seededBytes(4 * MiB, 210);
    await writeFile(path, model);
    const a = await open(path, 'r+');
    const b = await open(path, 'r+');
    try {
      await pwrite(a, 3 * MiB - 10, Buffer.from('written through a'));
      Buffer.from('written through a').copy(model, 3 * MiB - 10);
      expect((await pread(b, 3 * MiB - 10, 17)).toString()).toBe('written through a');
      await a.close(); // commits; b goes on writing
      await pwrite(b, 4 * MiB, Buffer.from('b'));
      await truncate(path, 3 * MiB + 1); // by path, while b has uncommitted writes
      await pwrite(b, 3 * MiB + 5, Buffer.from('after'));
      expect((await b.stat()).size).toBe(3 * MiB + 10);
    } finally {
      await a.close().catch(() => {});
      await b.close();
    }
    const want = Buffer.concat([model.subarray(0, 3 * MiB + 1), Buffer.alloc(4), Buffer.from('after')]);
    expect(sha256(await readFile(path))).toBe(sha256(want));
    await m.remount();
    expect(sha256(await readFile(path))).toBe(sha256(want));
  });
});

describe('truncate', () => {
  it('down then up: shrunk content is gone, the extension reads as zeros; also across a remount', async () => {
    const src = seededBytes(5 * MiB + 7, 301);
    const path = m.at('trunc.bin');
    await writeFile(path, src);
    await truncate(path, 2 * MiB + 3);
    expect((await stat(path)).size).toBe(2 * MiB + 3);
    await truncate(path, 4 * MiB);
    const want = Buffer.concat([src.subarray(0, 2 * MiB + 3), Buffer.alloc(4 * MiB - (2 * MiB + 3))]);
    expect(sha256(await readFile(path))).toBe(sha256(want));

    // Same in one open handle, before anything is committed: ftruncate down, up, and a write past the old end.
    const fh = await open(path, 'r+');
    try {
      await fh.truncate(1000);
      await fh.truncate(3 * MiB + 5);
      await pwrite(fh, 3 * MiB, Buffer.from('tail'));
      const model = Buffer.concat([want.subarray(0, 1000), Buffer.alloc(3 * MiB + 5 - 1000)]);
      Buffer.from('tail').copy(model, 3 * MiB);
      expect(sha256(await readAll(fh))).toBe(sha256(model));
      await fh.close();
      expect(sha256(await readFile(path))).toBe(sha256(model));
      await m.remount();
      expect(sha256(await readFile(path))).toBe(sha256(model));
    } finally {
      await fh.close().catch(() => {});
    }

    // Down to the inline sizes and to zero, up again from zero.
    for (const size of [2, 0, 5]) {
      await truncate(path, size);
      expect(await readFile(path)).toEqual(size === 2 ? src.subarray(0, 2) : Buffer.alloc(size));
    }
  });
});

describe('O_APPEND and O_TRUNC', () => {
  it('appends go to the end of the file, across the 3 MiB layout change', async () => {
    const path = m.at('append.bin');
    const first = seededBytes(3 * MiB - 10, 401);
    await writeFile(path, first);
    const parts = [first];
    const fh = await open(path, 'a');
    try {
      for (let i = 0; i < 12; i++) {
        const part = seededBytes(100 * KiB + i, 402 + i);
        // The position is ignored under O_APPEND (Linux): every write lands at the end.
        await fh.write(part, 0, part.length, 0);
        parts.push(part);
      }
    } finally {
      await fh.close();
    }
    await writeFile(path, 'x', { flag: 'a' });
    parts.push(Buffer.from('x'));
    const want = Buffer.concat(parts);
    expect(sha256(await readFile(path))).toBe(sha256(want));
    await m.remount();
    expect(sha256(await readFile(path))).toBe(sha256(want));
  });

  it('O_TRUNC empties the file; what is written after it is all there is', async () => {
    const path = m.at('otrunc.bin');
    await writeFile(path, seededBytes(5 * MiB, 410));
    const reader = await open(path, 'r');
    try {
      const fh = await open(path, fsc.O_WRONLY | fsc.O_TRUNC);
      // Another handle sees the file empty at once.
      expect((await reader.stat()).size).toBe(0);
      await fh.write(Buffer.from('ten bytes!'));
      await fh.close();
      expect((await readFile(path)).toString()).toBe('ten bytes!');
      await writeFile(path, 'w'); // 'w' = O_CREAT | O_TRUNC | O_WRONLY
      expect((await readFile(path)).toString()).toBe('w');
      await (await open(path, fsc.O_RDWR | fsc.O_TRUNC)).close();
      expect((await stat(path)).size).toBe(0);
    } finally {
      await reader.close();
    }
    await m.remount();
    expect((await stat(path)).size).toBe(0);
  });
});

describe('rename', () => {
  it('over an existing file replaces it; an open handle on the old target keeps its content', async () => {
    const a = seededBytes(4 * MiB + 1, 501);
    const b = seededBytes(100 * KiB, 502);
    await writeFile(m.at('ren-a'), a);
    await writeFile(m.at('ren-b'), b);
    const oldB = await open(m.at('ren-b'), 'r');
    try {
      await rename(m.at('ren-a'), m.at('ren-b'));
      expect(await codeOf(stat(m.at('ren-a')))).toBe('ENOENT');
      expect(sha256(await readFile(m.at('ren-b')))).toBe(sha256(a));
      expect(sha256(await readAll(oldB))).toBe(sha256(b));
    } finally {
      await oldB.close();
    }
    await m.remount();
    expect(sha256(await readFile(m.at('ren-b')))).toBe(sha256(a));
    expect(await codeOf(stat(m.at('ren-a')))).toBe('ENOENT');
  });

  it('of a file being written: the rest of the writes and the commit land at the new name', async () => {
    const path = m.at('save.tmp');
    const fh = await open(path, 'w');
    const one = seededBytes(2 * MiB, 510);
    const two = seededBytes(2 * MiB, 511);
    try {
      await pwrite(fh, 0, one);
      await rename(path, m.at('saved'));
      await pwrite(fh, one.length, two);
    } finally {
      await fh.close();
    }
    expect(await codeOf(stat(path))).toBe('ENOENT');
    const want = sha256(Buffer.concat([one, two]));
    expect(sha256(await readFile(m.at('saved')))).toBe(want);
    await m.remount();
    expect(sha256(await readFile(m.at('saved')))).toBe(want);
  });

  it('of directories, with their content, and the errors of renaming over directories', async () => {
    await mkdir(m.at('d1', 'inner'), { recursive: true });
    const data = seededBytes(3 * MiB + 1, 520);
    await writeFile(m.at('d1', 'inner', 'f'), data);
    await writeFile(m.at('d1', 'g'), 'g');
    await rename(m.at('d1'), m.at('d2'));
    expect(await codeOf(stat(m.at('d1')))).toBe('ENOENT');
    expect(sha256(await readFile(m.at('d2', 'inner', 'f')))).toBe(sha256(data));

    await mkdir(m.at('empty'));
    await rename(m.at('d2'), m.at('empty')); // over an empty directory: allowed
    expect((await readdir(m.at('empty'))).sort()).toEqual(['g', 'inner']);

    await mkdir(m.at('full'));
    await writeFile(m.at('full', 'x'), 'x');
    await writeFile(m.at('plain-file'), 'p');
    expect(await codeOf(rename(m.at('empty'), m.at('full')))).toMatch(/^(ENOTEMPTY|EEXIST)$/);
    expect(await codeOf(rename(m.at('empty'), m.at('plain-file')))).toBe('ENOTDIR');
    expect(await codeOf(rename(m.at('plain-file'), m.at('full')))).toBe('EISDIR');
    expect(await codeOf(rename(m.at('empty'), m.at('empty', 'inner', 'below-itself')))).toBe('EINVAL');

    // A file open for writing in a directory that is renamed: its commit lands at the new path.
    await mkdir(m.at('moving'));
    const fh = await open(m.at('moving', 'f'), 'w');
    try {
      await pwrite(fh, 0, data);
      await rename(m.at('moving'), m.at('moved'));
      await pwrite(fh, data.length, Buffer.from('end'));
    } finally {
      await fh.close();
    }
    const movedWant = sha256(Buffer.concat([data, Buffer.from('end')]));
    expect(sha256(await readFile(m.at('moved', 'f')))).toBe(movedWant);

    await m.remount();
    expect(sha256(await readFile(m.at('empty', 'inner', 'f')))).toBe(sha256(data));
    expect(await readFile(m.at('empty', 'g'), 'utf8')).toBe('g');
    expect(await readFile(m.at('full', 'x'), 'utf8')).toBe('x');
    expect(sha256(await readFile(m.at('moved', 'f')))).toBe(movedWant);
    expect(await codeOf(stat(m.at('moving')))).toBe('ENOENT');
  });
});

describe('unlink of an open file', () => {
  it('keeps its content readable through the open handle until close', async () => {
    const dir = m.at('unlink-dir');
    await mkdir(dir);
    const data = seededBytes(6 * MiB + 5, 601);
    await writeFile(join(dir, 'victim'), data);
    await m.remount();
    const fh = await open(join(dir, 'victim'), 'r');
    try {
      expect((await pread(fh, 0, 10)).equals(data.subarray(0, 10))).toBe(true);
      await unlink(join(dir, 'victim'));
      expect(await codeOf(stat(join(dir, 'victim')))).toBe('ENOENT');
      expect((await readdir(dir)).filter((n) => n === 'victim')).toEqual([]);
      expect((await fh.stat()).size).toBe(data.length);
      expect(sha256(await readAll(fh))).toBe(sha256(data));
      // A new file under the same name is a different file.
      await writeFile(join(dir, 'victim'), 'new');
      expect(sha256(await readAll(fh))).toBe(sha256(data));
    } finally {
      await fh.close();
    }
    expect(await readFile(join(dir, 'victim'), 'utf8')).toBe('new');

    // Also with uncommitted writes in the unlinked file.
    const w = await open(join(dir, 'scratch'), 'w+');
    try {
      const scratch = seededBytes(2 * MiB + 9, 602);
      await pwrite(w, 0, scratch);
      await unlink(join(dir, 'scratch'));
      expect(sha256(await readAll(w))).toBe(sha256(scratch));
      await pwrite(w, 0, Buffer.from('still writable'));
      expect((await pread(w, 0, 14)).toString()).toBe('still writable');
    } finally {
      await w.close();
    }
    expect(await codeOf(stat(join(dir, 'scratch')))).toBe('ENOENT');
    await m.remount();
    expect(await readdir(dir)).toEqual(['victim']);
  });

  // libfuse renames an unlinked open file to .fuse_hidden*; sefs takes that rename as the unlink and keeps the
  // file in memory under that name (open-files.ts isHiddenName), so nothing shows and the directory can go.
  it('leaves no visible name behind, so the directory can be removed while the file is open', async () => {
    const dir = m.at('unlink-hidden');
    await mkdir(dir);
    await writeFile(join(dir, 'open-file'), seededBytes(100 * KiB, 603));
    const fh = await open(join(dir, 'open-file'), 'r');
    try {
      await unlink(join(dir, 'open-file'));
      expect(await readdir(dir)).toEqual([]);
      await rmdir(dir);
      expect(await codeOf(stat(dir))).toBe('ENOENT');
    } finally {
      await fh.close();
    }
  });
});

describe('errors as a kernel filesystem gives them', () => {
  /** Each case runs on the mount and on a plain directory of the host: both must give `code`. */
  const cases: [string, (root: string) => Promise<unknown>, string][] = [
    ['mkdir of an existing directory', (r) => mkdir(join(r, 'dir')), 'EEXIST'],
    ['mkdir over an existing file', (r) => mkdir(join(r, 'file')), 'EEXIST'],
    ['mkdir in a missing directory', (r) => mkdir(join(r, 'missing', 'x')), 'ENOENT'],
    ['mkdir below a file', (r) => mkdir(join(r, 'file', 'x')), 'ENOTDIR'],
    ['rmdir of a non-empty directory', (r) => rmdir(join(r, 'dir')), 'ENOTEMPTY'],
    ['rmdir of a missing directory', (r) => rmdir(join(r, 'missing')), 'ENOENT'],
    ['rmdir of a file', (r) => rmdir(join(r, 'file')), 'ENOTDIR'],
    ['unlink of a directory', (r) => unlink(join(r, 'dir')), 'EISDIR'],
    ['unlink of a missing file', (r) => unlink(join(r, 'missing')), 'ENOENT'],
    ['open of a directory for writing', (r) => open(join(r, 'dir'), 'r+').then((fh) => fh.close()), 'EISDIR'],
    ['open below a file', (r) => open(join(r, 'file', 'x'), 'r').then((fh) => fh.close()), 'ENOTDIR'],
    ['open of a missing file', (r) => open(join(r, 'missing'), 'r').then((fh) => fh.close()), 'ENOENT'],
    ['O_CREAT | O_EXCL of an existing file', (r) => open(join(r, 'file'), 'wx').then((fh) => fh.close()), 'EEXIST'],
    ['readdir of a file', (r) => readdir(join(r, 'file')), 'ENOTDIR'],
    ['readlink of a file', (r) => readlink(join(r, 'file')), 'EINVAL'],
    ['symlink over an existing name', (r) => symlink('x', join(r, 'file')), 'EEXIST'],
    ['truncate of a directory', (r) => truncate(join(r, 'dir'), 0), 'EISDIR'],
  ];

  async function prepare(root: string): Promise<void> {
    await mkdir(join(root, 'dir', 'child'), { recursive: true });
    await writeFile(join(root, 'file'), 'content');
  }

  it.each(cases)('%s', async (_name, op, code) => {
    const host = m.host(`errors-${code}-${Math.random().toString(36).slice(2)}`);
    const mounted = m.at(`errors-${code}-${Math.random().toString(36).slice(2)}`);
    await prepare(host);
    await prepare(mounted);
    expect(await codeOf(op(host)), 'the plain directory (the test itself)').toBe(code);
    expect(await codeOf(op(mounted)), 'the mount').toBe(code);
    // Nothing changed.
    expect((await readdir(mounted)).sort()).toEqual(['dir', 'file']);
    expect(await readdir(join(mounted, 'dir'))).toEqual(['child']);
    expect(await readFile(join(mounted, 'file'), 'utf8')).toBe('content');
  });
});

describe('symlinks, modes, times, hard links', () => {
  it('symlink and readlink, relative, absolute and dangling, across a remount', async () => {
    await writeFile(m.at('link-target.txt'), 'through the link');
    await symlink('link-target.txt', m.at('rel-link'));
    await symlink('/etc/hostname', m.at('abs-link'));
    await symlink('no/such/target', m.at('dangling-link'));
    const check = async () => {
      expect(await readlink(m.at('rel-link'))).toBe('link-target.txt');
      expect(await readlink(m.at('abs-link'))).toBe('/etc/hostname');
      expect(await readlink(m.at('dangling-link'))).toBe('no/such/target');
      expect((await lstat(m.at('rel-link'))).isSymbolicLink()).toBe(true);
      expect(await readFile(m.at('rel-link'), 'utf8')).toBe('through the link');
      expect(await codeOf(stat(m.at('dangling-link')))).toBe('ENOENT');
    };
    await check();
    await m.remount();
    await check();
  });

  it('chmod and utimes show in stat; the mtime set by utimes survives a remount', async () => {
    const path = m.at('times.bin');
    await writeFile(path, seededBytes(3 * MiB + 1, 701));
    await chmod(path, 0o640);
    await mkdir(m.at('mode-dir'));
    await chmod(m.at('mode-dir'), 0o711);
    const atime = new Date('2001-02-03T04:05:06.789Z');
    const mtime = new Date('2002-03-04T05:06:07.123Z');
    await utimes(path, atime, mtime);

    // utimes while the file has uncommitted writes (as cp -p / rsync might): the commit keeps the set time.
    const dirtyPath = m.at('times-dirty.bin');
    const dirty = await open(dirtyPath, 'w');
    try {
      await dirty.write(seededBytes(100 * KiB, 702));
      await utimes(dirtyPath, atime, mtime);
    } finally {
      await dirty.close();
    }

    const check = async () => {
      const st = await stat(path);
      expect(st.mode & 0o7777).toBe(0o640);
      expect(st.mtime.getTime()).toBe(mtime.getTime());
      expect(st.atime.getTime()).toBe(atime.getTime());
      expect((await stat(m.at('mode-dir'))).mode & 0o7777).toBe(0o711);
      expect((await stat(dirtyPath)).mtime.getTime()).toBe(mtime.getTime());
      expect((await stat(dirtyPath)).size).toBe(100 * KiB);
    };
    await check();
    await m.remount();
    await check();
    // stat does not touch atime: not even once the kernel's attribute cache (1 s) has expired and the mount has
    // read the metadata files (which must not update their atime on the host filesystem).
    await new Promise((r) => setTimeout(r, 1200));
    await check();
    // A later write moves the mtime to now.
    const before = Date.now();
    await writeFile(path, 'rewritten', { flag: 'r+' });
    expect((await stat(path)).mtimeMs).toBeGreaterThanOrEqual(before - 1000);
  });

  it('statfs answers with the sizes of the filesystem holding the vault', async () => {
    const st = await statfs(m.mnt);
    expect(st.bsize).toBeGreaterThan(0);
    expect(st.blocks).toBeGreaterThan(0);
    expect(st.bavail).toBeLessThanOrEqual(st.blocks);
  });

  it('link(2) errors as a kernel filesystem gives them (hard links themselves: posix-nodes.test.ts)', async () => {
    await writeFile(m.at('link-src'), 'x');
    await writeFile(m.at('link-taken'), 'y');
    await mkdir(m.at('link-dir'));
    expect(await codeOf(link(m.at('link-src'), m.at('link-taken')))).toBe('EEXIST');
    expect(await codeOf(link(m.at('link-missing'), m.at('link-dst')))).toBe('ENOENT');
    expect(await codeOf(link(m.at('link-dir'), m.at('link-dst')))).toBe('EPERM');
    expect(await codeOf(stat(m.at('link-dst')))).toBe('ENOENT');
    expect(await readFile(m.at('link-taken'), 'utf8')).toBe('y');
    await rm(m.at('link-src'));
    await rm(m.at('link-taken'));
    await rm(m.at('link-dir'), { recursive: true });
  });
});
