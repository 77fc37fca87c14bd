/**
 * Rules for names the mount creates. fuse-native hands paths to JS as UTF-8 strings, so a name whose bytes
 * are not valid UTF-8 arrives with U+FFFD in place of the bad bytes: two different names would become one.
 * Such names are refused with EILSEQ rather than silently renamed.
 */
import { posixError } from './posix-error.js';

/** The longest name (bytes) Linux filesystems take, and statfs reports. */
export const NAME_MAX = 255;

/** Check the last component of a path about to be created (create, mkdir, mknod, symlink, rename target). */
export function checkNewName(path: string): void {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (name.includes('\uFFFD')) throw posixError('EILSEQ');
  if (Buffer.byteLength(name) > NAME_MAX) throw posixError('ENAMETOOLONG');
}

/** The visible path of `name` in directory `dir` ("/" + "a" -> "/a", "/d" + "a" -> "/d/a"). */
export function childPath(dir: string, name: string): string {
  return dir === '/' || dir === '' ? `/${name}` : `${dir}/${name}`;
}
