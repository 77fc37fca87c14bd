/**
 * What a sealed vault keeps in each meta/ directory besides its nodes:
 *   .sefs-dir        the directory's id: 16 random bytes, made with the directory. Names in it are sealed with
 *                    the id as associated data (equal names in two directories differ), and so are the
 *                    entries and symlink targets in it (an entry moved to another directory does not open).
 *                    It lives in the directory, so renaming a directory moves it along: O(1), nothing below
 *                    is sealed again.
 *   ~<hash>          a node whose sealed name is over 255 bytes (a visible name over 175 bytes): named by
 *                    the base64url SHA-256 of the sealed name, which a lookup computes without reading anything,
 *   ~<hash>.name     with the sealed name itself beside it, for a listing to decode.
 * Neither '.' nor '~' is in the base64url alphabet of sealed names, so none of these can collide with a node.
 * An unsealed vault has none of them (and no reserved names).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fsyncSync, openSync, readSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { posixError } from './posix-error.js';
import { NAME_MAX } from './names.js';

export const DIR_ID_FILE = '.sefs-dir';
export const DIR_ID_BYTES = 16;
const LONG_PREFIX = '~';
const SIDE_SUFFIX = '.name';
/** A sealed name of 255 bytes of text is 16 + 255 bytes: base64url of that, with room to spare. */
const SIDE_MAX = 512;

/** An unsealed vault's directories have no id. */
export const NO_DIR_ID = new Uint8Array(0);

/** Read up to `max` bytes of a regular file, without following a symlink; undefined when it does not exist. */
function readSmallSync(file: string, max: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const buf = Buffer.alloc(max + 1);
    const n = readSync(fd, buf, 0, max + 1, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Create a small file durably, failing if it exists. */
function createSync(file: string, bytes: Uint8Array, mode = 0o600): void {
  const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Give a new (empty) directory its id (or put back the one it had); the caller fsyncs the directory. */
export function createDirId(dir: string, id: Uint8Array = randomBytes(DIR_ID_BYTES)): Uint8Array {
  createSync(join(dir, DIR_ID_FILE), id);
  return id;
}

/**
 * A directory's id. A directory without one that holds nothing (a crash between its mkdir and its id, or
 * between the removal of its id and its rmdir) gets a fresh one when `repair` (the mount; fsck only reads).
 * One that holds nodes but no id is damage: its names cannot be read (EIO).
 */
export function readDirId(dir: string, repair: boolean): Uint8Array {
  const bytes = readSmallSync(join(dir, DIR_ID_FILE), DIR_ID_BYTES);
  if (bytes?.length === DIR_ID_BYTES) return bytes;
  if (bytes) throw posixError('EIO', `${join(dir, DIR_ID_FILE)} is damaged`);
  const others = readdirSync(dir); // ENOENT / ENOTDIR for a path that is not a directory, as a lookup wants
  if (others.length > 0) throw posixError('EIO', `${dir} has no ${DIR_ID_FILE}: the names in it cannot be read`);
  if (!repair) return randomBytes(DIR_ID_BYTES); // empty: no name to read, any id will do
  try {
    return createDirId(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readDirId(dir, false);
    throw err;
  }
}

/** The name a sealed name is stored under: itself, or its hash form when it is too long for the host. */
export function storedFormOf(sealedName: string): string {
  if (sealedName.length <= NAME_MAX) return sealedName;
  return LONG_PREFIX + createHash('sha256').update(sealedName).digest('base64url');
}

export const isLongForm = (stored: string): boolean => stored.startsWith(LONG_PREFIX) && !stored.endsWith(SIDE_SUFFIX);
export const sideFileOf = (stored: string): string => stored + SIDE_SUFFIX;

/** Files of a sealed directory that are not nodes: its id and long names' side files. */
export const isHousekeeping = (stored: string): boolean =>
  stored === DIR_ID_FILE || (stored.startsWith(LONG_PREFIX) && stored.endsWith(SIDE_SUFFIX));

/**
 * The sealed name behind a stored name: the name itself, or for a hash form the side file's content when it
 * hashes to that form; undefined when it is missing or does not match (the node's name is lost: damage).
 */
export function sealedNameOf(dir: string, stored: string): string | undefined {
  if (!isLongForm(stored)) return stored;
  const side = readSmallSync(join(dir, sideFileOf(stored)), SIDE_MAX)?.toString('latin1');
  return side !== undefined && side.length <= SIDE_MAX && storedFormOf(side) === stored ? side : undefined;
}
