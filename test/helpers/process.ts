/** Waiting on processes the tests start or kill. */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Does `pid` still exist, zombie included? Not src's processAlive (a zombie counts as dead there, as it serves
 * nothing): a daemon's leader turns zombie while its other threads still hold /dev/fuse, and tests that kill
 * it must wait until the connection is really gone.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Wait up to `ms` for `pid` to be gone; whether it is. */
export async function waitDead(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}
