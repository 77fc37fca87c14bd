/**
 * S3Store against the real Ceph radosgw (scripts/s3-server.sh, started when none answers; fails loudly when it
 * cannot be):
 * conditional create, missing chunks, ranged reads, listing past a page, batched deletes, one-line errors.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ChunkNotFound } from '../src/core/errors.js';
import { sha3 } from '../src/core/hash.js';
import { S3Error, S3Store, parseS3Url } from '../src/store/s3-store.js';
import { S3_START_TIMEOUT_MS, TEST_BUCKET, freshPrefix, requireS3 } from './helpers/s3.js';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const chunk = (n: number): { name: Buffer; content: Buffer } => {
  const content = randomBytes(n);
  return { name: Buffer.from(sha3(content)), content };
};

let store: S3Store;
beforeAll(async () => {
  requireS3();
  store = new S3Store({ bucket: TEST_BUCKET, prefix: `${freshPrefix('store')}/` });
  await store.ensureBucket();
}, S3_START_TIMEOUT_MS);

describe('S3Store', () => {
  it('parses s3:// addresses', () => {
    expect(parseS3Url('s3://b-1/a/b')).toEqual({ bucket: 'b-1', prefix: 'a/b/' });
    expect(parseS3Url('s3://b-1')).toEqual({ bucket: 'b-1', prefix: '' });
    expect(parseS3Url('/some/dir')).toBeUndefined();
    expect(() => parseS3Url('s3://B')).toThrow(S3Error);
  });

  it('stores once: a second put of a name is a 412 taken as dedup, and the first object stays', async () => {
    const c = chunk(300_000);
    await store.put(c.name, c.content);
    await store.put(c.name, randomBytes(10)); // same name, other bytes: never replaces the chunk
    expect((await store.get(c.name)).equals(c.content)).toBe(true);
    expect(await store.has(c.name)).toBe(true);
    await store.delete(c.name);
    expect(await store.has(c.name)).toBe(false);
    await expect(store.get(c.name)).rejects.toBeInstanceOf(ChunkNotFound);
  });

  it('reads part of a chunk with one ranged GET: the bytes asked for, fewer at the end, none past it', async () => {
    const c = chunk(1_048_592);
    await store.put(c.name, c.content);
    expect((await store.getRange(c.name, 262_128, 393_216)).equals(c.content.subarray(262_128, 393_216))).toBe(true);
    expect((await store.getRange(c.name, 1_048_000, 1_100_000)).equals(c.content.subarray(1_048_000))).toBe(true);
    expect((await store.getRange(c.name, 2_000_000, 2_100_000)).length).toBe(0);
    await expect(store.getRange(chunk(10).name, 0, 100)).rejects.toBeInstanceOf(ChunkNotFound);
    await store.delete(c.name); // the listing test counts this prefix's objects
  });

  it('lists past one page and deletes in batches', async () => {
    const chunks = Array.from({ length: 1100 }, () => chunk(64));
    await Promise.all(chunks.map((c) => store.put(c.name, c.content)));
    const listed: string[] = [];
    for await (const o of store.objects()) listed.push(o.hex);
    expect(listed.sort()).toEqual(chunks.map((c) => c.name.toString('hex')).sort());
    await store.deleteMany(listed);
    let left = 0;
    for await (const _ of store.objects()) left++;
    expect(left).toBe(0);
  });

  it('says in one line that a bucket is missing', async () => {
    const missing = new S3Store({ bucket: `no-such-${Date.now().toString(36)}`, prefix: '' });
    const err = await missing.check().then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(S3Error);
    expect(err!.message).toMatch(/bucket no-such-\S+ does not exist/);
    expect(err!.message).not.toMatch(/\n/);
  });
});
