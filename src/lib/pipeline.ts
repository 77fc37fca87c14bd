/**
 * The encrypt side's engine, shared by parallelEncrypt, encryptFile and the SelfEncryptor: chunks go in
 * in file order; each is hashed at once and encrypted as soon as the hashes it is keyed by are known
 * (chunk i >= 2 needs i-1 and i-2), then stored. Chunks 0 and 1 are keyed by the last two chunks, so
 * their plaintext is held back until finish(). At most `window` chunks are in flight besides those two,
 * which bounds memory whatever the file size.
 */
import type { Profile } from '../core/compression.js';
import { type DataMap, validateLayout } from '../core/data-map.js';
import { neighbours } from '../core/keys.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { ChunkCrypto } from './crypto.js';
import { Deferred, TaskWindow } from './window.js';

/** What the encrypt side needs of a store. */
export type ChunkSink = Pick<ChunkStore, 'put'> & Partial<Pick<ChunkStore, 'sync'>>;

export class EncryptPipeline {
  private readonly hashes: Deferred<Buffer>[] = [];
  private readonly src: Buffer[] = [];
  private readonly dst: Buffer[] = [];
  private readonly sizes: number[] = [];
  private readonly held: (Uint8Array | undefined)[] = [];
  private readonly tasks: TaskWindow;

  constructor(
    private readonly store: ChunkSink,
    private readonly profile: Profile,
    private readonly pool: ChunkCrypto,
    window: number,
  ) {
    this.tasks = new TaskWindow(window);
  }

  /** Chunks added so far. */
  get count(): number {
    return this.sizes.length;
  }

  /**
   * Queue the next chunk's plaintext. Resolves once the chunk has a slot (back-pressure), not when it is
   * stored; the pipeline reads `plain` until then, so the caller must not reuse its memory.
   */
  async add(plain: Uint8Array): Promise<void> {
    const i = this.sizes.length;
    this.sizes.push(plain.length);
    const own = new Deferred<Buffer>();
    this.hashes.push(own);
    await this.tasks.run(async () => {
      try {
        this.src[i] = await this.pool.hash(plain);
        own.resolve(this.src[i]!);
      } catch (err) {
        own.reject(err);
        throw err;
      }
      if (i < 2) this.held[i] = plain;
      else await this.encryptAndStore(i, plain, this.hashes[i - 1]!.promise, this.hashes[i - 2]!.promise);
    });
  }

  /** Encrypt chunks 0 and 1, wait until every chunk is stored, and return the file's root DataMap. */
  async finish(): Promise<DataMap> {
    const n = this.sizes.length;
    if (n < 3) throw new Error(`a self-encrypted file has at least 3 chunks, got ${n}`);
    for (const i of [0, 1]) {
      const [n1, n2] = neighbours(i, n);
      await this.tasks.run(async () => {
        await this.hashes[i]!.promise;
        await this.encryptAndStore(i, this.held[i]!, this.hashes[n1]!.promise, this.hashes[n2]!.promise);
        this.held[i] = undefined;
      });
    }
    await this.tasks.drain();
    const root: DataMap = {
      chunks: this.sizes.map((srcSize, index) => ({ index, dstHash: this.dst[index]!, srcHash: this.src[index]!, srcSize })),
    };
    validateLayout(root); // the caller cut the chunks: make sure it followed the layout
    return root;
  }

  /** Wait for whatever is in flight, ignoring failures: call before rethrowing an error. */
  async abort(): Promise<void> {
    await this.tasks.settle();
  }

  private async encryptAndStore(i: number, plain: Uint8Array, n1: Promise<Buffer>, n2: Promise<Buffer>): Promise<void> {
    const [h1, h2] = await Promise.all([n1, n2]);
    const { name, content } = await this.pool.encrypt(plain, this.src[i]!, h1, h2, this.profile);
    this.dst[i] = name;
    await this.store.put(name, content);
  }
}
