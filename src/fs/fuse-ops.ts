/**
 * The fuse-native operations table: each handler runs its async operation and answers the kernel with
 * the value or a negative errno. fuse-native needs a number in every callback (cb() crashes it).
 */
import type { FsContext } from './context.js';
import type { OpTrace } from './op-trace.js';
import { E, fsError, toErrno } from './errno.js';
import type { FuseCaller, FuseOps } from './fuse-binding.js';
import * as attr from './ops-attr.js';
import * as dir from './ops-dir.js';
import * as file from './ops-file.js';
import * as xattr from './ops-xattr.js';

type Cb = ((code: number, value?: unknown) => void) & { context?: FuseCaller };

/** Who asks when the binding does not say (it always does since patch level 2): the daemon itself. */
const DAEMON: FuseCaller = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid, umask: 0 };

/**
 * A path libfuse has no name for (a file or directory removed while open: nullpath_ok) is only usable by
 * handle; a path-based operation on it finds nothing.
 */
function named(path: string | null): string {
  if (path === null) throw fsError(E.ENOENT);
  return path;
}

export function buildOps(ctx: FsContext, trace?: OpTrace): FuseOps {
  /**
   * A handler that runs `run` with the op's arguments followed by the caller, and answers with
   * `reply(result)`, or `cb(-errno)`. value ops answer (0, value), status ops (0), read/write the byte
   * count as the first argument. A synchronous throw is an answer too, never a crash of the daemon.
   */
  const handler =
    <A extends unknown[], R>(name: string, run: (...args: A) => Promise<R>, reply: (cb: Cb, result: R) => void) =>
    (...args: unknown[]) => {
      const answer = args.pop() as Cb;
      const done = trace?.start(name);
      const cb: Cb = done ? (code, value) => (done(), answer(code, value)) : answer;
      const fail = (err: unknown) => cb(toErrno(err, name, ctx.meta.logName(String(args[0])), ctx.log));
      let running: Promise<R>;
      try {
        running = run(...([...args, answer.context ?? DAEMON] as unknown as A));
      } catch (err) {
        return fail(err);
      }
      running.then((result) => reply(cb, result), fail);
    };
  const value = <A extends unknown[]>(name: string, run: (...args: A) => Promise<unknown>) => handler(name, run, (cb, v) => cb(0, v));
  const status = <A extends unknown[]>(name: string, run: (...args: A) => Promise<void>) => handler(name, run, (cb) => cb(0));
  const count = <A extends unknown[]>(name: string, run: (...args: A) => Promise<number>) => handler(name, run, (cb, n) => cb(n));

  return {
    getattr: value('getattr', (path: string) => attr.getattr(ctx, path)),
    fgetattr: value('fgetattr', (_path: string | null, fd: number) => attr.getattrOpen(ctx, fd)),
    access: status('access', (path: string) => attr.access(ctx, path)),
    statfs: value('statfs', () => attr.fsStats(ctx)),
    chmod: status('chmod', (path: string, mode: number) => attr.setMode(ctx, path, mode)),
    chown: status('chown', (path: string, uid: number, gid: number) => attr.setOwner(ctx, path, uid, gid)),
    utimens: status('utimens', (path: string, atime: attr.TimeSpec, mtime: attr.TimeSpec) => attr.setTimes(ctx, path, atime, mtime)),

    readdir: value('readdir', (path: string | null) => dir.list(ctx, named(path))),
    mkdir: status('mkdir', (path: string, mode: number, caller: FuseCaller) => dir.makeDir(ctx, path, mode, caller)),
    rmdir: status('rmdir', (path: string) => dir.removeDir(ctx, path)),
    unlink: status('unlink', (path: string) => dir.removeFile(ctx, path)),
    rename: status('rename', (from: string, to: string) => dir.rename(ctx, from, to)),
    symlink: status('symlink', (target: string, path: string, caller: FuseCaller) => dir.makeSymlink(ctx, target, path, caller)),
    readlink: value('readlink', (path: string) => dir.readSymlink(ctx, path)),
    mknod: status('mknod', (path: string, mode: number, rdev: number, caller: FuseCaller) => dir.makeNode(ctx, path, mode, rdev, caller)),
    fsyncdir: status('fsyncdir', (path: string | null) => dir.syncDir(ctx, named(path))),
    link: status('link', (from: string, to: string) => dir.link(ctx, from, to)),

    create: value('create', (path: string, mode: number, caller: FuseCaller) => file.create(ctx, path, mode, caller)),
    open: value('open', (path: string, _flags: number) => file.open(ctx, path)),
    // Handle-based: the path is null for a file removed while open (nullpath_ok), and never needed.
    read: count('read', (_path: string | null, fd: number, buf: Buffer, len: number, pos: number) => file.read(ctx, fd, buf, len, pos)),
    write: count('write', (_path: string | null, fd: number, buf: Buffer, len: number, pos: number) => file.write(ctx, fd, buf, len, pos)),
    flush: status('flush', (_path: string | null, fd: number) => file.flush(ctx, fd)),
    // fuse-native passes (path, datasync, fd): its README has the order wrong.
    fsync: status('fsync', (_path: string | null, _datasync: number, fd: number) => file.fsync(ctx, fd)),
    release: status('release', (_path: string | null, fd: number) => file.release(ctx, fd)),
    truncate: status('truncate', (path: string, size: number) => file.truncatePath(ctx, path, size)),
    ftruncate: status('ftruncate', (_path: string | null, fd: number, size: number) => file.truncateOpen(ctx, fd, size)),
    fallocate: status('fallocate', (_path: string | null, mode: number, offset: number, length: number, fd: number) => file.allocate(ctx, fd, mode, offset, length)),

    setxattr: status('setxattr', (path: string, name: string, value: Buffer, flags: number) => xattr.setXattr(ctx, path, name, value, flags)),
    getxattr: value('getxattr', (path: string, name: string) => xattr.getXattr(ctx, path, name)),
    listxattr: value('listxattr', (path: string) => xattr.listXattrs(ctx, path)),
    removexattr: status('removexattr', (path: string, name: string) => xattr.removeXattr(ctx, path, name)),
  };
}
