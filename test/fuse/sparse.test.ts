/**
 * Sparse and huge files through a real mount: `truncate -s 1T` is quick and cheap (holes are hashed and
 * encrypted once, never allocated per block), holes read as zeros, a write at the very end works, the file
 * survives a remount, du sees only what is stored, and past the 1 TiB limit the answer is EFBIG.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stat, writeFile } from 'node:fs/promises';
import { MAX_FILE_SIZE } from '../../src/fs/sequencer.js';
import { TestMount, disposeAll, fuseSuite, seededBytes, sh, sha256 } from './helpers.js';

fuseSuite();

const TiB = 2 ** 40;
/** The daemon's peak memory bar for a 1 TiB sparse file (a few hundred MB; measured about 430). */
const PEAK_RSS_BAR_MB = 600;

let m: TestMount;
beforeAll(async () => {
  m = await TestMount.create('sparse');
});
afterAll(() => disposeAll());

describe('a 1 TiB sparse file', () => {
  it('truncates in seconds, reads zeros in its holes, takes a write at its end, and survives a remount', async () => {
    expect(MAX_FILE_SIZE).toBe(TiB);
    const f = m.at('huge.img');
    const started = Date.now();
    await sh(`truncate -s 1T '${f}'`, { timeoutMs: 120_000 });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect((await stat(f)).size).toBe(TiB);
    // du: holes store nothing.
    expect((await stat(f)).blocks).toBe(0);

    const holeAt = async (mib: number) => (await sh(`dd if='${f}' bs=1M skip=${mib} count=1 status=none | tr -d '\\000' | wc -c`)).stdout.trim();
    for (const mib of [0, 1, 2, 524_288, 1_048_575]) expect(await holeAt(mib), `MiB ${mib}`).toBe('0');

    const tail = seededBytes(4096, 77);
    const tailFile = m.host('tail.bin');
    await writeFile(tailFile, tail);
    await sh(`dd if='${tailFile}' of='${f}' bs=4096 seek=${TiB / 4096 - 1} count=1 conv=notrunc status=none`, { timeoutMs: 120_000 });
    const readTail = async () => (await sh(`dd if='${f}' bs=4096 skip=${TiB / 4096 - 1} count=1 status=none | sha256sum`)).stdout.split(' ')[0];
    expect(await readTail()).toBe(sha256(tail));
    expect((await stat(f)).size).toBe(TiB);
    expect((await stat(f)).blocks).toBeLessThanOrEqual((2 * 1024 * 1024) / 512); // one 1 MiB chunk holds data

    const peak = await m.peakRssMb();
    process.stderr.write(`[sparse] daemon peak RSS with a 1 TiB sparse file: ${peak.toFixed(0)} MB\n`);
    expect(peak).toBeLessThan(PEAK_RSS_BAR_MB);
    // The whole vault stays small: one chunk per distinct hole context, the tail's chunks, a small entry.
    expect(await m.chunkBytes()).toBeLessThan(8 * 1024 * 1024);

    await m.remount();
    expect((await stat(f)).size).toBe(TiB);
    expect(await readTail()).toBe(sha256(tail));
    expect(await holeAt(700_000)).toBe('0');
    expect(await m.peakRssMb()).toBeLessThan(PEAK_RSS_BAR_MB);
  });

  it('ls -l of 40 sparse 100 GiB files answers at once: a stat decodes no DataMap', async () => {
    await sh(`mkdir '${m.at('big-dir')}' && for i in $(seq 1 40); do truncate -s 100G '${m.at('big-dir')}'/f$i; done`, { timeoutMs: 240_000 });
    await m.remount(); // cold caches: every stat reads its entry
    const started = Date.now();
    const listing = await sh(`ls -l '${m.at('big-dir')}'`);
    const seconds = (Date.now() - started) / 1000;
    process.stderr.write(`[sparse] ls -l of 40 sparse 100 GiB files after a remount: ${seconds.toFixed(2)} s\n`);
    expect(listing.stdout.match(/107374182400/g)).toHaveLength(40);
    expect(seconds).toBeLessThan(5);
    expect(await m.peakRssMb()).toBeLessThan(PEAK_RSS_BAR_MB);
  });

  it('refuses to grow a file past the 1 TiB limit with EFBIG, by truncate and by write', async () => {
    const f = m.at('limit.img');
    await sh(`truncate -s 1T '${f}'`);
    const grow = await sh(`truncate -s ${TiB + 1} '${f}' 2>&1 || true`);
    expect(grow.stdout).toMatch(/File too large/);
    const write = await sh(`printf x | dd of='${f}' bs=1 seek=${TiB} conv=notrunc status=none 2>&1 || true`);
    expect(write.stdout).toMatch(/File too large/);
    expect((await stat(f)).size).toBe(TiB);
  });
});
