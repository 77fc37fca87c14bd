/**
 * Streaming file encryption and decryption (the reference's streaming_encrypt_from_file /
 * streaming_decrypt_from_storage). Memory stays at a few chunks whatever the file size: the file is read
 * once, chunk by chunk, with only chunks 0 and 1 held back (they are keyed by the last two chunks).
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Profile } from '../core/compression.js';
import { type DataMap, dataMapSize } from '../core/data-map.js';
import { MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
import { TooSmall } from '../core/errors.js';
import { chunkSpans } from '../core/layout.js';
import { withTempFile } from './atomic-file.js';
import { type ChunkCrypto, windowFor } from './crypto.js';
import { DEFAULT_PROFILE, storeDataMap } from './encrypt.js';
import { type ChunkSink, EncryptPipeline } from './pipeline.js';
import { sharedPool } from './pool.js';
import { decryptSlices, rootDataMap } from './read.js';
import { type ChunkSource, fetcherOf } from './source.js';

export type Progress = (done: number, total: number) => void;

export interface FileOptions {
  /** Where chunk crypto runs (default: the process-wide worker pool). */
  pool?: ChunkCrypto;
  /** Called after each chunk with bytes done and total bytes. */
  onProgress?: Progress;
}

/**
 * Read `length` bytes at `position` into a fresh buffer. Not into a SharedArrayBuffer, though that would spare
 * the copy each worker job makes: a worker that holds a shared buffer frees it only when its own heap is
 * collected, which external memory does not prompt, so RSS grew by ~700 MiB over a 1 GiB file.
 */
async function readChunk(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafeSlow(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new Error(`the file shrank while it was being encrypted (at byte ${position + got})`);
    got += bytesRead;
  }
  return buf;
}

/** Self-encrypt the file at `path` into `store`; returns its DataMap, shrunk as encrypt() shrinks it. */
export async function encryptFile(path: string, store: ChunkSink, options: FileOptions & { profile?: Profile } = {}): Promise<DataMap> {
  return (await encryptFileMaps(path, store, options)).dataMap;
}

/** encryptFile, also giving the file's own (root) map, which the shrunk one would need chunk reads to expand. */
export async function encryptFileMaps(
  path: string,
  store: ChunkSink,
  options: FileOptions & { profile?: Profile } = {},
): Promise<{ dataMap: DataMap; root: DataMap }> {
  const profile = options.profile ?? DEFAULT_PROFILE;
  const pool = options.pool ?? sharedPool();
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < MIN_ENCRYPTABLE_BYTES) throw new TooSmall(size);
    const pipeline = new EncryptPipeline(store, profile, pool, windowFor(pool));
    try {
      for (const span of chunkSpans(size)) {
        await pipeline.add(await readChunk(fh, span.start, span.size));
        options.onProgress?.(span.start + span.size, size);
      }
      const root = await pipeline.finish();
      return { dataMap: await storeDataMap(root, store, profile), root };
    } catch (err) {
      await pipeline.abort();
      throw err;
    }
  } finally {
    await fh.close();
  }
}

async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Decrypt a file into `path`: written to a temp file beside it and renamed into place once complete and
 * synced, so `path` never holds a partial or unverified file.
 */
export async function decryptToFile(dataMap: DataMap, source: ChunkSource, path: string, options: FileOptions = {}): Promise<void> {
  const pool = options.pool ?? sharedPool();
  const root = await rootDataMap(dataMap, source);
  const size = dataMapSize(root);
  await withTempFile(path, async (fh) => {
    let pos = 0;
    for await (const slice of decryptSlices(root, fetcherOf(source), 0, size, { pool, ahead: windowFor(pool) })) {
      await writeFully(fh, slice, pos);
      pos += slice.length;
      options.onProgress?.(pos, size);
    }
  });
}
