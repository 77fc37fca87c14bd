/**
 * Which process serves which mount point, so `sefs umount MOUNTPOINT` can ask the daemon to commit and
 * unmount cleanly (a bare fusermount -u would cut it off before it commits open files).
 *
 * The records live in a directory only their user can write ($XDG_RUNTIME_DIR, /run for root, else the home
 * directory), checked on every use: one in a shared place (/tmp) could be made first by another user, who
 * would then choose what root's mount writes through and which pid root's umount signals. A record is only a
 * hint: the pid is signalled only once it is checked to be the sefs daemon of the recorded vault (daemonOf).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VaultError, readPid } from '../vault/config.js';
import { processAlive } from '../vault/process-alive.js';
import { realPath } from './mount-paths.js';

export interface MountRecord {
  pid: number;
  vault: string;
  mountpoint: string;
}

const uid = (): number => process.getuid?.() ?? 0;

/** Where this user's records go: a private directory in a place nobody else may write. */
function registryDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const base = runtime ? runtime : uid() === 0 ? '/run' : homedir();
  return join(base, uid() === 0 && !runtime ? 'sefs-mounts' : '.sefs-mounts');
}

/** The registry directory, made if missing; refused unless it is ours, private (0700) and no link. */
export async function privateRegistry(): Promise<string> {
  const dir = registryDir();
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await lstat(dir);
  if (!st.isDirectory() || st.uid !== uid() || (st.mode & 0o077) !== 0) {
    throw new VaultError(`${dir} (where sefs records its mounts) is ${st.isSymbolicLink() ? 'a symbolic link' : !st.isDirectory() ? 'not a directory' : st.uid !== uid() ? `owned by uid ${st.uid}` : 'open to other users'}: refusing to use it (remove it, or set XDG_RUNTIME_DIR)`);
  }
  return dir;
}

/** Keyed by the real path, so the mount point and any symlinked path to it find the same record. */
const recordPath = async (mnt: string): Promise<string> =>
  join(await privateRegistry(), createHash('sha256').update(await realPath(mnt)).digest('hex').slice(0, 24) + '.json');

export async function recordMount(record: MountRecord): Promise<void> {
  await writeFile(await recordPath(record.mountpoint), JSON.stringify(record), { mode: 0o600 });
}

export async function findMount(mnt: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await readFile(await recordPath(mnt), 'utf8')) as MountRecord;
  } catch (err) {
    if (err instanceof VaultError) throw err;
    return undefined;
  }
}

export async function forgetMount(mnt: string): Promise<void> {
  await rm(await recordPath(mnt), { force: true });
}

/**
 * Is the record's pid alive and the sefs daemon serving its vault? Its vault's pid file must name it, and
 * its command line must be a foreground `mount` of this program: a recycled or forged pid is never signalled.
 */
export async function daemonOf(record: MountRecord): Promise<boolean> {
  if (!Number.isInteger(record.pid) || record.pid <= 0 || !processAlive(record.pid)) return false;
  if (typeof record.vault !== 'string' || (await readPid(record.vault)) !== record.pid) return false;
  try {
    const args = readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0');
    return args.includes('mount') && args.includes('--foreground') && args.some((a) => /(^|\/)(main\.js|sefs)$/.test(a));
  } catch {
    return false;
  }
}
