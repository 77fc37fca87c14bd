/**
 * Creates the FUSE binding answers itself (fuse-native patch level 11): in a plain vault, a create in a directory
 * whose names the binding knows (patch levels 8 and 10) renames an inode JS prepared to the new name, sets its
 * owner, mode and times, and answers, without a round trip through the JS thread (for a small file that cp, tar,
 * rsync or git checkout makes, the last of its requests that waited for JS: native-notes/small-files.md).
 *
 * What keeps JS's view whole:
 * - Each prepared inode is a fresh inode of tmp/ (fresh-entries.ts) already holding the entry createEmpty would
 *   write (an empty file with its inode number), with a handle number reserved for it (OpenFiles.reserveHandle).
 * - JS takes what the binding made (adopt) before it handles any request at all (fuse-ops.ts) and before it
 *   commits at unmount, and registers each as its own create would: the entry cached, the file open under its
 *   handle, its writes held (held-writes.ts; the binding holds them from the create on). A request that could
 *   see the new file reaches JS only after its create was answered, so after the binding recorded it.
 * - No more are prepared than the write-back queue has room for (a JS create waits for room: writeback.ts).
 * - Anything the binding cannot do alike (a sealed vault, a name not plain ASCII, a directory whose names it does
 *   not know, no prepared inode, any failure) is JS's create, as before.
 */
import { closeSync } from 'node:fs';
import type { FsContext } from './context.js';
import type { FuseInstance } from './fuse-binding.js';
import { EMPTY_ENTRY } from '../vault/meta-entry.js';
import { MAX_FILE_SIZE } from './sequencer.js';

/** What the patched binding offers for this (fuse-binding.ts, level 11). */
export type HeldCreateBinding = Pick<FuseInstance, 'createsStart' | 'giveCreates' | 'createsMade' | 'takeCreates' | 'createStats' | 'createsPause'>;

/** Prepared inodes the binding keeps at hand: a burst of creates uses them faster than one refill makes them. */
const READY = 48;
/** Refilled once fewer than this are at hand. */
const LOW = 32;

export class HeldCreates {
  private on = true;
  private filling: Promise<void> | undefined;
  private fillQueued = false;
  /** Prepared inodes the binding had closed unused, as last counted. */
  private dropped = 0;

  private constructor(
    private readonly binding: HeldCreateBinding,
    private readonly ctx: FsContext,
  ) {}

  /** Creates answered by `binding` in the vault of `ctx` from now on; undefined where they cannot be (sealed). */
  static start(binding: HeldCreateBinding, ctx: FsContext): HeldCreates | undefined {
    if (ctx.meta.codec.sealed) return undefined;
    const fd = ctx.meta.holdRoot();
    let on: boolean;
    try {
      on = binding.createsStart(fd, MAX_FILE_SIZE); // the binding keeps a descriptor of its own
    } finally {
      closeSync(fd);
    }
    if (!on) return undefined;
    const held = new HeldCreates(binding, ctx);
    ctx.meta.dirTimesGuard = (fn) => {
      binding.createsPause(true);
      try {
        return fn();
      } finally {
        binding.createsPause(false);
      }
    };
    held.fillSoon();
    return held;
  }

  /** Whether the binding answered creates JS has not taken yet (cheap: asked before every request). */
  get pending(): boolean {
    return this.binding.createsMade() > 0;
  }

  /** Register every create the binding answered, in order (before any request is handled: fuse-ops.ts). */
  adopt(): void {
    for (const [fh, path, ino] of this.binding.takeCreates()) {
      this.ctx.meta.adoptCreated(path, ino);
      this.ctx.files.adopt(fh, path, { entry: EMPTY_ENTRY });
      this.ctx.heldWrites?.adoptHeld(fh);
    }
    this.fillSoon();
  }

  /** adopt(), when there is anything to take. */
  adoptIfAny(): void {
    if (this.pending) this.adopt();
  }

  /** Stop (unmount): the binding answers no more creates, and what it made is taken. */
  async stop(): Promise<void> {
    this.on = false;
    await this.filling;
    this.binding.createsStart(-1, 0); // closes the prepared inodes it holds (tmp/ is emptied at unmount)
    this.adopt();
  }

  /** The binding's counts, for the op trace. */
  report(): string {
    const { ready, made, passed } = this.binding.createStats();
    return `creates answered in the binding: ${made}, passed to JS for want of a prepared inode or after a failure: ${passed}; prepared inodes at hand: ${ready}`;
  }

  /** Prepare more inodes if few are at hand (after a create JS made, perhaps for want of them). */
  fillSoon(): void {
    if (this.fillQueued || this.filling || !this.on) return;
    if (this.binding.createStats().ready >= LOW) return;
    this.fillQueued = true;
    setImmediate(() => {
      this.fillQueued = false;
      this.filling ??= this.fill()
        .catch((err: Error) => this.ctx.log(`preparing inodes for new files: ${err.message} (creates are made by JS meanwhile)`))
        .finally(() => (this.filling = undefined));
    });
  }

  /** Prepare inodes until READY are at hand, while the write-back queue has room for them. */
  private async fill(): Promise<void> {
    this.countDropped();
    let ready = this.binding.createStats().ready;
    while (this.on && ready < READY && this.ctx.writeback.roomFor(READY)) {
      const items: [number, string, number, number, number][] = [];
      let taken = 0;
      try {
        while (ready + items.length < READY && this.on) {
          const prepared = await this.ctx.meta.prepareCreate(() => this.ctx.inodes.allocate());
          if (!prepared) break;
          items.push([prepared.dirFd, prepared.name, prepared.fd, prepared.ino, this.ctx.files.reserveHandle()]);
        }
        if (items.length === 0) return;
        taken = this.binding.giveCreates(items);
      } finally {
        // Not taken (stopped meanwhile, or a failure above): never used.
        for (const item of items.slice(taken)) closeSync(item[2]);
        this.ctx.meta.preparedGone(items.length - taken);
      }
      if (taken < items.length) return;
      ready = this.binding.createStats().ready;
    }
  }

  /** Prepared inodes the binding closed unused (a failed create, or gone): the fresh pool makes others. */
  private countDropped(): void {
    const { dropped } = this.binding.createStats();
    this.ctx.meta.preparedGone(dropped - this.dropped);
    this.dropped = dropped;
  }
}
