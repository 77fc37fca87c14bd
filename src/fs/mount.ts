/**
 * Serving a vault at a mount point: opens the vault, clears a stale mount or leftovers of a crash,
 * mounts with fuse-native, and on unmount commits every open file first.
 */
import { open as openFile, readdir, rm } from 'node:fs/promises';
import { closeSync, constants as fsc } from 'node:fs';
import type { FullSweep } from './reclaim.js';
import { type FuseInstance, loadFuse } from './fuse-binding.js';
import { type SessionOptions, openSession } from './session.js';
import { buildOps } from './fuse-ops.js';
import { OpTrace } from './op-trace.js';
import { readOnlyOps } from './read-only.js';
import { ATTR_TIMEOUT_S, KERNEL_OPTIONS, raiseReadAhead } from './kernel-options.js';
import { processAlive } from '../vault/process-alive.js';
import { forceUnmount, isSefsMount, isStale, mountEntry, mountSource } from './stale-mount.js';
import { checkMountPlace, realPath } from './mount-paths.js';
import { VaultError, initVault, readPid, vaultPaths } from '../vault/config.js';
import { assertNotSealed } from '../vault/seal.js';
import { openAppendSync, vaultArea } from '../vault/safe-fs.js';
import { logLine } from './errno.js';
import { writeUploadStatus } from './upload-status.js';
import { SlabReads } from './slab-reads.js';
import { SiblingReads } from './sibling-reads.js';
import { HeldWrites } from './held-writes.js';
import { applyHeldChange } from './ops-attr.js';
import { HeldCreates } from './held-creates.js';
import { DirNames } from './dir-names.js';
import { unmountFromKernel } from './kernel-unmount.js';

/** The session's options (session.ts; the log defaults to stderr), and how the kernel mounts it. */
export type MountOptions = Partial<SessionOptions> & {
  /** Mount `ro` and refuse every change with EROFS in the daemon too (read-only.ts). */
  readOnly?: boolean;
  /** Let other users than the one mounting see the files (libfuse's allow_other). */
  allowOther?: boolean;
  /** Further generic mount options passed to the kernel (noexec, noatime, ...). */
  kernelOptions?: readonly string[];
};

export interface MountedVault {
  readonly mountpoint: string;
  readonly vault: string;
  /** Commit every open file and unmount. */
  unmount(): Promise<void>;
  /** Remove every chunk nothing names or holds (sefs gc of a mounted vault asks the daemon for this). */
  collectGarbage(dryRun: boolean): Promise<FullSweep>;
}

function mountWith(fuse: FuseInstance): Promise<void> {
  return new Promise((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
}

/** True when the vault's pid file names a process that is gone. */
async function lockHolderDead(root: string): Promise<boolean> {
  const pid = await readPid(root);
  return pid > 0 && !processAlive(pid);
}

/** One mount per vault: a pid file, taken over when its process is gone. */
async function lockVault(root: string): Promise<() => Promise<void>> {
  const pidFile = vaultPaths(root).pid;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await openFile(pidFile, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(pidFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = await readPid(root);
      if (pid && pid !== process.pid && processAlive(pid)) throw new VaultError(`vault ${root} is already mounted by process ${pid}`);
      await rm(pidFile, { force: true });
    }
  }
  throw new VaultError(`cannot lock vault ${root}`);
}

export async function mountVault(vault: string, mountpoint: string, options: MountOptions = {}): Promise<MountedVault> {
  // Before anything is created: an unpatched binding or a mount nested in its vault must not get started.
  const Fuse = loadFuse();
  await checkMountPlace(vault, mountpoint);
  // Real paths throughout: /proc/mounts, the registry and fusermount know a mount by its real path.
  const root = await realPath(vault);
  const mnt = await realPath(mountpoint);
  const log = options.log ?? ((line: string) => console.error(`sefs: ${logLine(line)}`));
  const config = await initVault(root);
  // Serving a sealed vault with the plain codec would write plaintext names beside sealed ones.
  if (config.seal && !options.codec?.sealed) throw new VaultError(`${root} is sealed: a passphrase is needed to mount it`);
  // Nor one whose sefs.json lost its seal section (seal.ts).
  if (!options.codec?.sealed) assertNotSealed(vaultPaths(root).meta, root);

  const there = await mountEntry(mnt);
  if (there) {
    // Only a dead mount of this very vault is cleared: anything else mounted there is not ours to touch.
    if (!isSefsMount(there, root)) throw new VaultError(`${mnt} is already mounted (${there.fstype} from ${there.source})`);
    // A daemon killed a moment ago may still look alive to stat (cached attributes): its pid tells.
    if (!(await isStale(mnt)) && !(await lockHolderDead(root))) throw new VaultError(`${mnt} is already mounted`);
    log(`clearing a stale mount at ${mnt}`);
    await forceUnmount(mnt);
  }
  const present = await readdir(mnt).catch(() => [] as string[]);
  if (present.length > 0) throw new VaultError(`${mnt} is not empty: mounting would hide its ${present.length} entries`);
  // The log exists, private, and is no link, before anything is served (daemon mode appends to it).
  closeSync(openAppendSync(vaultPaths(root).log, vaultArea(root)));
  const unlock = await lockVault(root);

  const paths = vaultPaths(root);
  const session = await openSession(root, config, { ...options, log });
  const { ctx } = session;

  const trace = OpTrace.fromEnv();
  const ops = buildOps(ctx, trace);
  const kernelOptions = [...KERNEL_OPTIONS, `fsname=${mountSource(root)}`, ...(options.readOnly ? ['ro'] : []), ...(options.allowOther ? ['allow_other'] : []), ...(options.kernelOptions ?? [])];
  const fuse = new Fuse(mnt, options.readOnly ? readOnlyOps(ops) : ops, {
    mkdir: true,
    force: false,
    timeout: false, // commits of large files may take longer than fuse-native's 15 s default
    attrTimeout: ATTR_TIMEOUT_S,
    entryTimeout: ATTR_TIMEOUT_S,
    extraOptions: kernelOptions.join(','),
  });
  // The other names of a file changed through one show the change at once, not after the attribute timeout.
  ctx.meta.onLinkedChange = (ino) => fuse.invalidateIno(ino);
  ctx.meta.onEntryPlaced = (path) => fuse.dropAttrs(path);
  try {
    await mountWith(fuse);
  } catch (err) {
    await session.close();
    await unlock();
    throw new VaultError(`cannot mount ${mnt}: ${(err as Error).message}`);
  }
  ctx.slabReads = new SlabReads(fuse, session.cache);
  ctx.siblingReads = new SiblingReads(ctx.meta, session.cache);
  if (!options.readOnly) ctx.heldWrites = new HeldWrites(fuse, ctx.files, log, (path) => ctx.meta.logName(path));
  ctx.dirNames = new DirNames(fuse, ctx.meta, ctx.files);
  if (!options.readOnly) ctx.heldCreates = HeldCreates.start(fuse, ctx);
  if (ctx.heldWrites) ctx.heldWrites.applyChange = (change) => applyHeldChange(ctx, change);
  if (ctx.heldWrites && ctx.heldCreates) ctx.heldWrites.adoptCreates = () => ctx.heldCreates?.adoptIfAny();
  const readAhead = await raiseReadAhead(mnt);
  if (readAhead) log(`kernel readahead stays at its default (sequential reads are slower): ${readAhead}`);

  let unmounting: Promise<void> | undefined;
  const unmount = (): Promise<void> =>
    (unmounting ??= (async () => {
      const step = slowStepLog(log);
      await step('committing open files', session.commitAll());
      for (const line of trace?.report(fuse.attrStats(), fuse.readStats(), fuse.writeStats()) ?? []) log(line);
      if (trace) log(ctx.meta.freshUse());
      if (trace && ctx.heldCreates) log(ctx.heldCreates.report());
      if (trace && ctx.siblingReads) log(ctx.siblingReads.report());
      await step('unmounting from the kernel', unmountFromKernel(fuse, mnt, log));
      // An S3 vault: the chunks not yet in the bucket go up before the daemon ends (sefs umount shows this).
      await step('uploading', session.drainUploads((chunks, bytes) => writeUploadStatus(root, chunks, bytes)));
      await writeUploadStatus(root, 0, 0);
      await step('closing the session', session.close());
      await unlock();
    })());

  const collectGarbage = (dryRun: boolean): Promise<FullSweep> => {
    if (options.readOnly) return Promise.reject(new VaultError('the vault is mounted read-only: nothing is removed from it (unmount it, then run sefs gc)'));
    if (!ctx.reclaim) return Promise.reject(new VaultError('space is not reclaimed in this vault: some metadata entries cannot be read (run sefs fsck)'));
    return ctx.reclaim.sweepAll(dryRun);
  };
  return { mountpoint: mnt, vault: root, unmount, collectGarbage };
}

/** How long an unmount step runs before the log says which one it is (a hung unmount names its step). */
const SLOW_STEP_MS = 10_000;

/** Await an unmount step; while it runs past SLOW_STEP_MS, log its name every SLOW_STEP_MS. */
function slowStepLog(log: (line: string) => void) {
  return async <T>(name: string, work: Promise<T>): Promise<T> => {
    const started = Date.now();
    const timer = setInterval(() => log(`unmount: still ${name} after ${Math.round((Date.now() - started) / 1000)} s`), SLOW_STEP_MS);
    try {
      return await work;
    } finally {
      clearInterval(timer);
    }
  };
}
