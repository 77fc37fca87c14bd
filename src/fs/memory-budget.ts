/**
 * One budget for the plaintext every open file holds in memory (written blocks not yet encrypted), so that
 * a thousand files open and written at once cost what the budget allows, not a thousand times a block.
 * Sequencers take bytes when their blocks grow and give them back when blocks are encrypted or dropped;
 * a writer over budget frees its own memory first (stages blocks, or commits early).
 */
export class MemoryBudget {
  private usedBytes = 0;

  constructor(readonly limitBytes: number) {}

  get used(): number {
    return this.usedBytes;
  }

  get over(): boolean {
    return this.usedBytes > this.limitBytes;
  }

  take(bytes: number): void {
    this.usedBytes += bytes;
  }

  give(bytes: number): void {
    this.usedBytes -= bytes;
  }
}
