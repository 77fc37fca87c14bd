/**
 * A vault with its chunks in an S3 bucket, against a real Ceph radosgw (scripts/s3-server.sh, started by
 * test/helpers/s3.ts when none answers), through the mount and the CLI. Files > 256 KiB are used where chunks must reach the store: smaller
 * ones are packed into their entries (native-notes/small-files.md).
 */
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KiB, MiB, TestMount, disposeAll, fuseSuite, makeTree, prng, run, seededBytes, sh, sleep, treeDigest, CLI } from './helpers.js';
import { randomBytes } from 'node:crypto';
import { sha3 } from '../../src/core/hash.js';
import { S3Store } from '../../src/store/s3-store.js';
import { S3_START_TIMEOUT_MS, TEST_BUCKET, bucketUsage, clearPrefix, freshPrefix, requireS3, s3Server } from '../helpers/s3.js';

fuseSuite();

const CACHE_MB = 16;
/**
 * The cache bound is kept by the store's accounting; chunk files being written at that moment (the workers'
 * temp files, up to a few staging groups of 1 MiB chunks) come on top.
 */
const IN_FLIGHT_SLACK = 8 * MiB;
/** The stated timeout of a writer whose uploads cannot proceed (the daemon's SEFS_S3_STALL_MS). */
const STALL_MS = 10_000;

const prefixes: string[] = [];
const mounts: TestMount[] = [];

async function s3Mount(name: string, env: Record<string, string> = {}): Promise<{ m: TestMount; prefix: string }> {
  const prefix = freshPrefix(name);
  prefixes.push(prefix);
  const m = await TestMount.create(`s3-${name}`, {
    initArgs: ['--chunks', `s3://${TEST_BUCKET}/${prefix}`],
    mountArgs: ['--disk-cache-mb', String(CACHE_MB)],
    env: { SEFS_S3_STALL_MS: String(STALL_MS), SEFS_S3_REQUEST_TIMEOUT_MS: '5000', ...env },
  });
  mounts.push(m);
  return { m, prefix };
}

async function statsJson(vault: string): Promise<{ stored_chunks: number; s3: { bucket_objects: number; bucket_bytes: number; cache_bytes: number; pending_uploads: number } }> {
  const { stdout } = await run(process.execPath, [CLI, 'stats', vault, '--json']);
  return JSON.parse(stdout);
}

/** Empty the local chunk cache of an unmounted vault (the bucket must then serve every read). */
const emptyCache = (m: TestMount): Promise<unknown> => sh(`rm -rf '${m.vault}/chunks' && mkdir -m 700 '${m.vault}/chunks'`);

beforeAll(() => {
  requireS3();
}, S3_START_TIMEOUT_MS);

afterEach(async () => {
  // A test that stopped the gateway brings it back even when it failed.
  s3Server('start');
});

afterAll(async () => {
  await disposeAll();
  for (const p of prefixes) await clearPrefix(p).catch(() => {});
});

describe('S3 chunk store (Ceph radosgw)', () => {
  it('a tree and a 48 MiB file come back exact from the bucket alone, a second copy adds nothing, the cache stays bounded', async () => {
    const { m, prefix } = await s3Mount('tree');
    const src = await makeTree(m.host('tree'), 11, [0, 1, 3, 4 * KiB, 100 * KiB, 300 * KiB, 3 * MiB + 1]);
    const big = seededBytes(48 * MiB, 7);
    await writeFile(m.host('big.bin'), big);

    // The vault's chunk bytes, sampled while the copy runs.
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await m.chunkBytes().catch(() => 0));
        await sleep(100);
      }
    })();
    await sh(`cp -a '${src}' '${m.at('tree')}' && cp '${m.host('big.bin')}' '${m.at('big.bin')}'`);
    await m.unmount();
    sampling = false;
    await sampler;
    expect(peak, 'local chunk cache while writing').toBeLessThanOrEqual(CACHE_MB * MiB + IN_FLIGHT_SLACK);
    expect(await m.chunkBytes(), 'local chunk cache at rest').toBeLessThanOrEqual(CACHE_MB * MiB);

    const stats = await statsJson(m.vault);
    expect(stats.s3.pending_uploads).toBe(0);
    const usage = await bucketUsage(prefix);
    expect(usage.objects).toBe(stats.s3.bucket_objects);
    expect(usage.bytes).toBeGreaterThanOrEqual(48 * MiB);

    await emptyCache(m);
    await m.mount();
    expect(await treeDigest(m.at('tree'))).toEqual(await treeDigest(src));
    // Random preads, each compared with the source: only the chunks covering them are fetched.
    const fh = await open(m.at('big.bin'), 'r');
    try {
      const rnd = prng(3);
      for (let i = 0; i < 40; i++) {
        const len = 1 + Math.floor(rnd() * 200 * KiB);
        const at = Math.floor(rnd() * (big.length - len));
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, at);
        expect(bytesRead).toBe(len);
        expect(buf.equals(big.subarray(at, at + len)), `pread of ${len} at ${at}`).toBe(true);
      }
    } finally {
      await fh.close();
    }
    expect((await readFile(m.at('big.bin'))).equals(big)).toBe(true);

    // A second copy of the large file: its chunks are there already (dedup), nothing new in the bucket.
    await sh(`cp '${m.at('big.bin')}' '${m.at('big-copy.bin')}'`);
    await m.unmount();
    const after = await bucketUsage(prefix);
    expect(after).toEqual(usage);
    expect(await m.chunkBytes()).toBeLessThanOrEqual(CACHE_MB * MiB);

    // fsck reads every chunk from the cache or the bucket.
    const fsck = await run(process.execPath, [CLI, 'fsck', m.vault]);
    expect(fsck.stdout).toMatch(/no damage/);

    // Deleting everything returns the bucket's space: the mount's reclamation deletes what no file names.
    await m.mount();
    await rm(m.at('tree'), { recursive: true });
    await rm(m.at('big.bin'));
    await rm(m.at('big-copy.bin'));
    let left = await bucketUsage(prefix);
    for (let waited = 0; left.objects > 0 && waited < 30_000; waited += 500) {
      await sleep(500);
      left = await bucketUsage(prefix);
    }
    expect(left).toEqual({ objects: 0, bytes: 0 });
    await m.unmount();
    expect(await m.chunkBytes()).toBe(0);
  });

  it('kill -9 with uploads pending: the next mount uploads them and every committed file reads back', async () => {
    const { m, prefix } = await s3Mount('kill');
    const files = [1, 2, 3].map((i) => ({ name: `f${i}.bin`, data: seededBytes(3 * MiB + i * 1000, 20 + i) }));
    // Uploads cannot proceed: the gateway is down while the files are written and committed (fsync).
    s3Server('stop-gateway');
    for (const f of files) {
      await writeFile(m.host(f.name), f.data);
      await sh(`dd if='${m.host(f.name)}' of='${m.at(f.name)}' bs=1M conv=fsync status=none`);
    }
    await m.kill9();
    s3Server('start');
    expect((await bucketUsage(prefix)).objects).toBe(0);

    await m.ensureMounted(); // clears the stale mount, mounts again: the queue resumes
    await m.unmount(); // waits for the queue
    expect((await statsJson(m.vault)).s3.pending_uploads).toBe(0);
    expect((await bucketUsage(prefix)).objects).toBeGreaterThanOrEqual(files.length * 3);
    await emptyCache(m);
    await m.mount();
    for (const f of files) expect((await readFile(m.at(f.name))).equals(f.data), f.name).toBe(true);
    expect(await m.log()).toMatch(/resuming the upload of \d+ chunks/);
  });

  it('the server gone mid-write: the writer gets EIO within the stated timeout (SEFS_S3_STALL_MS), never a hang; work resumes when it returns', async () => {
    const { m, prefix } = await s3Mount('gone');
    const data = seededBytes(48 * MiB, 31);
    await writeFile(m.host('w.bin'), data);
    // The first 8 MiB are written and committed while the server is up...
    await sh(`dd if='${m.host('w.bin')}' of='${m.at('w.bin')}' bs=1M count=8 conv=fsync status=none`);
    // ...then it goes, and the writer goes on with 40 MiB more than the 16 MiB cache can hold unuploaded.
    s3Server('stop-gateway');
    const started = Date.now();
    const outcome = await sh(`dd if='${m.host('w.bin')}' of='${m.at('w.bin')}' bs=1M skip=8 seek=8 conv=fsync,notrunc status=none`, { timeoutMs: 180_000 }).then(
      () => 'ok',
      (err: Error) => err.message,
    );
    const seconds = (Date.now() - started) / 1000;
    expect(outcome).toMatch(/Input\/output error/);
    expect(seconds, 'the writer failed within the stall timeout and its margin').toBeLessThan(STALL_MS / 1000 + 30);
    expect(await m.log()).toMatch(/uploading chunks: S3 .*unreachable/);
    expect(await m.log()).toMatch(/uploads made no progress for 10 s/);

    // The server returns: the queue drains by itself, and a new write goes through.
    s3Server('start');
    await sh(`dd if='${m.host('w.bin')}' of='${m.at('w2.bin')}' bs=1M conv=fsync status=none`, { timeoutMs: 180_000 });
    await m.unmount();
    expect((await statsJson(m.vault)).s3.pending_uploads).toBe(0);
    expect((await bucketUsage(prefix)).objects).toBeGreaterThanOrEqual(48);
    await emptyCache(m);
    await m.mount();
    expect((await readFile(m.at('w2.bin'))).equals(data)).toBe(true);
    // What was committed before the server went is intact.
    expect((await readFile(m.at('w.bin'))).subarray(0, 8 * MiB).equals(data.subarray(0, 8 * MiB))).toBe(true);
  });

  it('CLI: encrypt/cat/decrypt with --store s3://; one-line errors for bad credentials and an unreachable endpoint; gc sweeps an orphan object', async () => {
    const { m, prefix } = await s3Mount('cli');
    await m.unmount();
    const data = seededBytes(5 * MiB + 17, 41);
    await writeFile(m.host('in.bin'), data);
    const store = `s3://${TEST_BUCKET}/${prefix}-raw`;
    prefixes.push(`${prefix}-raw`);
    await run(process.execPath, [CLI, 'encrypt', m.host('in.bin'), '--store', store, '--datamap', m.host('in.map')]);
    await run(process.execPath, [CLI, 'decrypt', m.host('in.map'), '--store', store, '--out', m.host('out.bin')]);
    expect((await readFile(m.host('out.bin'))).equals(data)).toBe(true);
    await sh(`'${process.execPath}' '${CLI}' cat '${m.host('in.map')}' --store '${store}' --offset 1000000 --length 5000 > '${m.host('part.bin')}'`);
    expect((await readFile(m.host('part.bin'))).equals(data.subarray(1_000_000, 1_005_000))).toBe(true);

    // Bad credentials and an unreachable endpoint: one line each, quickly.
    const bad = await run(process.execPath, [CLI, 'init', join(m.dir, 'v2'), '--chunks', `s3://${TEST_BUCKET}/x`], { env: { AWS_SECRET_ACCESS_KEY: 'wrong' } }).then(
      () => 'succeeded',
      (err: Error) => err.message,
    );
    expect(bad).toMatch(/bad credentials|access denied/);
    const t0 = Date.now();
    const down = await run(process.execPath, [CLI, 'init', join(m.dir, 'v3'), '--chunks', `s3://${TEST_BUCKET}/x`], {
      env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', SEFS_S3_CONNECT_TIMEOUT_MS: '2000' },
    }).then(
      () => 'succeeded',
      (err: Error) => err.message,
    );
    expect(down).toMatch(/sefs: S3 checking the bucket: S3 endpoint http:\/\/127.0.0.1:9 unreachable/);
    expect(Date.now() - t0).toBeLessThan(60_000);

    // gc on an unmounted S3 vault sweeps the bucket too: an object no entry names (a crash after its upload) goes.
    const before = await bucketUsage(prefix);
    const orphan = randomBytes(300_000);
    await new S3Store({ bucket: TEST_BUCKET, prefix: `${prefix}/` }).put(Buffer.from(sha3(orphan)), orphan);
    await sleep(1100); // object times are in whole seconds
    const gc = await run(process.execPath, [CLI, 'gc', m.vault, '--grace-minutes', '0', '--json']);
    expect(JSON.parse(gc.stdout).swept_chunks).toBe(1);
    expect(await bucketUsage(prefix)).toEqual(before);
  });
});
