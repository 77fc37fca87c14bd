/** stats: what a vault holds (files, logical bytes) against what it stores (chunk files), and its dedup ratio. */
import { stat } from 'node:fs/promises';
import { type OpenedVault, census, chunkFiles, vaultChunks } from './walk.js';

export interface VaultStats {
  sealed: boolean;
  /** Permission bits of meta/ (0700 expected: in an unsealed vault it holds every key in the clear). */
  metaMode: number;
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of the file sizes. */
  logicalBytes: number;
  /** Plaintext bytes once each distinct chunk is counted once (plus inline bytes). */
  uniqueBytes: number;
  /** logicalBytes / uniqueBytes (1 without any sharing). */
  dedupRatio: number;
  /** Every chunk (file under chunks/, or for an S3 vault in the bucket or waiting for upload). */
  storedChunks: number;
  storedBytes: number;
  /** Chunk files no entry names (gc removes those older than its grace period). */
  unreferencedChunks: number;
  unreferencedBytes: number;
  /** Chunks entries name that are not in chunks/ (fsck reports the files). */
  missingChunks: number;
  /** Entries, names or symlink targets that cannot be read. */
  damagedEntries: number;
  /** An S3 vault: the bucket and the local cache. */
  s3?: S3Stats;
}

export interface S3Stats {
  url: string;
  bucketObjects: number;
  bucketBytes: number;
  cacheChunks: number;
  cacheBytes: number;
  /** Cached chunks not yet uploaded (the upload queue: they go up at the next mount, or during one). */
  pendingUploads: number;
  pendingBytes: number;
}

export async function vaultStats(vault: OpenedVault): Promise<VaultStats> {
  const c = census(vault);
  let uniqueBytes = c.inlineBytes;
  for (const size of c.referenced.values()) uniqueBytes += size;
  const s: VaultStats = {
    sealed: vault.codec.sealed,
    metaMode: (await stat(vault.paths.meta)).mode & 0o7777,
    files: c.files,
    directories: c.directories,
    symlinks: c.symlinks,
    logicalBytes: c.logicalBytes,
    uniqueBytes,
    dedupRatio: uniqueBytes > 0 ? c.logicalBytes / uniqueBytes : 1,
    storedChunks: 0,
    storedBytes: 0,
    unreferencedChunks: 0,
    unreferencedBytes: 0,
    missingChunks: c.referenced.size,
    damagedEntries: c.damaged.length,
    ...(vault.remote ? { s3: { url: vault.remote.url, bucketObjects: 0, bucketBytes: 0, cacheChunks: 0, cacheBytes: 0, pendingUploads: 0, pendingBytes: 0 } } : {}),
  };
  for await (const chunk of vaultChunks(vault)) {
    s.storedChunks++;
    s.storedBytes += chunk.size;
    if (c.referenced.has(chunk.hex)) s.missingChunks--;
    else {
      s.unreferencedChunks++;
      s.unreferencedBytes += chunk.size;
    }
    if (s.s3 && chunk.inBucket) {
      s.s3.bucketObjects++;
      s.s3.bucketBytes += chunk.size;
    }
  }
  if (s.s3) {
    for (const f of chunkFiles(vault.store)) {
      s.s3.cacheChunks++;
      s.s3.cacheBytes += f.size;
      if (f.mode & 0o200) {
        s.s3.pendingUploads++;
        s.s3.pendingBytes += f.size;
      }
    }
  }
  return s;
}
