/**
 * Staging: full in-memory blocks of an open file are encrypted and stored in the background, a few at a time,
 * so memory stays bounded whatever the file size (the encrypted chunks in the vault are the spill area) and
 * a sequential write has little left to do at close.
 *
 * Blocks 0 and 1 wait for the commit: their keys come from the last two chunks. Without memory pressure only
 * blocks a sequential writer has left behind (two blocks back) are staged, so rewrites of a block being
 * written, and random writes that come back to blocks, do not waste encryptions and chunk files. Under
 * pressure (too many blocks in this file, or the daemon's budget spent) the blocks written longest ago go
 * first, only as many as needed.
 *
 * A failure leaves its blocks in memory, is reported once (to the next write or commit), and stops staging
 * until the file is written to again: never a retry loop.
 */
import type { ChunkWriter } from './chunk-writer.js';
import { BLOCK, type FileContent, type MemBlock } from './file-content.js';
import type { MemoryBudget } from './memory-budget.js';

/**
 * Blocks staged together: hashed in one worker message and encrypted in another, so their SHA3 passes share
 * the four-way hash. Up to three groups are in flight, enough for both workers.
 */
const STAGE_GROUP = 4;
const STAGING_CONCURRENCY = 3 * STAGE_GROUP;

/**
 * Blocks a sequential writer may hold in memory while its staging runs: blocks 0 and 1, two being written,
 * the groups in flight and one forming. Past that it waits for a group to be stored. Staging is what bounds a
 * sequential write, so blocks held further ahead only cost: beyond the shared block buffers (session.ts) each
 * takes a zeroed buffer of its own, copied again for each of its jobs (native-notes/benchmarking.md).
 */
export const SEQUENTIAL_LEAD = 4 + STAGING_CONCURRENCY + STAGE_GROUP;

export class Stager {
  private readonly inFlight = new Map<number, Promise<void>>();
  private error: Error | undefined;
  private halted = false;
  private sequentialWriter = true;
  private lastWriteEnd = 0;

  constructor(
    private readonly content: FileContent,
    private readonly writer: ChunkWriter,
    /** Blocks kept in memory per file before full ones are staged regardless of the write pattern. */
    private readonly blocksPerFile: number,
    private readonly budget?: MemoryBudget,
  ) {}

  /** A write of [offset, end) happened: staging may resume, and learns whether the writer is sequential. */
  wrote(offset: number, end: number): void {
    this.sequentialWriter = offset === this.lastWriteEnd;
    this.lastWriteEnd = end;
    this.halted = false;
    this.stage();
  }

  /** Start staging what is ready (see the file comment). */
  stage(): void {
    if (this.halted) return;
    const content = this.content;
    const excess = Math.max(content.memBlockCount - this.blocksPerFile, this.budget?.over ? STAGE_GROUP : 0);
    const pressure = excess > 0;
    if (!pressure && !this.sequentialWriter) return;
    const limit = pressure ? Math.floor(content.size / BLOCK) : Math.floor(this.lastWriteEnd / BLOCK) - 1;
    let ready: number[] = [];
    for (const b of content.memBlockIndices()) {
      if (b >= 2 && b < limit && (b + 1) * BLOCK <= content.size && !this.inFlight.has(b)) ready.push(b);
    }
    if (pressure) ready = ready.slice(0, Math.max(0, excess - this.inFlight.size));
    ready.sort((x, y) => x - y);
    // Whole groups only, unless memory is short: the rest waits for the writer (or the commit).
    while (ready.length >= (pressure ? 1 : STAGE_GROUP) && this.inFlight.size < STAGING_CONCURRENCY) {
      const group = ready.splice(0, STAGE_GROUP);
      const job = this.stageGroup(group)
        .then(
          () => this.stage(),
          (err: Error) => {
            this.error ??= err;
            this.halted = true;
          },
        )
        .finally(() => {
          for (const b of group) this.inFlight.delete(b);
        });
      for (const b of group) this.inFlight.set(b, job);
    }
  }

  /** Wait until no staging is in flight. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
  }

  /** Hold a writer while too many blocks sit in memory and staging can make room. */
  async waitForRoom(): Promise<void> {
    const limit = this.sequentialWriter ? Math.min(this.blocksPerFile, SEQUENTIAL_LEAD) : this.blocksPerFile;
    while (this.content.memBlockCount > limit && this.inFlight.size > 0) {
      await Promise.race(this.inFlight.values());
    }
  }

  /** Throw a staging failure not yet reported (once). */
  throwError(): void {
    const err = this.error;
    this.error = undefined;
    if (err) throw err;
  }

  /** Encrypt full in-memory blocks and put their chunks in the store; blocks written to meanwhile stay in memory. */
  private async stageGroup(group: number[]): Promise<void> {
    const content = this.content;
    const blocks = group.map((b) => content.block(b) as MemBlock);
    const versions = blocks.map((block) => block.version);
    const unchanged = (k: number) => content.block(group[k]!) === blocks[k] && blocks[k]!.version === versions[k];
    // The group's own hashes and those of the two blocks before it (its first blocks' neighbours).
    content.hashBlocks([group[0]! - 2, group[0]! - 1, ...group].filter((b) => b >= 0));
    const keys = await Promise.all(group.map((b) => Promise.all([content.srcOf(b, BLOCK), content.srcOf(b - 1, BLOCK), content.srcOf(b - 2, BLOCK)])));
    const live = group.flatMap((b, k) => (unchanged(k) && (b + 1) * BLOCK <= content.size ? [k] : []));
    const stored = this.writer.write(live.map((k) => ({ data: content.fullData(blocks[k]!), own: keys[k]![0], n1: keys[k]![1], n2: keys[k]![2] })));
    await Promise.all(
      live.map(async (k, i) => {
        const { name, pieces } = await stored[i]!;
        if (!unchanged(k)) return;
        const [own, n1, n2] = keys[k]!;
        // Not kept in the chunk cache: the kernel's page cache serves re-reads of what was just written.
        content.setStaged(group[k]!, { dst: name, size: BLOCK, own, n1, n2, ...(pieces && { pieces }) });
      }),
    );
  }
}
