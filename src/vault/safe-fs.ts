/**
 * Vault I/O that never acts outside the vault, whatever someone with write access to it has planted there
 * (symbolic links, FIFOs, device nodes, hard links, huge files). The daemon may run as root: a symlink in
 * the vault followed by one chmod or rm is an action anywhere on the host.
 *
 * Node has no *at calls, so a descriptor stands in for a directory: a node is opened with O_NOFOLLOW (O_PATH
 * when it is only to be named), and the kernel's own path of what was opened (/proc/self/fd/N) must lie in
 * the expected area of the vault: a symlinked directory anywhere on the way leads elsewhere and is refused,
 * with no window between check and use. Later operations go through that descriptor's /proc path, which
 * reaches the pinned node itself (chmod, utimes, readdir) or a name in the pinned directory (unlink,
 * rename, mkdir), so nothing is resolved again.
 *
 * An `area` is the real path of a vault directory (meta/, chunks/, tmp/ or the vault itself): areaOf().
 *
 * Paths of PATH_MAX bytes or more (a visible path near PATH_MAX below a vault's own long path) are walked from
 * their area one name at a time, each opened through the previous one's descriptor without following it: the
 * kernel accepts every step, and no link is followed on the way, so the node is inside without a check of its
 * (too long to read back) real path.
 */
import { closeSync, renameSync, constants as fsc, fchmodSync, fstatSync, futimesSync, lstatSync, mkdirSync, openSync, readSync, readlinkSync, realpathSync, unlinkSync, type BigIntStats, type Stats } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { SefsError } from '../core/errors.js';
import { type NativeAddon, type NativeRead, native } from '../core/native.js';
import { posixError } from './posix-error.js';

/** Linux's O_PATH (Node does not export it): a descriptor that names a node without opening it for I/O. */
const O_PATH = 0o10000000;
// libuv adds O_CLOEXEC to every open.
const NOFOLLOW = fsc.O_NOFOLLOW;
/** Read flags: a FIFO must not block the open (it is refused by type right after). */
const READ_FLAGS = fsc.O_RDONLY | fsc.O_NONBLOCK | NOFOLLOW;

const procPath = (fd: number): string => `/proc/self/fd/${fd}`;

/** The kernel refuses a path of PATH_MAX bytes (its terminating NUL included) or more: ENAMETOOLONG. */
const PATH_MAX = 4096;
const tooLong = (path: string): boolean => path.length >= PATH_MAX / 4 && Buffer.byteLength(path) >= PATH_MAX;

/** A name opened in a pinned directory (the path atName gives): where that directory is, wherever that is. */
const PINNED_NAME = /^\/proc\/self\/fd\/\d+\/[^/]+$/;

/** Something in the vault that is not what the format allows there: EIO on that file, with a log line. */
export class UnsafeVaultNode extends SefsError {
  constructor(readonly file: string, what: string) {
    super('UnsafeVaultNode', `${file} ${what}: refused (the vault has been tampered with)`);
  }
}

/**
 * The real path of vault directory `dir` without following `dir` itself: a vault's meta/ replaced by a
 * symlink must not make its target the area everything is checked against.
 */
export function areaOf(dir: string): string {
  let parent: string;
  try {
    parent = realpathSync(dirname(dir));
  } catch {
    parent = dirname(dir);
  }
  return join(parent, basename(dir));
}

/** The area of the vault's own files (sefs.pid, sefs.log): the vault directory as the user named it, resolved. */
export function vaultArea(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    return root;
  }
}

export type Kind = 'file' | 'dir' | 'symlink';

const kindOf = (st: Stats): Kind | 'other' => (st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other');
const KIND_NAMES: Record<Kind | 'other', string> = { file: 'a regular file', dir: 'a directory', symlink: 'a symbolic link', other: 'a special file' };

/** Refuse descriptor `fd` (opened from `path`) unless the kernel places it inside `area`; its real path, if read. */
function checkInside(fd: number, path: string, area: string): string | undefined {
  return checkRealPath(path, area, () => readlinkSync(procPath(fd)));
}

/**
 * Refuse what was opened from `path` unless its real path (read back from the kernel) lies inside `area`; that
 * real path (none for a name in a pinned directory, which is not read back).
 */
function checkRealPath(path: string, area: string, real: () => string | undefined): string | undefined {
  // Opened without following, by name in a checked directory: nothing to check, and its real path may be too long to read.
  if (PINNED_NAME.test(path)) return undefined;
  const where = real();
  if (where === undefined || (where !== area && !where.startsWith(area + '/'))) throw new UnsafeVaultNode(path, 'is reached through a symbolic link leading out of the vault');
  return where;
}

/**
 * Whether a regular file with other names may be used: only the vault's own hard-link stubs (their bytes say
 * so: meta-tree.ts), never a planted link to a host file. Gets the pinned file's /proc path.
 */
export type LinkedCheck = (self: string) => boolean;

/** Refuse a node whose type is not one of `kinds`; a regular file with other names could be a host file. */
function checkKind(st: Stats, fd: number, path: string, kinds: readonly Kind[], linked?: LinkedCheck): void {
  const kind = kindOf(st);
  if (kind === 'other' || !kinds.includes(kind)) throw new UnsafeVaultNode(path, `is ${KIND_NAMES[kind]} where ${kinds.map((k) => KIND_NAMES[k]).join(' or ')} belongs`);
  if (kind === 'file' && st.nlink > 1 && !linked?.(procPath(fd))) throw new UnsafeVaultNode(path, 'has other hard links');
}

/** An O_PATH descriptor of `path` itself (not followed), checked; the caller closes it. */
function pin(path: string, area: string, kinds: readonly Kind[], linked?: LinkedCheck): number {
  return pinned(path, area, kinds, linked).fd;
}

/** pin(), with the fstat of what it pinned and the real path its check read back (none when walked). */
function pinned(path: string, area: string, kinds: readonly Kind[], linked?: LinkedCheck): { fd: number; st: Stats; real?: string } {
  if (tooLong(path)) return pinWalking(path, area, kinds, linked);
  const fd = openSync(path, O_PATH | NOFOLLOW);
  try {
    const st = fstatSync(fd);
    checkKind(st, fd, path, kinds, linked);
    const real = checkInside(fd, path, area);
    return { fd, st, real };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** pin() of a path too long for the kernel: walked from its area, one name at a time, never following one. */
function pinWalking(path: string, area: string, kinds: readonly Kind[], linked?: LinkedCheck): { fd: number; st: Stats } {
  // Outside its area (or given by another name of it) it cannot be walked: what the kernel would say.
  if (!path.startsWith(area + '/')) throw posixError('ENAMETOOLONG', `${path}: too long`);
  const names = path.slice(area.length + 1).split('/').filter(Boolean);
  if (names.some((n) => n === '.' || n === '..')) throw new UnsafeVaultNode(path, 'is not a plain path');
  let fd = pin(area, area, ['dir']);
  try {
    names.forEach((name, i) => {
      const next = openSync(`${procPath(fd)}/${name}`, O_PATH | NOFOLLOW | (i < names.length - 1 ? fsc.O_DIRECTORY : 0));
      closeSync(fd);
      fd = next;
    });
    const st = fstatSync(fd);
    checkKind(st, fd, path, kinds, linked);
    return { fd, st };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * A directory of the vault held for a long time (checked once, never followed): an O_PATH descriptor the caller
 * closes. Names in it are reached with nameIn(), checked by construction.
 */
export function holdDirSync(dir: string, area: string): number {
  return pin(dir, area, ['dir']);
}

/** Name `name` in a directory held by holdDirSync: a path that resolves nothing but that last name. */
export const nameIn = (dirFd: number, name: string): string => `${procPath(dirFd)}/${name}`;

/** The directory held by holdDirSync itself (to list it, or open it for an ioctl). */
export const heldDir = (dirFd: number): string => procPath(dirFd);

/**
 * Run `fn` on `path`, or when it is too long for the kernel, on its name reached through its checked directory:
 * for the calls that take a path as it is (a plain lstat, an open that checks what it opened).
 */
function reachable<T>(path: string, area: string, fn: (p: string) => T): T {
  return tooLong(path) ? atNameSync(path, area, fn) : fn(path);
}

async function reachableAsync<T>(path: string, area: string, fn: (p: string) => Promise<T>): Promise<T> {
  return tooLong(path) ? atName(path, area, fn) : fn(path);
}

/** lstat(2) of a vault path, however long (times in ns with `bigint`). Not checked: a stat acts on nothing. */
export function lstatInside(path: string, area: string): Stats;
export function lstatInside(path: string, area: string, options: { bigint: true }): BigIntStats;
export function lstatInside(path: string, area: string, options?: { bigint: true }): Stats | BigIntStats {
  return reachable(path, area, (p) => (options ? lstatSync(p, options) : lstatSync(p)));
}

/** fsync a directory so the renames inside it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncDir of a vault directory, however long its path. */
export function fsyncDirInside(dir: string, area: string): Promise<void> {
  return atNode(dir, area, ['dir'], (self) => fsyncDir(self));
}

/**
 * Directories atName pinned, kept open for the next call: the create, commit and unlink paths name entries in
 * the same few directories (tmp/, a file's meta/ directory) over and over, and a pin is four system calls
 * (open, fstat, readlink, close). A kept pin is used again only while its descriptor still reads back the
 * real path it was checked at (one readlink): a directory moved, removed or swapped for a link since then
 * reads back elsewhere (or "(deleted)"), and its path is pinned afresh, with every check.
 */
interface DirPin {
  fd: number;
  /** The real path it was checked at. */
  real: string;
  /** Calls using it now (an async one holds it across awaits): it is closed only once none is. */
  users: number;
  /** Dropped from the cache (moved, or pushed out): closed when its last user is done. */
  dropped: boolean;
}
const DIR_PINS_MAX = 32;
const dirPins = new Map<string, DirPin>();

const realPathOf = (fd: number): string | undefined => {
  try {
    return readlinkSync(procPath(fd));
  } catch {
    return undefined;
  }
};

function dropPin(pin: DirPin): void {
  pin.dropped = true;
  if (pin.users === 0) closeSync(pin.fd);
}

/** A checked pin of directory `dir` for one use (putDirPin after it): kept, or made now. */
function takeDirPin(dir: string, area: string): DirPin {
  // A /proc path names whatever its descriptor is now; a path too long to read back cannot be re-checked.
  if (dir.startsWith('/proc/') || tooLong(dir)) return { fd: pin(dir, area, ['dir']), real: '', users: 1, dropped: true };
  const key = `${area}\0${dir}`;
  const kept = dirPins.get(key);
  if (kept) {
    dirPins.delete(key);
    if (realPathOf(kept.fd) === kept.real) {
      dirPins.set(key, kept); // the most recently used last
      kept.users++;
      return kept;
    }
    dropPin(kept);
  }
  const { fd, real } = pinned(dir, area, ['dir']); // its check read the real path back
  // Kept only when `dir` is its own real path (every vault path is: areas are real paths): one reached through
  // a link inside the vault would go on naming the link's old target after the link changed.
  const fresh: DirPin = { fd, real: real ?? '', users: 1, dropped: real !== dir };
  if (fresh.dropped) return fresh;
  dirPins.set(key, fresh);
  for (const [k, old] of dirPins) {
    if (dirPins.size <= DIR_PINS_MAX) break;
    if (old.users > 0) continue;
    dirPins.delete(k);
    dropPin(old);
  }
  return fresh;
}

function putDirPin(pin: DirPin): void {
  pin.users--;
  if (pin.users === 0 && pin.dropped) closeSync(pin.fd);
}

/** Close the kept pins (tests that count descriptors; a process done with its vaults). */
export function closeDirPins(): void {
  for (const pin of dirPins.values()) dropPin(pin);
  dirPins.clear();
}

/**
 * Run `fn` on the name `basename(path)` inside its checked directory: `fn` gets a path that resolves that
 * directory through its descriptor, so only the last component is looked up, and never followed by the
 * calls meant for it (unlink, rmdir, rename, mkdir, symlink, readlink, lstat).
 */
export async function atName<T>(path: string, area: string, fn: (at: string) => Promise<T>): Promise<T> {
  const held = takeDirPin(dirname(path), area);
  try {
    return await fn(nameIn(held.fd, basename(path)));
  } finally {
    putDirPin(held);
  }
}

/** atName, synchronous; `fn` also gets a function giving the fstat of the directory. */
export function atNameSync<T>(path: string, area: string, fn: (at: string, dir: () => Stats) => T): T {
  const held = takeDirPin(dirname(path), area);
  try {
    return fn(nameIn(held.fd, basename(path)), () => fstatSync(held.fd));
  } finally {
    putDirPin(held);
  }
}

/** Run `fn` on node `path` itself (a file or directory, not followed): chmod, chown, utimes or readdir of its /proc path. */
export async function atNode<T>(path: string, area: string, kinds: readonly Kind[], fn: (self: string) => Promise<T>, linked?: LinkedCheck): Promise<T> {
  const fd = pin(path, area, kinds, linked);
  try {
    return await fn(procPath(fd));
  } finally {
    closeSync(fd);
  }
}

export function atNodeSync<T>(path: string, area: string, kinds: readonly Kind[], fn: (self: string) => T, linked?: LinkedCheck): T {
  const fd = pin(path, area, kinds, linked);
  try {
    return fn(procPath(fd));
  } finally {
    closeSync(fd);
  }
}

/** Like rename(2) (or `rename`, given both checked paths), with both directories checked, each in its own area. */
export function renameInside<T = void>(from: string, fromArea: string, to: string, toArea: string, rename: (a: string, b: string) => T = renameSync as (a: string, b: string) => T): T {
  return atNameSync(from, fromArea, (a) => atNameSync(to, toArea, (b) => rename(a, b)));
}

/**
 * Run `fn` with directory `dir` pinned (checked, not followed): `fn` gets a function naming an entry of it
 * through the descriptor, for listing and reading a whole directory at the cost of one check.
 */
export function* inDirSync<T>(dir: string, area: string, fn: (at: (name: string) => string, self: string) => Iterable<T>): Generator<T> {
  const fd = pin(dir, area, ['dir']);
  try {
    const self = procPath(fd);
    yield* fn((name) => `${self}/${name}`, self);
  } finally {
    closeSync(fd);
  }
}

/** ELOOP from O_NOFOLLOW is a symlink where a file belongs. */
function noLink(err: unknown, path: string): never {
  if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeVaultNode(path, 'is a symbolic link where a regular file belongs');
  throw err;
}

export interface ReadOptions {
  /** Leave the atime alone (entries: their atime is the visible file's). */
  noAtime?: boolean;
  /** Set the file's times to now once read (a chunk reused by dedup: gc spares young chunks). */
  touch?: boolean;
  /** Read into this buffer (the bound is then its length) rather than a new one; the result is a view of it. */
  into?: Buffer;
  /** Read only bytes [start, end) (fewer where the file is shorter); `max` still bounds the whole file. */
  range?: { start: number; end: number };
  /**
   * With `into`: read past the page cache (O_DIRECT, where the addon, the alignment and the file system allow),
   * for bytes the caller caches itself. Up to 4 KiB past the file's bytes in `into` may be overwritten.
   */
  direct?: boolean;
}

/**
 * A regular file's bytes, at most `max` of them (checked by fstat before anything is read), read without
 * following a link.
 */
export async function readBounded(path: string, area: string, max: number, options: ReadOptions = {}): Promise<Buffer> {
  return reachableAsync(path, area, (p) => readBoundedHere(p, area, max, options));
}

async function readBoundedHere(path: string, area: string, max: number, options: ReadOptions): Promise<Buffer> {
  if (native?.readFile && !options.touch) return readInOneJob(native.readFile, path, area, max, options);
  const { noAtime = false, touch = false, into, range } = options;
  let fh: FileHandle;
  try {
    fh = await open(path, READ_FLAGS | (noAtime ? fsc.O_NOATIME : 0)).catch((err: NodeJS.ErrnoException) => {
      // O_NOATIME needs the file's owner or CAP_FOWNER.
      if (noAtime && err.code === 'EPERM') return open(path, READ_FLAGS);
      throw err;
    });
  } catch (err) {
    noLink(err, path);
  }
  try {
    const fileSize = checkReadable((await fh.stat()) as Stats, fh.fd, path, area, into ? Math.min(max, into.length) : max);
    const from = Math.min(range?.start ?? 0, fileSize);
    const size = Math.min(range?.end ?? fileSize, fileSize) - from;
    const buf = into ?? Buffer.allocUnsafe(Math.max(0, size));
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, from + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (touch) await fh.utimes(new Date(), new Date());
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/**
 * readBoundedHere as one job of the thread pool (the addon's readFile: open, fstat, the real path, pread and
 * close), with the same checks: a regular file of at most `max` bytes, inside `area`, before its bytes are used.
 */
async function readInOneJob(readFile: NonNullable<NativeAddon['readFile']>, path: string, area: string, max: number, { noAtime = false, into, range, direct = false }: ReadOptions): Promise<Buffer> {
  const bound = into ? Math.min(max, into.length) : max;
  const start = range?.start ?? 0;
  const end = Math.max(start, range?.end ?? bound);
  // A range's buffer is made here, of V8's own memory (movable to a worker); a whole file's comes from the job.
  const target = into ?? (range ? Buffer.allocUnsafeSlow(end - start) : undefined);
  const r = await readFile(path, noAtime, start, end, bound, target, direct && into !== undefined);
  return checkedRead(r, path, area, bound, target);
}

/** What the addon read of `path`, checked as readBoundedHere checks it: the bytes, or the error to throw. */
function checkedRead(r: NativeRead, path: string, area: string, bound: number, target?: Buffer): Buffer {
  if (r.errno !== 0 && r.syscall === 'open') noLink(systemError(r.errno, r.syscall, path), path);
  if (r.syscall !== 'open' && r.syscall !== 'fstat') {
    checkSizeAndKind(kindOfMode(r.mode), r.size, path, bound);
    checkRealPath(path, area, () => r.real);
  }
  if (r.errno !== 0) throw systemError(r.errno, r.syscall!, path);
  return target ? target.subarray(0, r.length) : r.bytes!;
}

/**
 * readBounded of several whole files (no atime change when asked), in one thread-pool job where the addon has
 * it: each path's bytes, or the error reading it alone would have thrown. For reading a directory's entries
 * after a listing (native-notes/small-files.md, twentieth session). The job reads at most MANY_BUDGET bytes in
 * all (besides its first file); the files past that are read here one at a time, so memory stays bounded
 * whatever the directory holds.
 */
export async function readBoundedMany(paths: string[], area: string, max: number, options: { noAtime?: boolean } = {}): Promise<(Buffer | Error)[]> {
  const readFiles = native?.readFiles;
  const alone = (p: string): Promise<Buffer | Error> => readBounded(p, area, max, options).catch(asError);
  // Paths too long for the kernel are reached through their directory, one by one.
  if (!readFiles || paths.some(tooLong)) return Promise.all(paths.map(alone));
  const results = await readFiles(paths, options.noAtime ?? false, max, MANY_BUDGET);
  const out: (Buffer | Error)[] = [];
  for (const [i, r] of results.entries()) {
    if (r.skipped) {
      out.push(await alone(paths[i]!));
      continue;
    }
    try {
      out.push(checkedRead(r, paths[i]!, area, max));
    } catch (err) {
      out.push(asError(err));
    }
  }
  return out;
}

/** readBoundedMany: bytes one job reads in all, besides its first file (a listing's entries are mostly small). */
const MANY_BUDGET = 4 * 1024 * 1024;

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** An error as Node's fs calls give them (code, errno, syscall, path), of a negative errno. */
export function systemError(errno: number, syscall: string, path: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { errno, code, syscall, path });
}

const kindOfMode = (mode: number): Kind | 'other' => {
  const type = mode & fsc.S_IFMT;
  return type === fsc.S_IFREG ? 'file' : type === fsc.S_IFDIR ? 'dir' : type === fsc.S_IFLNK ? 'symlink' : 'other';
};

export function readBoundedSync(path: string, area: string, max: number, options: ReadOptions = {}): Buffer {
  return reachable(path, area, (p) => readBoundedHereSync(p, area, max, options));
}

function readBoundedHereSync(path: string, area: string, max: number, { noAtime = false, touch = false }: ReadOptions): Buffer {
  let fd: number;
  try {
    try {
      fd = openSync(path, READ_FLAGS | (noAtime ? fsc.O_NOATIME : 0));
    } catch (err) {
      if (!noAtime || (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      fd = openSync(path, READ_FLAGS);
    }
  } catch (err) {
    noLink(err, path);
  }
  try {
    const size = checkReadable(fstatSync(fd), fd, path, area, max);
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (touch) futimesSync(fd, new Date(), new Date());
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Scratch for sameBytesSync, one per thread: a dedup check allocates nothing. */
const SCRATCH = Buffer.allocUnsafe(256 * 1024);

/**
 * Does the regular file at `path` hold exactly `content`? Read in pieces into scratch memory and compared as
 * it goes (stops at the first difference); on a match its times are set to now when `touch`. Links, special
 * files and files of another size are no match; a missing file is ENOENT.
 */
export function sameBytesSync(path: string, area: string, content: Uint8Array, touch: boolean): boolean {
  return reachable(path, area, (p) => sameBytesHereSync(p, area, content, touch));
}

function sameBytesHereSync(path: string, area: string, content: Uint8Array, touch: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return false;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== content.length) return false;
    checkInside(fd, path, area);
    for (let at = 0; at < content.length; ) {
      const n = readSync(fd, SCRATCH, 0, Math.min(SCRATCH.length, content.length - at), at);
      if (n === 0 || SCRATCH.compare(content, at, at + n, 0, n) !== 0) return false;
      at += n;
    }
    if (touch) futimesSync(fd, new Date(), new Date());
    return true;
  } finally {
    closeSync(fd);
  }
}

function checkReadable(st: Stats, fd: number, path: string, area: string, max: number): number {
  checkSizeAndKind(kindOf(st), st.size, path, max);
  checkInside(fd, path, area);
  return st.size;
}

/** Only a regular file of at most `max` bytes is read. */
function checkSizeAndKind(kind: Kind | 'other', size: number, path: string, max: number): void {
  if (kind !== 'file') throw new UnsafeVaultNode(path, `is ${KIND_NAMES[kind]} where a regular file belongs`);
  if (size > max) throw new UnsafeVaultNode(path, `holds ${size} bytes, more than the format allows (${max})`);
}

/**
 * Create `path` exclusively for writing (never through a link), inside `area`; returns the descriptor.
 * A file that a symlinked directory put elsewhere is removed again before the refusal.
 */
export function createExclusiveSync(path: string, area: string, mode: number): number {
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | NOFOLLOW, mode);
  try {
    checkInside(fd, path, area);
    return fd;
  } catch (err) {
    const real = readlinkSync(procPath(fd));
    closeSync(fd);
    unlinkSync(real);
    throw err;
  }
}

/**
 * Open an existing regular file with no other names for writing over (never through a link), inside `area`;
 * the descriptor and what it was (its owner and mode, for the caller to make them what it needs).
 */
export function openRewriteSync(path: string, area: string): { fd: number; st: Stats } {
  return openFileSync(path, area, fsc.O_WRONLY | fsc.O_NONBLOCK);
}

/** open(2) of a regular file with no other names inside `area` (never through a link), with its fstat. */
function openFileSync(path: string, area: string, flags: number, mode?: number): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(path, flags | NOFOLLOW, mode);
  } catch (err) {
    noLink(err, path);
  }
  try {
    const st = fstatSync(fd);
    checkKind(st, fd, path, ['file']);
    checkInside(fd, path, area);
    return { fd, st };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

export async function createExclusive(path: string, area: string, mode: number): Promise<FileHandle> {
  const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | NOFOLLOW, mode);
  try {
    checkInside(fh.fd, path, area);
    return fh;
  } catch (err) {
    const real = readlinkSync(procPath(fh.fd));
    await fh.close();
    unlinkSync(real);
    throw err;
  }
}

/** mkdir -p of `dir` below `area`, one checked component at a time (a planted link is never walked into). */
export async function mkdirInside(dir: string, area: string, mode = 0o700): Promise<void> {
  // The area itself is the vault's (or the store the user named): made if missing, checked by the pins below.
  await mkdir(area, { recursive: true, mode });
  let at = area;
  for (const part of relative(area, dir).split('/').filter(Boolean)) {
    const next = join(at, part);
    await atName(next, area, (p) => mkdir(p, mode)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    at = next;
  }
}

export function mkdirInsideSync(dir: string, area: string, mode = 0o700): void {
  mkdirSync(area, { recursive: true, mode });
  let at = area;
  for (const part of relative(area, dir).split('/').filter(Boolean)) {
    const next = join(at, part);
    try {
      atNameSync(next, area, (p) => mkdirSync(p, mode));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    at = next;
  }
}

/**
 * Open a vault log or state file for appending: never through a link, only a regular file with no other
 * names, made private (0600) if it was not.
 */
export function openAppendSync(path: string, area: string): number {
  // Read and write: the caller may read back what others appended (positional reads ignore O_APPEND).
  const { fd, st } = openFileSync(path, area, fsc.O_RDWR | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NONBLOCK, 0o600);
  try {
    if ((st.mode & 0o7777) !== 0o600) fchmodSync(fd, 0o600);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
