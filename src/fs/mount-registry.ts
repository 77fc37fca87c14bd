/**
 * Which process serves which mount point, so `sefs umount MOUNTPOINT` can ask the daemon to commit and
 * unmount cleanly (a bare fusermount -u would cut it off before it commits open files).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realPath } from './mount-paths.js';

export interface MountRecord {
  pid: number;
  vault: string;
  mountpoint: string;
}

const registryDir = (): string => join(tmpdir(), `sefs-mounts-${process.getuid?.() ?? 0}`);
/** Keyed by the real path, so the mount point and any symlinked path to it find the same record. */
const recordPath = async (mnt: string): Promise<string> =>
  join(registryDir(), createHash('sha256').update(await realPath(mnt)).digest('hex').slice(0, 24) + '.json');

export async function recordMount(record: MountRecord): Promise<void> {
  await mkdir(registryDir(), { recursive: true, mode: 0o700 });
  await writeFile(await recordPath(record.mountpoint), JSON.stringify(record));
}

export async function findMount(mnt: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await readFile(await recordPath(mnt), 'utf8')) as MountRecord;
  } catch {
    return undefined;
  }
}

export async function forgetMount(mnt: string): Promise<void> {
  await rm(await recordPath(mnt), { force: true });
}
