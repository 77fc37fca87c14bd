/**
 * Setting a file's times to the nanosecond. The metadata tree keeps each visible node's times as its meta/
 * node's own, so a time set through the mount must land there exactly: Node's utimes family takes seconds as a
 * double (about 0.1 µs near now, `touch -d ….123456789` read back as `….123456955`), so the native addon's
 * utimensat/futimens do it (src/core/native/file-times.c). Without the addon (not built, SEFS_NATIVE=0) the
 * double is used: times are then right to about a microsecond.
 */
import { futimesSync, lutimesSync, utimesSync } from 'node:fs';
import { native } from '../core/native.js';
import { checkErrno as check } from './posix-error.js';

/** The range of times kept: ns in a signed 64-bit integer (years 1677 to 2262). */
const NS_MIN = -(2n ** 63n);
const NS_MAX = 2n ** 63n - 1n;

/** A time set through the mount, brought into that range (as ext4 clamps a time to its own). */
export const clampNs = (ns: bigint): bigint => (ns < NS_MIN ? NS_MIN : ns > NS_MAX ? NS_MAX : ns);

/** Node's seconds, for the fallback. */
const seconds = (ns: bigint): number => Number(ns) / 1e9;

/** utimensat: the node at `path` (a symlink itself with `noFollow`). */
export function setTimesNs(path: string, atime: bigint, mtime: bigint, noFollow = false): void {
  if (native) return check(native.setTimes(path, atime, mtime, noFollow), 'utimensat');
  (noFollow ? lutimesSync : utimesSync)(path, seconds(atime), seconds(mtime));
}

/** futimens. */
export function setFdTimesNs(fd: number, atime: bigint, mtime: bigint): void {
  if (native) return check(native.setFdTimes(fd, atime, mtime), 'futimens');
  futimesSync(fd, seconds(atime), seconds(mtime));
}

/**
 * futimens(fd, NULL): atime, mtime and ctime all the kernel's one "now", as a file just created has them (a
 * time taken in JavaScript would differ from the ctime the kernel sets with it).
 */
export function setFdTimesNowSync(fd: number): void {
  if (native?.setFdTimesNow) return check(native.setFdTimesNow(fd), 'futimens');
  const now = Date.now() / 1000;
  futimesSync(fd, now, now);
}

/** A time in ms (Date.now) as ns. */
export const msToNs = (ms: number): bigint => BigInt(Math.round(ms)) * 1_000_000n;

/** Now, in ns since the epoch (the clock's ms: what Date.now gives). */
export const nowNs = (): bigint => msToNs(Date.now());
