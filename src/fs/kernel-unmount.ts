/**
 * Taking the daemon's mount out of the kernel. fuse-native's unmount runs `fusermount -uz` through a shell and
 * calls back when that child has exited and its pipes closed. Twice in CI (about one test file in fifty) that
 * callback never came although the mount was already gone from /proc/mounts, and the daemon waited until it was
 * killed. So the wait is bounded: once the mount has been gone for MOUNT_GONE_GRACE_MS, the unmount goes on,
 * and the log names the children still running and what they wait on.
 */
import { readFile, readdir } from 'node:fs/promises';
import type { FuseInstance } from './fuse-binding.js';
import { forceUnmountAt, isMountedAt } from './stale-mount.js';

/** How long the mount may be gone from the kernel while fuse-native's unmount has not called back. */
const MOUNT_GONE_GRACE_MS = 5_000;
const POLL_MS = 500;

/** Unmount `mnt` (the resolved mount point) from the kernel; resolves once it is no longer mounted. */
export async function unmountFromKernel(fuse: FuseInstance, mnt: string, log: (line: string) => void): Promise<void> {
  let calledBack = false;
  const released = new Promise<void>((res) =>
    fuse.unmount(() => {
      calledBack = true;
      res();
    }),
  );
  let goneSince = 0;
  while (!calledBack) {
    await Promise.race([released, new Promise((res) => setTimeout(res, POLL_MS))]);
    if (calledBack) break;
    if (await isMountedAt(mnt)) {
      goneSince = 0;
      continue;
    }
    goneSince ||= Date.now();
    if (Date.now() - goneSince >= MOUNT_GONE_GRACE_MS) {
      log(`unmount: the mount is gone but fusermount has not returned after ${MOUNT_GONE_GRACE_MS / 1000} s: going on (children: ${await describeChildren()})`);
      return;
    }
  }
  // fusermount failed (it calls back with the error): detach the mount ourselves.
  if (await isMountedAt(mnt)) await forceUnmountAt(mnt).catch(() => {});
}

/** This process's children, each as "pid state wchan command", read from /proc (spawning ps could hang too). */
async function describeChildren(): Promise<string> {
  const pids: string[] = [];
  for (const tid of await readdir('/proc/self/task').catch(() => [] as string[])) {
    const listed = await readFile(`/proc/self/task/${tid}/children`, 'utf8').catch(() => '');
    pids.push(...listed.split(' ').filter(Boolean));
  }
  if (pids.length === 0) return 'none';
  const described = await Promise.all(
    pids.map(async (pid) => {
      const read = (name: string) => readFile(`/proc/${pid}/${name}`, 'utf8').catch(() => '?');
      const stat = await read('stat');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
      const command = (await read('cmdline')).split('\0').join(' ').trim();
      return `${pid} ${state} ${await read('wchan')} ${command}`;
    }),
  );
  return described.join('; ');
}
