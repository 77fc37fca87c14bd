/**
 * Serving a vault at a mount point: opens the vault, clears a stale mount or leftovers of a crash,
 * mounts with fuse-native, and on unmount commits every open file first.
 */
import { open as openFile, readdir, rm, writeFile } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { WorkerPool } from '../lib/pool.js';
import { DiskStore } from '../store/disk-store.js';
import { FaultPlan } from '../store/fault-plan.js';
import { ChunkCache } from './chunk-cache.js';
import { type FsContext, commitFile, persistFor } from './context.js';
import { MemoryBudget } from './memory-budget.js';
import { type FullSweep, Reclaimer } from './reclaim.js';
import { ChunkReferences } from '../vault/references.js';
import { chunkFiles } from '../vault/walk.js';
import type { Logger } from './errno.js';
import { type FuseInstance, loadFuse } from './fuse-binding.js';
import { buildOps } from './fuse-ops.js';
import { ATTR_TIMEOUT_S, KERNEL_OPTIONS, raiseReadAhead } from './kernel-options.js';
import { type MetaCodec, plainCodec } from '../vault/meta-codec.js';
import { MetaTree } from '../vault/meta-tree.js';
import { OpenFiles } from './open-files.js';
import { processAlive } from '../vault/process-alive.js';
import { forceUnmount, isMounted, isStale } from './stale-mount.js';
import { checkMountPlace, realPath } from './mount-paths.js';
import { VaultError, initVault, readPid, vaultPaths } from '../vault/config.js';

export interface MountOptions {
  cacheMb?: number;
  threads?: number;
  log?: Logger;
  /** Metadata codec of a sealed vault (default: plain). */
  codec?: MetaCodec;
  /** In-memory blocks per open file before full blocks are encrypted early (default 128 MiB, within dirtyMb). */
  memBudgetBlocks?: number;
  /** Plaintext all open files may hold in memory together (MiB, default 256): then writers free their own. */
  dirtyMb?: number;
}

/** How often files whose last commit failed (a full disk) are committed again. */
const RETRY_COMMITS_MS = 5000;

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
      const fh = await openFile(pidFile, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
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
  const log = options.log ?? ((line: string) => console.error(`sefs: ${line}`));
  const config = await initVault(root);
  // Serving a sealed vault with the plain codec would write plaintext names beside sealed ones.
  if (config.seal && !options.codec?.sealed) throw new VaultError(`${root} is sealed: a passphrase is needed to mount it`);

  if (await isMounted(mnt)) {
    // A daemon killed a moment ago may still look alive to stat (cached attributes): its pid tells.
    if (!(await isStale(mnt)) && !(await lockHolderDead(root))) throw new VaultError(`${mnt} is already mounted`);
    log(`clearing a stale mount at ${mnt}`);
    await forceUnmount(mnt);
  }
  const present = await readdir(mnt).catch(() => [] as string[]);
  if (present.length > 0) throw new VaultError(`${mnt} is not empty: mounting would hide its ${present.length} entries`);
  const unlock = await lockVault(root);

  const paths = vaultPaths(root);
  // The workers verify every chunk against its name as they decrypt it: no second hash here.
  const store = new DiskStore(paths.chunks, { verify: false, batch: true, faults: FaultPlan.fromEnv() });
  store.onBackgroundError = (err) => log(`writing chunks in the background: ${err.message} (the commits that need them will retry)`);
  const meta = new MetaTree(paths.meta, paths.tmp, options.codec ?? plainCodec);
  const cleaned = (await meta.removeLeftovers()) + (await store.removeLeftovers());
  if (cleaned) log(`removed ${cleaned} temporary files left by an earlier crash`);

  const pool = new WorkerPool(options.threads);
  const cache = new ChunkCache(store, pool, (options.cacheMb ?? config.cacheMb) * 1024 * 1024);
  const budget = new MemoryBudget((options.dirtyMb ?? 256) * 1024 * 1024);
  const files = new OpenFiles({
    store,
    pool,
    cache,
    profile: config.profile,
    memBudgetBlocks: options.memBudgetBlocks ?? 128,
    budget,
    committed: (outcome) => ctx.reclaim?.committed(outcome),
  });
  const ctx: FsContext = { root, meta, files, log };
  files.persistFor = (file) => persistFor(ctx, file);
  ctx.reclaim = await startReclaiming(meta, store, files, log);
  // Files whose commit failed when they were closed keep their changes in memory: try again now and then.
  const retry = setInterval(() => {
    for (const file of files.unsaved()) {
      commitFile(ctx, file).then(
        () => {
          log(`commit of ${file.path || '(removed file)'} succeeded on retry`);
          files.retire(file);
          ctx.reclaim?.released();
        },
        () => {},
      );
    }
  }, RETRY_COMMITS_MS);
  retry.unref();

  const fuse = new Fuse(mnt, buildOps(ctx), {
    mkdir: true,
    force: false,
    timeout: false, // commits of large files may take longer than fuse-native's 15 s default
    attrTimeout: ATTR_TIMEOUT_S,
    entryTimeout: ATTR_TIMEOUT_S,
    extraOptions: KERNEL_OPTIONS.join(','),
  });
  try {
    await mountWith(fuse);
  } catch (err) {
    await pool.close();
    await unlock();
    throw new VaultError(`cannot mount ${mnt}: ${(err as Error).message}`);
  }
  await writeFile(paths.log, '', { flag: 'a' });
  const readAhead = await raiseReadAhead(mnt);
  if (readAhead) log(`kernel readahead stays at its default (sequential reads are slower): ${readAhead}`);

  let unmounting: Promise<void> | undefined;
  const unmount = (): Promise<void> =>
    (unmounting ??= (async () => {
      clearInterval(retry);
      for (const file of files.all()) {
        await commitFile(ctx, file).catch((err: Error) => log(`commit of ${file.path} at unmount failed, its unsaved changes are lost: ${err.message}`));
      }
      await ctx.reclaim?.close().catch((err: Error) => log(`reclaiming space at unmount: ${err.message}`));
      await new Promise<void>((res) => fuse.unmount(() => res()));
      if (await isMounted(mnt)) await forceUnmount(mnt).catch(() => {});
      await pool.close();
      await unlock();
    })());

  const collectGarbage = (dryRun: boolean): Promise<FullSweep> => {
    if (!ctx.reclaim) return Promise.reject(new VaultError('space is not reclaimed in this vault: some metadata entries cannot be read (run sefs fsck)'));
    return ctx.reclaim.sweepAll(dryRun);
  };
  return { mountpoint: mnt, vault: root, unmount, collectGarbage };
}

/**
 * Count what every entry names, then remove the chunk files none names (what a crash left behind), before
 * the mount serves anything. A vault with unreadable entries gets no reclamation (their chunks are unknown).
 */
async function startReclaiming(meta: MetaTree, store: DiskStore, files: OpenFiles, log: Logger): Promise<Reclaimer | undefined> {
  const { refs, damaged } = ChunkReferences.build(meta.metaDir, meta.codec);
  if (damaged.length > 0) {
    log(`space is not reclaimed while ${damaged.length} metadata entries cannot be read (first: ${damaged[0]}); run sefs fsck`);
    return undefined;
  }
  const reclaimer = new Reclaimer(refs, store, () => files.sequencers(), log, () => chunkFiles(store));
  let swept = 0;
  for (const chunk of chunkFiles(store)) {
    if (refs.has(chunk.hex)) continue;
    await store.delete(Buffer.from(chunk.hex, 'hex'));
    swept++;
  }
  if (swept > 0) log(`removed ${swept} chunks no file names (left by a crash or an older sefs)`);
  return reclaimer;
}
