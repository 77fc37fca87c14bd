/**
 * One vault being served, without FUSE: its chunk store, metadata tree, worker pool, chunk cache, open
 * files, space reclamation and the retry of failed commits, wired together as the operations (ops-*.ts)
 * expect them. mount.ts puts FUSE in front of it; tests drive the operations directly to force races.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { closeDirPins } from '../vault/safe-fs.js';
import { InodeNumbers } from '../vault/inode-numbers.js';
import { DiskStore } from '../store/disk-store.js';
import { CachedStore, DEFAULT_DISK_CACHE_MB } from '../store/cached-store.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { S3Store } from '../store/s3-store.js';
import { FaultPlan } from '../store/fault-plan.js';
import { WorkerPool } from '../lib/pool.js';
import type { VaultConfig } from '../vault/config.js';
import { vaultPaths } from '../vault/config.js';
import { type MetaCodec, plainCodec } from '../vault/meta-codec.js';
import { MetaTree } from '../vault/meta-tree.js';
import { ChunkReferences } from '../vault/references.js';
import { chunkFiles } from '../vault/walk.js';
import { BlockBuffers } from './block-buffers.js';
import { ChunkCache } from './chunk-cache.js';
import { type FsContext, commitFile, persistFor } from './context.js';
import type { Logger } from './errno.js';
import { MemoryBudget } from './memory-budget.js';
import { Mutex } from './mutex.js';
import { type OpenFile, OpenFiles } from './open-files.js';
import { Writeback } from './writeback.js';
import { Reclaimer } from './reclaim.js';

/**
 * Recycled whole-block buffers for written data (block-buffers.ts): 64 MiB of address space, touched as used.
 * A sequential writer holds at most 20 blocks (SEQUENTIAL_LEAD in stager.ts: two being written, up to three
 * groups of four being staged and one forming, blocks 0 and 1 until the commit), so three such writers never
 * take a buffer of their own.
 */
const BLOCK_BUFFERS = 64;

/** How often files whose last commit failed (a full disk) are committed again. */
const RETRY_COMMITS_MS = 5000;

export interface SessionOptions {
  cacheMb?: number;
  /** An S3 vault's local chunk cache, in MiB (default DEFAULT_DISK_CACHE_MB). */
  diskCacheMb?: number;
  threads?: number;
  log: Logger;
  /** Metadata codec of a sealed vault (default: plain). */
  codec?: MetaCodec;
  /** In-memory blocks per open file before full blocks are encrypted early (default 128 MiB, within dirtyMb). */
  memBudgetBlocks?: number;
  /** Plaintext all open files may hold in memory together (MiB, default 256): then writers free their own. */
  dirtyMb?: number;
  /** How long after a change the reclaimer sweeps (ms; tests shorten it). */
  sweepDelayMs?: number;
  /** A read-only mount changes nothing in the vault: no crash leftovers removed, no unreferenced chunk swept. */
  readOnly?: boolean;
}

export interface Session {
  ctx: FsContext;
  /** Decrypted chunks, shared by every file (the mount lets the binding read from its slab: slab-reads.ts). */
  cache: ChunkCache;
  /** Commit every open file (unmount), and run the sweep that is due. */
  commitAll(): Promise<void>;
  /** An S3 vault: wait for the upload queue (until it stalls: then it resumes at the next mount). */
  drainUploads(onProgress?: (pendingChunks: number, pendingBytes: number) => void): Promise<void>;
  /** Stop the retry timer and the worker pool. */
  close(): Promise<void>;
}

export async function openSession(root: string, config: VaultConfig, options: SessionOptions): Promise<Session> {
  const { log } = options;
  const paths = vaultPaths(root);
  // The workers verify every chunk against its name as they decrypt it: no second hash here.
  const local = new DiskStore(paths.chunks, { verify: false, batch: true, faults: FaultPlan.fromEnv() });
  local.onBackgroundError = (err) => log(`writing chunks in the background: ${err.message} (the commits that need them will retry)`);
  const meta = new MetaTree(paths.meta, paths.tmp, options.codec ?? plainCodec);
  const cleaned = options.readOnly ? 0 : (await meta.removeLeftovers()) + (await local.removeLeftovers());
  local.primeDurableDirs();
  if (!options.readOnly) meta.startFresh();
  if (cleaned) log(`removed ${cleaned} temporary files left by an earlier crash`);
  const cached = config.store === 's3' ? await openBucket(local, config, options) : undefined;
  const store: ChunkStore = cached ?? local;

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
    buffers: new BlockBuffers(pool, BLOCK_BUFFERS),
    committed: (outcome) => ctx.reclaim?.committed(outcome),
  });
  // A closed file's commit, written back: its failure keeps the changes for the retry below.
  const writeBack = async (file: OpenFile): Promise<void> => {
    const path = file.path; // a rename or unlink during the commit changes it
    // Still open (an O_TRUNC before its writes, a close of one of several handles): its last close queues it
    // again. Committing now could make a half-written content durable.
    if (file.handles > 0) return;
    try {
      await commitFile(ctx, file);
    } catch (err) {
      log(`write-back ${meta.logName(path)}: commit failed, changes kept in memory and retried: ${(err as Error).message}`);
    } finally {
      files.retire(file);
      ctx.reclaim?.released();
    }
  };
  const inodes = new InodeNumbers(paths.inodes);
  const ctx: FsContext = { root, meta, files, log, namespace: new Mutex(), writeback: new Writeback(writeBack, log, () => budget.over), inodes, lastRequestMs: 0 };
  files.persistFor = (file) => persistFor(ctx, file);
  // Read-only: nothing is committed or removed, so nothing is ever reclaimed either.
  const reclaiming = options.readOnly ? undefined : startReclaiming(ctx, store, local, options.sweepDelayMs);
  ctx.reclaim = reclaiming?.reclaimer;
  // Uploads start at once, not after the count's sweep (which a large vault's count puts off for seconds): a
  // chunk a crash left unnamed may go up before the sweep removes it from both places.
  if (cached && !options.readOnly) cached.startUploads();

  // Files whose commit failed when they were closed keep their changes in memory: try again now and then.
  const retry = setInterval(() => {
    for (const file of files.unsaved()) {
      if (ctx.writeback.has(file)) continue; // closed a moment ago: its write-back batch commits it
      commitFile(ctx, file).then(
        (committed) => {
          if (committed) log(`commit of ${file.path ? meta.logName(file.path) : '(removed file)'} succeeded on retry`);
          files.retire(file);
          ctx.reclaim?.released();
        },
        () => {},
      );
    }
  }, RETRY_COMMITS_MS);
  retry.unref();

  return {
    ctx,
    cache,
    commitAll: async () => {
      clearInterval(retry);
      await ctx.heldCreates?.stop();
      await ctx.heldWrites?.settle();
      await ctx.writeback.idle();
      for (const file of files.all()) {
        await commitFile(ctx, file).catch((err: Error) => log(`commit of ${meta.logName(file.path)} at unmount failed, its unsaved changes are lost: ${err.message}`));
      }
      await ctx.reclaim?.close().catch((err: Error) => log(`reclaiming space at unmount: ${err.message}`));
      await reclaiming?.counting; // stopped by close(): it ends at its next node
      await meta.dropSpares();
    },
    drainUploads: async (onProgress) => {
      await cached?.drain((p) => onProgress?.(p.pendingChunks, p.pendingBytes));
    },
    close: async () => {
      clearInterval(retry);
      // Not stopped by commitAll when the mount failed: no count may go on removing chunks without the vault's lock.
      if (ctx.reclaim && !ctx.reclaim.stopped) await ctx.reclaim.close().catch(() => {});
      await reclaiming?.counting;
      cached?.close();
      await pool.close();
      closeDirPins(); // the vault's directories are not held past its session
    },
  };
}

/** An S3 vault's store: the bucket (checked now: a bad setting fails the mount in one line) behind the cache. */
async function openBucket(local: DiskStore, config: VaultConfig, options: SessionOptions): Promise<CachedStore> {
  const remote = new S3Store(config.s3!);
  await remote.check();
  const cached = new CachedStore(local, remote, { capacityBytes: (options.diskCacheMb ?? DEFAULT_DISK_CACHE_MB) * 1024 * 1024, log: options.log, readOnly: options.readOnly });
  cached.load(chunkFiles(local));
  return cached;
}

/**
 * `store`: the vault's chunk store; `local`: its chunk files (the store itself, or an S3 vault's cache).
 * Chunks listed for a full sweep are the store's (the bucket's, for an S3 vault). The reclaimer removes
 * nothing until countReferences has counted what every entry names, in the background.
 */
function startReclaiming(ctx: FsContext, store: ChunkStore, local: DiskStore, delayMs?: number): { reclaimer: Reclaimer; counting: Promise<void> } {
  const { meta, files, log } = ctx;
  const list = store instanceof CachedStore ? () => store.list() : () => chunkFiles(local);
  const reclaimer = new Reclaimer(new ChunkReferences(), store, () => files.sequencers(), log, (dir) => meta.syncDir(dir), list, delayMs);
  const counting = countReferences(meta, local, reclaimer, log, () => ctx.lastRequestMs).catch((err: Error) => {
    reclaimer.cannotCount(`counting what the files name failed: ${err.message}`);
    log(`space is not reclaimed in this session: counting what the files name failed: ${err.message}`);
  });
  return { reclaimer, counting };
}

/** The count's walk gives the event loop back this often (its reads are synchronous). */
const COUNT_SLICE_MS = 2;
/**
 * While requests keep coming (one reached JS within COUNT_BUSY_MS), the walk rests COUNT_REST_MS after each
 * slice: the user who just mounted (ls -lR, a backup) comes first, and the count still ends, more slowly.
 */
const COUNT_BUSY_MS = 100;
const COUNT_REST_MS = 50;
/** A count a rename or link may have made miss an entry is made again once none has begun for this long. */
const COUNT_QUIET_MS = 1000;
/** SEFS_TEST_COUNT_SLOW_MS (tests): the count waits this long after each node, so a test can act during it. */
const COUNT_SLOW_MS = Number(process.env.SEFS_TEST_COUNT_SLOW_MS ?? 0);

/** What the count's walk does after each node: give the event loop back every slice, and rest while requests come. */
function countPacer(lastRequestMs: () => number): () => Promise<void> | undefined {
  let sliceStart = performance.now();
  const restart = () => void (sliceStart = performance.now());
  return () => {
    if (COUNT_SLOW_MS > 0) return sleep(COUNT_SLOW_MS);
    const now = performance.now();
    if (now - sliceStart < COUNT_SLICE_MS) return undefined;
    const busy = now - lastRequestMs() < COUNT_BUSY_MS;
    return (busy ? sleep(COUNT_REST_MS) : new Promise<void>((r) => setImmediate(r))).then(restart);
  };
}

/**
 * Count what every entry names while the mount serves (a walk of meta/: seconds for a large vault, which the
 * mount used to make before serving), then remove the chunk files none names (what a crash left behind, or
 * what was dropped meanwhile). A rename or link during the walk may have moved an entry past it unseen: the
 * count is made again. A vault with unreadable entries gets no reclamation (their chunks are unknown).
 */
async function countReferences(meta: MetaTree, local: DiskStore, reclaimer: Reclaimer, log: Logger, lastRequestMs: () => number): Promise<void> {
  const started = performance.now();
  for (let tries = 1; ; tries++) {
    // A rename or link already running could move an entry past the walk without changing `moves`; after a
    // count that saw one, wait for a quiet moment (rsync renames every file it writes).
    for (let quiet = tries === 1 ? COUNT_QUIET_MS : 0, seen = meta.moves; quiet < COUNT_QUIET_MS || meta.movesInFlight > 0; ) {
      if (reclaimer.stopped) return;
      await sleep(50);
      quiet = meta.moves === seen && meta.movesInFlight === 0 ? quiet + 50 : 0;
      seen = meta.moves;
    }
    const moves = meta.moves;
    const refs = new ChunkReferences();
    reclaimer.countingInto(refs);
    const { damaged, named } = await refs.countLive(meta.metaDir, meta.codec, countPacer(lastRequestMs), () => reclaimer.stopped);
    if (reclaimer.stopped) return;
    if (damaged.length > 0) {
      reclaimer.cannotCount('space is not reclaimed in this vault: some metadata entries cannot be read (run sefs fsck)');
      log(`space is not reclaimed while ${damaged.length} metadata entries cannot be read (first: ${meta.logName(damaged[0]!)}); run sefs fsck`);
      return;
    }
    if (meta.moves !== moves) continue;
    // Records no name reaches (a crash after a last unlink): their chunks go with the sweep below. In the same
    // turn as the check above: no link can have named one since the walk.
    const orphans = meta.removeOrphanRecords(named);
    if (orphans > 0) log(`removed ${orphans} hard-link records no name reaches (left by a crash)`);
    break;
  }
  // What a crash left in the cache unnamed (the bucket's leftovers wait for sefs gc: listing it costs requests).
  const swept = await reclaimer.counted(() => chunkFiles(local));
  if (swept > 0) log(`removed ${swept} chunks no file names (left by a crash or an older sefs)`);
  const ms = performance.now() - started;
  if (ms > 2000 || COUNT_SLOW_MS > 0) log(`counted what the files name in ${(ms / 1000).toFixed(1)} s: space is reclaimed from now on`);
}
