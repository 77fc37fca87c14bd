/**
 * The fuse-native operations table: each handler runs its async operation and answers the kernel with
 * the value or a negative errno. fuse-native needs a number in every callback (cb() crashes it).
 */
import { dirname } from 'node:path';
import type { FsContext } from './context.js';
import type { OpTrace } from './op-trace.js';
import { E, fsError, toErrno } from './errno.js';
import type { FuseCaller, FuseOps } from './fuse-binding.js';
import * as attr from './ops-attr.js';
import * as dir from './ops-dir.js';
import * as file from './ops-file.js';
import * as xattr from './ops-xattr.js';

type Cb = ((code: number, value?: unknown, more?: unknown) => void) & { context?: FuseCaller };

/** What a change left, for the binding's attribute cache: its node's attributes and its directory's. */
interface ChangedAttrs {
  self?: attr.FuseStat;
  parent?: attr.FuseStat;
}

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
      ctx.lastRequestMs = performance.now();
      const done = trace?.start(name);
      const cb: Cb = done ? (code, value, more) => (done(), answer(code, value, more)) : answer;
      const fail = (err: unknown) => cb(toErrno(err, name, ctx.meta.logName(String(args[0])), ctx.log));
      let running: Promise<R>;
      try {
        const go = (): Promise<R> => run(...([...args, answer.context ?? DAEMON] as unknown as A));
        // Creates and writes the binding answered are taken before anything else is answered (held-creates.ts,
        // held-writes.ts).
        ctx.heldCreates?.adoptIfAny();
        running = ctx.heldWrites?.pending ? ctx.heldWrites.settle().then(go) : go();
      } catch (err) {
        return fail(err);
      }
      running.then((result) => reply(cb, result), fail);
    };
  const value = <A extends unknown[]>(name: string, run: (...args: A) => Promise<unknown>) => handler(name, run, (cb, v) => cb(0, v));
  const status = <A extends unknown[]>(name: string, run: (...args: A) => Promise<void>) => handler(name, run, (cb) => cb(0));
  const count = <A extends unknown[]>(name: string, run: (...args: A) => Promise<number>) => handler(name, run, (cb, n) => cb(n));
  /**
   * A change answered with the attributes it left on its node and on the directory holding it: the binding
   * (patch level 6) keeps them for the getattrs that follow, which then need no round trip here (libfuse's
   * own after every setattr and new node, the kernel's of a directory whose entries changed, before the next
   * name is looked up in it). Attributes that cannot be read are left out (those getattrs then ask us).
   */
  const shown = (at: () => Promise<attr.FuseStat>) => at().catch(() => undefined);
  const attrsAfter = async (self: (() => Promise<attr.FuseStat>) | undefined, inDirOf?: string): Promise<ChangedAttrs> => ({
    self: self && (await shown(self)),
    parent: inDirOf === undefined ? undefined : await shown(() => attr.getattr(ctx, dirname(inDirOf))),
  });
  const change = <A extends unknown[]>(name: string, run: (...args: A) => Promise<void>, after: (...args: A) => Promise<ChangedAttrs>) =>
    handler(name, async (...args: A) => (await run(...args), after(...args)), (cb, attrs) => cb(0, attrs));
  const node = (path: string) => attrsAfter(() => attr.getattr(ctx, path));
  const newNode = (path: string) => attrsAfter(() => attr.getattr(ctx, path), path);
  const goneNode = (path: string) => attrsAfter(undefined, path);

  return {
    // A lookup of a missing name that reached JS: counted towards listing its directory for the binding.
    getattr: value('getattr', (path: string) =>
      attr.getattr(ctx, path).catch((err: unknown) => {
        if (ctx.dirNames && toErrno(err, 'getattr', path, () => {}) === -E.ENOENT) ctx.dirNames.missed(path);
        throw err;
      }),
    ),
    fgetattr: value('fgetattr', (_path: string | null, fd: number) => attr.getattrOpen(ctx, fd)),
    access: status('access', (path: string) => attr.access(ctx, path)),
    statfs: value('statfs', () => attr.fsStats(ctx)),
    chmod: change('chmod', (path: string, mode: number) => attr.setMode(ctx, path, mode), node),
    chown: change('chown', (path: string, uid: number, gid: number) => attr.setOwner(ctx, path, uid, gid), node),
    utimens: change('utimens', (path: string, atime: attr.TimeSpec, mtime: attr.TimeSpec) => attr.setTimes(ctx, path, atime, mtime), node),

    // The names, and the attributes of the first ones (the binding answers the lookups that follow: ls -l, rm -r).
    readdir: handler('readdir', (path: string | null) => dir.listWithAttrs(ctx, named(path)), (cb, l) => cb(0, l.names, l.stats)),
    mkdir: change('mkdir', (path: string, mode: number, caller: FuseCaller) => dir.makeDir(ctx, path, mode, caller), newNode),
    rmdir: change('rmdir', (path: string) => dir.removeDir(ctx, path), goneNode),
    unlink: change('unlink', (path: string) => dir.removeFile(ctx, path), goneNode),
    rename: status('rename', (from: string, to: string) => dir.rename(ctx, from, to)),
    symlink: change('symlink', (target: string, path: string, caller: FuseCaller) => dir.makeSymlink(ctx, target, path, caller), (_target, path) => newNode(path)),
    readlink: value('readlink', (path: string) => dir.readSymlink(ctx, path)),
    mknod: change('mknod', (path: string, mode: number, rdev: number, caller: FuseCaller) => dir.makeNode(ctx, path, mode, rdev, caller), newNode),
    fsyncdir: status('fsyncdir', (path: string | null) => dir.syncDir(ctx, named(path))),
    // The new name's node has two names now (the binding keeps no such node's attributes): its directory's.
    link: change('link', (from: string, to: string) => dir.link(ctx, from, to), (_from, to) => goneNode(to)),

    // The new handle, and the file's attributes for the fgetattr libfuse sends right after a create.
    create: handler(
      'create',
      async (path: string, mode: number, caller: FuseCaller) => {
        const fd = await file.create(ctx, path, mode, caller);
        return { fd, attrs: await attrsAfter(() => attr.getattrOpen(ctx, fd), path) };
      },
      (cb, made) => cb(0, made.fd, made.attrs),
    ),
    open: value('open', (path: string, flags: number) => file.open(ctx, path, flags)),
    // Handle-based: the path is null for a file removed while open (nullpath_ok), and never needed.
    read: count('read', (_path: string | null, fd: number, buf: Buffer, len: number, pos: number) => file.read(ctx, fd, buf, len, pos)),
    write: count('write', (_path: string | null, fd: number, buf: Buffer, len: number, pos: number) => file.write(ctx, fd, buf, len, pos)),
    // No flush: a close has nothing to wait for (writes are in every handle's view at once, and the release
    // that follows the last close queues the write-back), so libfuse answers the first FLUSH ENOSYS and the
    // kernel sends none after it: one round trip less on every close(2) of a written file.
    // fuse-native passes (path, datasync, fd): its README has the order wrong.
    fsync: status('fsync', (_path: string | null, _datasync: number, fd: number) => file.fsync(ctx, fd)),
    release: status('release', (_path: string | null, fd: number) => file.release(ctx, fd)),
    truncate: change('truncate', (path: string, size: number) => file.truncatePath(ctx, path, size), node),
    ftruncate: change('ftruncate', (_path: string | null, fd: number, size: number) => file.truncateOpen(ctx, fd, size), (_path, fd) => attrsAfter(() => attr.getattrOpen(ctx, fd))),
    fallocate: status('fallocate', (_path: string | null, mode: number, offset: number, length: number, fd: number) => file.allocate(ctx, fd, mode, offset, length)),

    setxattr: status('setxattr', (path: string, name: string, value: Buffer, flags: number) => xattr.setXattr(ctx, path, name, value, flags)),
    getxattr: value('getxattr', (path: string, name: string) => xattr.getXattr(ctx, path, name)),
    listxattr: value('listxattr', (path: string) => xattr.listXattrs(ctx, path)),
    removexattr: status('removexattr', (path: string, name: string) => xattr.removeXattr(ctx, path, name)),
  };
}
