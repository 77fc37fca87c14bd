/** sefs umount MOUNTPOINT: ask the daemon to commit and unmount; clear the mount if the daemon is gone. */
import { findMount, forgetMount } from '../../fs/mount-registry.js';
import { processAlive as alive } from '../../vault/process-alive.js';
import { forceUnmount, isMounted } from '../../fs/stale-mount.js';
import { VaultError } from '../../vault/config.js';
import { parseCommandArgs, positionals } from '../args.js';

export const summary = 'unmount a mounted vault (commits open files first)';
export const usage = `usage: sefs umount MOUNTPOINT
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(args: string[]): Promise<void> {
  const { positionals: pos } = parseCommandArgs({ args, options: {} });
  const [mnt] = positionals(pos, ['MOUNTPOINT']) as [string];
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
