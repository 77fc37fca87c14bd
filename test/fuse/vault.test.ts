/**
 * What the vault behind a mount does: identical content is stored once, a mount killed with -9 comes back
 * with every committed file intact, and damage (a missing or corrupt chunk, a corrupt metadata file) is
 * EIO on exactly the reads it affects, with a log line naming the chunk, never wrong bytes.
 */
import { spawn } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkSpans } from '../../src/core/layout.js';
import { READ_AHEAD_KB, readAheadFile } from '../../src/fs/kernel-options.js';
import { hashPieces } from '../../src/core/pieces.js';
import { type MetaEntry, decodeEntry, encodeEntry } from '../../src/vault/meta-entry.js';
import { CLI, codeOf, disposeEachTest, fsyncFile, fuseSuite, isMounted, KiB, MiB, run, seededBytes, sha256, sha256File, TestMount, writeFileSynced } from './helpers.js';

fuseSuite();

disposeEachTest();

let m: TestMount | undefined;

async function pread(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

/** The chunk names (hex) of a committed file, in order, from its metadata file. */
async function chunksOf(mount: TestMount, name: string): Promise<string[]> {
  const entry = decodeEntry(await readFile(join(mount.vault, 'meta', name)));
  if (entry.kind !== 'map') throw new Error(`${name} has inline content`);
  return entry.dataMap.chunks.map((c) => c.dstHash.toString('hex'));
}

describe('dedup', () => {
  it('two identical 20 MiB files store their chunks once', async () => {
    m = await TestMount.create('dedup');
    const data = seededBytes(20 * MiB, 801);
    await writeFile(m.host('src.bin'), data);
    expect(await m.chunkNames()).toEqual([]);

    await run('cp', [m.host('src.bin'), m.at('first.bin')]);
    await fsyncFile(m.at('first.bin')); // its write-back commit, now
    const afterFirst = await m.chunkNames();
    expect(afterFirst.length).toBeGreaterThanOrEqual(20); // 20 chunks of 1 MiB
    expect(new Set(await chunksOf(m, 'first.bin'))).toEqual(new Set(afterFirst));

    // The same bytes again, written differently (dd with 64 KiB blocks, in another directory).
    await mkdir(m.at('elsewhere'));
    await run('dd', [`if=${m.host('src.bin')}`, `of=${m.at('elsewhere', 'second.bin')}`, 'bs=64K', 'conv=fsync', 'status=none']);
    expect(await m.chunkNames()).toEqual(afterFirst);
    expect(await chunksOf(m, 'elsewhere/second.bin')).toEqual(await chunksOf(m, 'first.bin'));

    await m.remount();
    expect(await sha256File(m.at('first.bin'))).toBe(sha256(data));
    expect(await sha256File(m.at('elsewhere', 'second.bin'))).toBe(sha256(data));
  });
});

describe('kill -9 of the mount daemon', () => {
  it('the next mount clears the stale mount and every committed file is intact', async () => {
    m = await TestMount.create('kill9');
    const files: Record<string, Buffer> = {
      'empty': Buffer.alloc(0),
      'two': Buffer.from('ab'),
      'small.txt': seededBytes(10 * KiB, 901),
      'dir/mid.bin': seededBytes(3 * MiB + 1, 902),
      'dir/sub/big.bin': seededBytes(20 * MiB, 903),
    };
    await mkdir(m.at('dir', 'sub'), { recursive: true });
    for (const [name, data] of Object.entries(files)) await writeFileSynced(m.at(name), data);
    await symlink('dir/mid.bin', m.at('link'));
    // A file rewritten in place and fsynced: its second version is the committed one.
    files['dir/mid.bin'] = Buffer.from(files['dir/mid.bin']!);
    files['dir/mid.bin'].write('rewritten', MiB);
    const fh0 = await open(m.at('dir/mid.bin'), 'r+');
    await fh0.write(Buffer.from('rewritten'), 0, 9, MiB);
    await fh0.sync();
    await fh0.close();
    // Rewritten and only closed just before the kill: its write-back may or may not have landed, so it
    // holds either version whole, never a mix.
    const before = seededBytes(200 * KiB, 905);
    const after = seededBytes(300 * KiB, 906);
    await writeFileSynced(m.at('closed-only.bin'), before);
    await writeFile(m.at('closed-only.bin'), after);

    // In flight at the kill: a file being written, never closed.
    const open1 = await open(m.at('in-flight.bin'), 'w');
    await open1.write(seededBytes(5 * MiB, 904));

    await m.kill9();
    expect(await isMounted(m.mnt)).toBe(true);
    expect(await codeOf(stat(m.mnt))).toBe('ENOTCONN');
    await open1.close().catch(() => {});

    await m.mount(); // must clear the stale mount on its own
    for (const [name, data] of Object.entries(files)) {
      expect((await stat(m.at(name))).size, name).toBe(data.length);
      expect(await sha256File(m.at(name)), name).toBe(sha256(data));
    }
    expect(sha256(await readFile(m.at('link')))).toBe(sha256(files['dir/mid.bin']));
    expect([sha256(before), sha256(after)]).toContain(sha256(await readFile(m.at('closed-only.bin'))));
    // The file in flight is there, readable (its content is whatever was committed: here, empty).
    expect(await codeOf(readFile(m.at('in-flight.bin')))).toBe('OK');
    expect(await m.log()).toMatch(/stale mount/);
    // And the mount works as before.
    await writeFile(m.at('after.txt'), 'after');
    await m.remount();
    expect(await readFile(m.at('after.txt'), 'utf8')).toBe('after');
  });
});

describe('kernel readahead', () => {
  it('is raised to READ_AHEAD_KB for the mount when the daemon may write sysfs (root)', async () => {
    m = await TestMount.create('readahead');
    const value = Number((await readFile(await readAheadFile(m.mnt), 'utf8')).trim());
    if (process.getuid?.() === 0) expect(value).toBe(READ_AHEAD_KB);
    else expect(value).toBeLessThanOrEqual(READ_AHEAD_KB); // others keep the kernel's default, and the mount works
    await writeFile(m.at('f'), 'x');
    expect(await readFile(m.at('f'), 'utf8')).toBe('x');
  });
});

describe('lifecycle', () => {
  it('sefs umount commits a file still open and written; so does SIGINT to a --foreground mount', async () => {
    m = await TestMount.create('lifecycle');
    const first = seededBytes(5 * MiB + 3, 951);
    const fh = await open(m.at('open-at-umount.bin'), 'w');
    await fh.write(first);
    await m.unmount(); // the handle is still open
    await fh.close().catch(() => {});
    await m.mount();
    expect(await sha256File(m.at('open-at-umount.bin'))).toBe(sha256(first));
    await m.unmount();

    // Foreground, as a child process: SIGINT commits and unmounts, and the process exits 0.
    const child = spawn(process.execPath, [CLI, 'mount', m.vault, m.mnt, '--foreground'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      for (let waited = 0; !/ mounted at /.test(stderr); waited += 50) {
        if (waited > 30_000 || child.exitCode !== null) throw new Error(`foreground mount did not come up: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = seededBytes(3 * MiB, 952);
      const fh2 = await open(m.at('open-at-sigint.bin'), 'w');
      await fh2.write(second);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      await fh2.close().catch(() => {});
      expect(await isMounted(m.mnt)).toBe(false);
      await m.mount();
      expect(await sha256File(m.at('open-at-sigint.bin'))).toBe(sha256(second));
      expect(await sha256File(m.at('open-at-umount.bin'))).toBe(sha256(first));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('damage', () => {
  const size = 8 * MiB + 5;

  it('a missing chunk and a corrupt chunk: EIO on the ranges they cover, the rest reads correctly, the log names the chunk', async () => {
    m = await TestMount.create('damage');
    const missing = seededBytes(size, 1001);
    const corrupt = seededBytes(size, 1002);
    await writeFile(m.at('missing.bin'), missing);
    await writeFile(m.at('corrupt.bin'), corrupt);
    await m.unmount();

    const spans = chunkSpans(size);
    const missingChunks = await chunksOf(m, 'missing.bin');
    const corruptChunks = await chunksOf(m, 'corrupt.bin');
    expect(missingChunks.length).toBe(spans.length);
    const lost = 3;
    const bad = 5;
    await rm(m.chunkPath(missingChunks[lost]!));
    const badPath = m.chunkPath(corruptChunks[bad]!);
    const bytes = await readFile(badPath);
    const flipped = Math.floor(bytes.length / 2);
    bytes[flipped]! ^= 0x10; // one bit
    await writeFile(badPath, bytes);
    await m.mount();

    // The corrupt chunk is random data, stored raw: a small cold read of it reads and checks only the 128 KiB
    // pieces it covers (core/pieces.ts), so only reads near the flipped bit see it. The missing one fails all.
    const nearFlip = (span: { start: number }, at: number, len: number) => Math.abs(at - span.start - flipped) < 256 * KiB || Math.abs(at + len - span.start - flipped) < 256 * KiB;
    for (const [name, data, damaged, hex, piecewise] of [
      ['missing.bin', missing, lost, missingChunks[lost]!, false],
      ['corrupt.bin', corrupt, bad, corruptChunks[bad]!, true],
    ] as const) {
      const fh = await open(m.at(name), 'r');
      try {
        expect((await fh.stat()).size).toBe(size);
        const span = spans[damaged]!;
        // In the damaged chunk: EIO, at its start, at the damage, at its last byte, and straddling into it;
        // with piece reads, EIO only near the damage and exact bytes elsewhere.
        for (const at of [span.start, span.start + flipped - 2000, span.start + span.size - 1]) {
          if (!piecewise || nearFlip(span, at, 4 * KiB)) expect(await codeOf(pread(fh, at, 4 * KiB)), `${name} at ${at}`).toBe('EIO');
          else expect((await pread(fh, at, 4 * KiB)).equals(data.subarray(at, Math.min(size, at + 4 * KiB))), `${name} at ${at}`).toBe(true);
        }
        // Straddling into it: the kernel may first return the good bytes before it (a short read); the
        // read that reaches the damaged chunk fails.
        const head = await pread(fh, span.start - 100, 4 * KiB).catch((err: NodeJS.ErrnoException) => err.code ?? String(err));
        if (piecewise) expect(typeof head !== 'string' && head.equals(data.subarray(span.start - 100, span.start - 100 + 4 * KiB)), `${name} straddling`).toBe(true);
        else if (typeof head !== 'string') {
          expect(head.equals(data.subarray(span.start - 100, span.start - 100 + head.length)), `${name} straddling`).toBe(true);
          expect(head.length, `${name} straddling`).toBeLessThanOrEqual(100);
          expect(await codeOf(pread(fh, span.start - 100 + head.length, 4 * KiB)), `${name} straddling`).toBe('EIO');
        } else expect(head, `${name} straddling`).toBe('EIO');
        // Every other chunk reads back exactly, read in 128 KiB pieces.
        for (const s of spans) {
          if (s.index === damaged) continue;
          for (let at = s.start; at < s.start + s.size; at += 128 * KiB) {
            const len = Math.min(128 * KiB, s.start + s.size - at);
            const got = await pread(fh, at, len);
            if (!got.equals(data.subarray(at, at + len))) expect.fail(`${name}: wrong bytes at ${at} (chunk ${s.index})`);
          }
        }
      } finally {
        await fh.close();
      }
      // A whole-file read fails rather than returning wrong bytes.
      expect(await codeOf(readFile(m.at(name))), name).toBe('EIO');
      expect(await m.log()).toContain(hex);
    }
    // The mount is still healthy.
    await writeFile(m.at('fine.txt'), 'fine');
    expect(await readFile(m.at('fine.txt'), 'utf8')).toBe('fine');
  });

  it('the mount writes keyed piece tags (kind 5); an entry with SHA-256 piece hashes (kind 4) still reads piecewise and stays kind 4', async () => {
    m = await TestMount.create('piece-kinds');
    let data = seededBytes(6 * MiB + 77, 1010);
    await writeFile(m.at('a.bin'), data);
    await m.unmount();
    const entryPath = join(m.vault, 'meta', 'a.bin');
    const stored = await readFile(entryPath);
    expect(stored.readUInt8(5)).toBe(5);
    let entry = decodeEntry(stored) as MetaEntry & { kind: 'map' };
    const key = entry.pieces![0]!.key!;
    const spans = chunkSpans(data.length);
    // Every chunk of more than a piece has tags, all under the file's key.
    const pieced = spans.filter((sp) => sp.size > 128 * KiB).map((sp) => sp.index);
    expect(pieced.length).toBeGreaterThan(3);
    const tagged = () => pieced.every((i) => entry.pieces![i]?.key?.equals(key));
    expect(tagged()).toBe(true);
    // A write into chunk 2 re-encrypts chunks 2 to 4 under the same key; the entry stays kind 5.
    await m.mount();
    let fh = await open(m.at('a.bin'), 'r+');
    const first = seededBytes(4 * KiB, 1012);
    await fh.write(first, 0, first.length, spans[2]!.start + 500);
    await fh.close();
    data = Buffer.concat([data.subarray(0, spans[2]!.start + 500), first, data.subarray(spans[2]!.start + 500 + first.length)]);
    await m.unmount();
    expect((await readFile(entryPath)).readUInt8(5)).toBe(5);
    entry = decodeEntry(await readFile(entryPath)) as MetaEntry & { kind: 'map' };
    expect(tagged()).toBe(true);
    // As an older sefs wrote it: the same chunks with SHA-256 piece hashes.
    const names = await chunksOf(m, 'a.bin');
    entry.pieces = await Promise.all(entry.pieces!.map(async (p, i) => p && hashPieces(await readFile(m!.chunkPath(names[i]!)), p.plainAt)));
    await writeFile(entryPath, encodeEntry(entry));
    expect((await readFile(entryPath)).readUInt8(5)).toBe(4);
    // Damage piece 5 of chunk 3: a cold read there fails, one in its piece 1 is checked and exact.
    const chunk3 = m.chunkPath(names[3]!);
    const original = await readFile(chunk3);
    const damaged = Buffer.from(original);
    damaged[5 * 128 * KiB + 100]! ^= 1;
    await writeFile(chunk3, damaged);
    await m.mount();
    const start3 = spans[3]!.start;
    fh = await open(m.at('a.bin'), 'r');
    try {
      expect((await pread(fh, start3 + 128 * KiB + 10, 4 * KiB)).equals(data.subarray(start3 + 128 * KiB + 10, start3 + 132 * KiB + 10))).toBe(true);
      expect(await codeOf(pread(fh, start3 + 5 * 128 * KiB + 50, 4 * KiB))).toBe('EIO');
    } finally {
      await fh.close();
    }
    await m.unmount();
    await writeFile(chunk3, original);
    await m.mount();
    // A write into chunk 4 re-encrypts chunks 4 to 6: their new hashes are SHA-256 too, like the rest.
    const patch = seededBytes(4 * KiB, 1011);
    const at = spans[4]!.start + 1000;
    fh = await open(m.at('a.bin'), 'r+');
    await fh.write(patch, 0, patch.length, at);
    await fh.close();
    data = Buffer.concat([data.subarray(0, at), patch, data.subarray(at + patch.length)]);
    await m.unmount();
    const after = await readFile(entryPath);
    expect(after.readUInt8(5)).toBe(4);
    const rewritten = decodeEntry(after) as MetaEntry & { kind: 'map' };
    expect(pieced.every((i) => rewritten.pieces![i] !== undefined && rewritten.pieces![i]!.key === undefined)).toBe(true);
    await m.mount();
    expect(sha256(await readFile(m.at('a.bin')))).toBe(sha256(data));
  });

  it('a corrupt metadata file: EIO on stat and open, never wrong bytes; other files are unaffected', async () => {
    m = await TestMount.create('meta');
    const good = seededBytes(size, 1101);
    await writeFile(m.at('good.bin'), good);
    await writeFile(m.at('bad.bin'), seededBytes(size, 1102));
    await writeFile(m.at('bad-small.txt'), 'small file, one chunk layout');
    await m.unmount();

    for (const name of ['bad.bin', 'bad-small.txt']) {
      const metaPath = join(m.vault, 'meta', name);
      const meta = await readFile(metaPath);
      meta[Math.floor(meta.length / 2)]! ^= 0x01;
      await writeFile(metaPath, meta);
    }
    await m.mount();

    for (const name of ['bad.bin', 'bad-small.txt']) {
      expect(await codeOf(stat(m.at(name))), `stat ${name}`).toBe('EIO');
      expect(await codeOf(open(m.at(name), 'r').then((fh) => fh.close())), `open ${name}`).toBe('EIO');
      expect(await codeOf(readFile(m.at(name))), `read ${name}`).toBe('EIO');
      expect(await codeOf(open(m.at(name), fsc.O_RDWR).then((fh) => fh.close())), `open rw ${name}`).toBe('EIO');
    }
    // The directory still lists, and the good file reads.
    expect((await readdir(m.mnt)).sort()).toEqual(['bad-small.txt', 'bad.bin', 'good.bin']);
    expect(await sha256File(m.at('good.bin'))).toBe(sha256(good));
    expect(await m.log()).toMatch(/bad\.bin/);
  });
});
