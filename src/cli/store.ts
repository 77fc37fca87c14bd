/** The chunk store a command works on: a directory, or s3://BUCKET[/PREFIX] (s3-store.ts). */
import { mkdir, stat } from 'node:fs/promises';
import type { ChunkStore } from '../store/chunk-store.js';
import { DiskStore } from '../store/disk-store.js';
import { S3Store, parseS3Url } from '../store/s3-store.js';

/** For writing: the directory (or the bucket) is created when missing. */
export async function storeForWriting(spec: string): Promise<ChunkStore> {
  const s3 = parseS3Url(spec);
  if (s3) {
    const store = new S3Store(s3);
    await store.ensureBucket();
    return store;
  }
  await mkdir(spec, { recursive: true });
  return new DiskStore(spec);
}

/**
 * For reading: the directory (or the bucket) must exist. Fetched chunks are verified by the decryption itself
 * (in a worker), so the store need not hash them a second time on the main thread.
 */
export async function storeForReading(spec: string): Promise<ChunkStore> {
  const s3 = parseS3Url(spec);
  if (s3) {
    const store = new S3Store(s3);
    await store.check();
    return store;
  }
  const st = await stat(spec).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`chunk store ${spec} is not a directory`);
  return new DiskStore(spec, { verify: false });
}
