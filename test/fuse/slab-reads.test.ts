/**
 * Reads the binding answers itself from the chunk cache's slab (fuse-native patch level 7, src/fs/slab-reads.ts).
 * Whoever answers, a read returns the file's content at that moment. Each case first has the binding answer
 * reads of a handle (the op trace at unmount counts its answers), then changes what those answers came from:
 * the file's content through another handle or its path, or the slots, reused by other files' chunks. The
 * page cache is dropped before each check, so every read reaches the daemon (the mount uses kernel_cache).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { open, type FileHandle } from 'node:fs/promises';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { disposeEachTest, fsyncFile, fuseSuite, KiB, MiB, seededBytes, TestMount } from './helpers.js';

fuseSuite();
disposeEachTest();

const dropPages = (): Promise<void> => writeFile('/proc/sys/vm/drop_caches', '1');

/** A mount whose daemon reports at unmount how many reads the binding answered. */
const traced = (name: string, mountArgs: string[] = [], env: Record<string, string> = {}): Promise<TestMount> =>
  TestMount.create(name, { env: { SEFS_TRACE_OPS: '1', ...env }, mountArgs });

/** Unmount, and the reads the binding answered (from the op trace in the log). */
async function answeredByBinding(m: TestMount): Promise<number> {
  await m.unmount();
  const line = /slab reads: (\d+) reads answered in the binding/.exec(await m.log());
  if (!line) throw new Error('the op trace printed no slab reads line');
  return Number(line[1]);
}

/** The whole file through `fh`, 128 KiB at a time (a sequential reader's requests), from offset 0. */
async function readAll(fh: FileHandle, size: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; ) {
    const { bytesRead } = await fh.read(out, at, Math.min(128 * KiB, size - at), at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return out;
}

/** A committed file of `size` random bytes (fsynced: no uncommitted change, so its reads may go to the binding). */
async function committedFile(path: string, size: number, seed: number): Promise<Buffer> {
  const data = seededBytes(size, seed);
  await writeFile(path, data);
  await fsyncFile(path);
  return data;
}

describe('reads answered from the slab', () => {
  it('a file read twice through one handle: the binding answers, byte for byte', async () => {
    const m = await traced('slab-twice');
    const path = m.at('f');
    const data = await committedFile(path, 6 * MiB + 123, 1);
    const fh = await open(path, 'r');
    try {
      for (let pass = 0; pass < 3; pass++) {
        await dropPages();
        expect((await readAll(fh, data.length)).equals(data), `pass ${pass}`).toBe(true);
      }
    } finally {
      await fh.close();
    }
    expect(await answeredByBinding(m)).toBeGreaterThan(0);
  });

  it('a write through another handle: the next read of the first handle shows it', async () => {
    const m = await traced('slab-write');
    const path = m.at('f');
    const model = await committedFile(path, 4 * MiB, 2);
    const reader = await open(path, 'r');
    try {
      await dropPages();
      expect((await readAll(reader, model.length)).equals(model)).toBe(true);
      await dropPages();
      expect((await readAll(reader, model.length)).equals(model)).toBe(true);
      // Inside a chunk the reader's handle was just answered from.
      const patch = Buffer.alloc(5000, 0x58);
      const writer = await open(path, 'r+');
      try {
        await writer.write(patch, 0, patch.length, MiB + 5);
        patch.copy(model, MiB + 5);
        await dropPages();
        const got = Buffer.alloc(256 * KiB);
        await reader.read(got, 0, got.length, MiB);
        expect(got.equals(model.subarray(MiB, MiB + got.length))).toBe(true);
      } finally {
        await writer.close();
      }
      await fsyncFile(path);
      await dropPages();
      expect((await readAll(reader, model.length)).equals(model)).toBe(true);
    } finally {
      await reader.close();
    }
    expect(await answeredByBinding(m)).toBeGreaterThan(0);
  });

  it('truncated and extended by its path: the handle reads zeros past the cut, not the old bytes', async () => {
    const m = await traced('slab-truncate');
    const path = m.at('f');
    const model = await committedFile(path, 4 * MiB, 3);
    const reader = await open(path, 'r');
    try {
      for (let pass = 0; pass < 2; pass++) {
        await dropPages();
        expect((await readAll(reader, model.length)).equals(model)).toBe(true);
      }
      const cut = MiB + 100;
      await truncate(path, cut);
      await truncate(path, model.length);
      model.fill(0, cut);
      await dropPages();
      const got = Buffer.alloc(512 * KiB);
      const { bytesRead } = await reader.read(got, 0, got.length, 2 * MiB);
      expect(bytesRead).toBe(got.length);
      expect(got.equals(model.subarray(2 * MiB, 2 * MiB + got.length))).toBe(true);
      await dropPages();
      expect((await readAll(reader, model.length)).equals(model)).toBe(true);
    } finally {
      await reader.close();
    }
  });

  it('small files opened for reading: the binding answers their reads, and a change through another handle or the path shows', async () => {
    const m = await traced('slab-small');
    const sizes = [1, 100, 4095, 4096, 4097, 20_000, 65_536];
    const files = await Promise.all(sizes.map(async (size, i) => ({ path: m.at(`s${i}`), data: await committedFile(m.at(`s${i}`), size, 20 + i) })));
    for (let pass = 0; pass < 2; pass++) {
      await dropPages();
      for (const { path, data } of files) expect((await readFile(path)).equals(data), `${path} pass ${pass}`).toBe(true);
    }
    // A reader holding a small file open, then changes it must see.
    const { path, data } = files[5]!;
    const model = Buffer.from(data);
    const reader = await open(path, 'r');
    try {
      const writer = await open(path, 'r+');
      try {
        await writer.write(Buffer.from('CHANGED'), 0, 7, 1000);
        Buffer.from('CHANGED').copy(model, 1000);
        await dropPages();
        expect((await readAll(reader, model.length)).equals(model)).toBe(true);
        // Grown past where the reader's copy ended: the reader reads the new end too.
        const tail = seededBytes(3000, 29);
        await writer.write(tail, 0, tail.length, model.length);
        const grown = Buffer.concat([model, tail]);
        await dropPages();
        expect((await readAll(reader, grown.length)).equals(grown)).toBe(true);
      } finally {
        await writer.close();
      }
    } finally {
      await reader.close();
    }
    const shrunk = await open(files[6]!.path, 'r');
    try {
      await truncate(files[6]!.path, 10_000);
      await dropPages();
      const got = Buffer.alloc(65_536);
      const { bytesRead } = await shrunk.read(got, 0, got.length, 0);
      expect(bytesRead).toBe(10_000);
      expect(got.subarray(0, 10_000).equals(files[6]!.data.subarray(0, 10_000))).toBe(true);
    } finally {
      await shrunk.close();
    }
    expect(await answeredByBinding(m)).toBeGreaterThanOrEqual(sizes.length * 2);
  });

  it('a small cache cycled through by several files: every handle reads its own file, also from reused slots', async () => {
    // 2 MiB of cache: two chunks stay cached, every other load reuses a slot another file's chunk had.
    const m = await traced('slab-slots', ['--cache-mb', '2']);
    const files: { data: Buffer; fh: FileHandle }[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const path = join(m.mnt, `f${i}`);
        files.push({ data: await committedFile(path, 3 * MiB + i * 4097, 10 + i), fh: await open(path, 'r') });
      }
      for (let round = 0; round < 4; round++) {
        for (const [i, { data, fh }] of files.entries()) {
          await dropPages();
          expect((await readAll(fh, data.length)).equals(data), `round ${round} file ${i}`).toBe(true);
        }
      }
    } finally {
      for (const { fh } of files) await fh.close();
    }
    expect(await answeredByBinding(m)).toBeGreaterThan(0);
  });

  it('several readers at once over a small cache: slots are reused while other replies from them are being written', async () => {
    // The binding's reply carries slab bytes straight to the kernel (patch level 13); a slot must not be given to
    // another chunk until the reply reading it is written. Four readers at once through 2 MiB of cache: every
    // chunk loaded takes the slot of one another reader may be answered from at that moment, and the binding
    // waits 3 ms before each such reply (a test hook), so a slot reused too early would show in the bytes.
    const m = await traced('slab-concurrent', ['--cache-mb', '2'], { SEFS_TEST_REPLY_DELAY_US: '3000' });
    const files: { data: Buffer; fh: FileHandle }[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const path = join(m.mnt, `c${i}`);
        files.push({ data: await committedFile(path, 6 * MiB + i * 8191, 40 + i), fh: await open(path, 'r') });
      }
      for (let round = 0; round < 3; round++) {
        await dropPages();
        const got = await Promise.all(files.map(({ data, fh }) => readAll(fh, data.length)));
        got.forEach((bytes, i) => expect(bytes.equals(files[i]!.data), `round ${round} file ${i}`).toBe(true));
      }
    } finally {
      for (const { fh } of files) await fh.close();
    }
    expect(await answeredByBinding(m)).toBeGreaterThan(0);
  });
});
