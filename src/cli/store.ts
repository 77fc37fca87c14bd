/** The chunk store directory a command works on. */
import { mkdir, stat } from 'node:fs/promises';
import { DiskStore } from '../store/disk-store.js';

/** For writing: the directory is created when missing. */
export async function storeForWriting(dir: string): Promise<DiskStore> {
  await mkdir(dir, { recursive: true });
  return new DiskStore(dir);
}

/**
 * For reading: the directory must exist. Fetched chunks are verified by the decryption itself (in a worker),
 * so the store need not hash them a second time on the main thread.
 */
export async function storeForReading(dir: string): Promise<DiskStore> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`chunk store ${dir} is not a directory`);
  return new DiskStore(dir, { verify: false });
}
