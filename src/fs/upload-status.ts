/**
 * An unmounting S3 vault's upload queue, told to `sefs umount` (another process) through a small file in the
 * vault: VAULT/uploads.json, {"chunks": N, "bytes": B}, rewritten while the daemon waits for its uploads and
 * removed when it is done.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.js';

const statusPath = (vault: string): string => join(vault, 'uploads.json');

/** Never rejects: the status is a courtesy to `sefs umount`, not part of the vault. */
export async function writeUploadStatus(vault: string, chunks: number, bytes: number): Promise<void> {
  const path = statusPath(vault);
  await (chunks === 0 ? rm(path, { force: true }) : writeFileAtomic(path, Buffer.from(JSON.stringify({ chunks, bytes })), 0o600)).catch(() => {});
}

export async function readUploadStatus(vault: string): Promise<{ chunks: number; bytes: number } | undefined> {
  try {
    const s = JSON.parse(await readFile(statusPath(vault), 'utf8')) as { chunks: number; bytes: number };
    return typeof s.chunks === 'number' && typeof s.bytes === 'number' ? s : undefined;
  } catch {
    return undefined;
  }
}
