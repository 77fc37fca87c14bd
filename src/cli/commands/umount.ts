/**
 * sefs umount MOUNTPOINT: ask the daemon to commit and unmount; clear the mount if the daemon is gone.
 * Only sefs mounts are touched, and only a pid checked to be the daemon of that mount's vault is signalled.
 */
import { daemonOf, findMount, forgetMount } from '../../fs/mount-registry.js';
import { processAlive as alive } from '../../vault/process-alive.js';
import { forceUnmount, isSefsMount, mountEntry } from '../../fs/stale-mount.js';
import { VaultError } from '../../vault/config.js';
import type { Parsed } from '../args.js';
import { readUploadStatus } from '../../fs/upload-status.js';

export const summary = 'unmount a mounted vault (commits open files first)';
export const usage = `usage: sefs umount MOUNTPOINT
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const options = {} as const;
export const operands = [{ name: 'MOUNTPOINT', complete: 'dir' }] as const;

export async function run({ operands: [mnt] }: Parsed<typeof options>): Promise<void> {
  const there = await mountEntry(mnt);
  if (there && !isSefsMount(there)) throw new VaultError(`${mnt} is not a sefs mount (${there.fstype} from ${there.source}): not touching it`);
  const record = await findMount(mnt);
  // A record of another vault's mount (or one whose daemon is gone) is stale: its pid is not ours to signal.
  const daemon = record && (!there || isSefsMount(there, record.vault)) && (await daemonOf(record)) ? record.pid : undefined;
  if (daemon) {
    process.kill(daemon, 'SIGTERM');
    // Committing large open files can take a while; so does an S3 vault's upload queue, which counts as
    // progress for as long as it shrinks (its daemon gives up by itself once uploads stall).
    let last = '';
    for (let waited = 0; alive(daemon) && waited < 300_000; waited += 100) {
      await sleep(100);
      const status = await readUploadStatus(record!.vault);
      const line = status ? `uploading to the bucket: ${status.chunks} chunks (${(status.bytes / 1048576).toFixed(1)} MiB) left` : '';
      if (line !== last) {
        if (line) waited = 0;
        if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
        last = line;
      }
    }
    if (last && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (alive(daemon)) throw new VaultError(`the daemon of ${mnt} (pid ${daemon}) did not stop`);
  }
  if (isSefsMount(await mountEntry(mnt))) await forceUnmount(mnt);
  else if (!there && !record) throw new VaultError(`${mnt} is not mounted`);
  await forgetMount(mnt);
}
