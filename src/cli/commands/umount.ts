/** sefs umount MOUNTPOINT: ask the daemon to commit and unmount; clear the mount if the daemon is gone. */
import { findMount, forgetMount } from '../../fs/mount-registry.js';
import { processAlive as alive } from '../../vault/process-alive.js';
import { forceUnmount, isMounted } from '../../fs/stale-mount.js';
import { VaultError } from '../../vault/config.js';
import type { Parsed } from '../args.js';

export const summary = 'unmount a mounted vault (commits open files first)';
export const usage = `usage: sefs umount MOUNTPOINT
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const options = {} as const;
export const operands = [{ name: 'MOUNTPOINT', complete: 'dir' }] as const;

export async function run({ operands: [mnt] }: Parsed<typeof options>): Promise<void> {
  const record = await findMount(mnt);
  if (record && alive(record.pid)) {
    process.kill(record.pid, 'SIGTERM');
    // Committing large open files can take a while.
    for (let waited = 0; alive(record.pid) && waited < 300_000; waited += 100) await sleep(100);
  }
  if (await isMounted(mnt)) {
    if (!record || !alive(record.pid)) await forceUnmount(mnt);
    else throw new VaultError(`the daemon of ${mnt} (pid ${record.pid}) did not stop`);
  } else if (!record) {
    throw new VaultError(`${mnt} is not mounted`);
  }
  await forgetMount(mnt);
}
