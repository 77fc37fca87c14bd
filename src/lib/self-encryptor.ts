/**
 * The reference's SelfEncryptor: `new SelfEncryptor(store)` then write()/writeChunk() and close() -> DataMap
 * to encrypt as a stream; `new SelfEncryptor(store, dataMap)` then read(offset, length) / readChunk() to read.
 *
 * Writing keeps memory bounded: until 3 MiB have been written the layout is three thirds of a size not yet
 * known, so bytes are buffered (at most 3 MiB); from then on every chunk is a full MiB except the last, so each
 * full MiB goes straight into the encrypt pipeline, and only the unfinished tail waits for close().
 */
import type { Profile } from '../core/compression.js';
import { MAX_CHUNK_SIZE, MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
import { type DataMap, dataMapSize } from '../core/data-map.js';
import { SefsError, TooSmall } from '../core/errors.js';
import { chunkSpans } from '../core/layout.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { type ChunkCrypto, windowFor } from './crypto.js';
import { DEFAULT_PROFILE, storeDataMap } from './encrypt.js';
import { EncryptPipeline } from './pipeline.js';
import { sharedPool } from './pool.js';
import { decryptRange, decryptSlices, rootDataMap } from './read.js';
import { fetcherOf } from './source.js';

export type SelfEncryptorStore = Pick<ChunkStore, 'get' | 'put'> & Partial<Pick<ChunkStore, 'sync'>>;

export interface SelfEncryptorOptions {
  profile?: Profile;
  /** Where chunk crypto runs (default: the process-wide worker pool). */
  pool?: ChunkCrypto;
}

export class SelfEncryptor {
  private readonly profile: Profile;
  private readonly pool: ChunkCrypto;
  private readonly pipeline: EncryptPipeline | undefined;
  /** Written bytes not yet handed to the pipeline. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private closing = false;
  private dataMap: DataMap | undefined;
  private root: DataMap | undefined;
  private chunkReader: AsyncGenerator<Buffer> | undefined;

  constructor(
    private readonly store: SelfEncryptorStore,
    dataMap?: DataMap,
    options: SelfEncryptorOptions = {},
  ) {
    this.profile = options.profile ?? DEFAULT_PROFILE;
    this.pool = options.pool ?? sharedPool();
    this.dataMap = dataMap;
    if (!dataMap) this.pipeline = new EncryptPipeline(store, this.profile, this.pool, windowFor(this.pool));
  }

  /** Append bytes (copied: the caller may reuse its buffer). Resolves when the pipeline has room for more. */
  async write(data: Uint8Array): Promise<void> {
    const pipeline = this.writable();
    if (data.length === 0) return;
    this.pending.push(Buffer.from(data));
    this.pendingBytes += data.length;
    this.written += data.length;
    if (this.written < 3 * MAX_CHUNK_SIZE) return; // the layout is not known yet
    while (this.pendingBytes >= MAX_CHUNK_SIZE) await pipeline.add(this.take(MAX_CHUNK_SIZE));
  }

  /** The streaming interface's name for write(). */
  writeChunk(chunk: Uint8Array): Promise<void> {
    return this.write(chunk);
  }

  /** Encrypt what is left and return the DataMap (shrunk as encrypt() shrinks it); a TooSmall under 3 bytes. */
  async close(): Promise<DataMap> {
    const pipeline = this.writable();
    this.closing = true; // no more writes, whatever happens next
    try {
      if (this.written < MIN_ENCRYPTABLE_BYTES) throw new TooSmall(this.written);
      if (pipeline.count === 0) {
        // Under 3 MiB: three chunks, cut now that the size is known.
        for (const span of chunkSpans(this.written)) await pipeline.add(this.take(span.size));
      } else if (this.pendingBytes > 0) {
        await pipeline.add(this.take(this.pendingBytes));
      }
      this.root = await pipeline.finish();
      this.dataMap = await storeDataMap(this.root, this.store, this.profile);
      return this.dataMap;
    } catch (err) {
      await pipeline.abort();
      throw err;
    } finally {
      this.pending = [];
      this.pendingBytes = 0;
    }
  }

  /** The file's size (bytes written so far while writing). */
  async size(): Promise<number> {
    if (!this.dataMap) return this.written;
    return dataMapSize(await this.rootMap());
  }

  /** Bytes [offset, offset + length) of the file, clipped at its end; the whole file from `offset` without a length. */
  async read(offset = 0, length?: number): Promise<Buffer> {
    const root = await this.rootMap();
    return decryptRange(root, this.store, offset, length ?? dataMapSize(root) - offset, { pool: this.pool });
  }

  /** The next chunk of the file in order, or null after the last one. */
  async readChunk(): Promise<Buffer | null> {
    if (!this.chunkReader) {
      const root = await this.rootMap();
      this.chunkReader = decryptSlices(root, fetcherOf(this.store), 0, dataMapSize(root), { pool: this.pool, ahead: 2 });
    }
    const next = await this.chunkReader.next();
    return next.done ? null : next.value;
  }

  private writable(): EncryptPipeline {
    if (!this.pipeline) throw new SefsError('ReadOnly', 'this SelfEncryptor was opened on a DataMap: it reads, it does not write');
    if (this.closing) throw new SefsError('Closed', 'this SelfEncryptor is closed');
    return this.pipeline;
  }

  private async rootMap(): Promise<DataMap> {
    if (!this.dataMap) throw new SefsError('NotClosed', 'close() the SelfEncryptor before reading');
    this.root ??= await rootDataMap(this.dataMap, this.store);
    return this.root;
  }

  /** The next `n` pending bytes as one buffer (n <= pendingBytes). */
  private take(n: number): Buffer {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const head = this.pending[0]!;
      if (head.length <= need) {
        parts.push(head);
        this.pending.shift();
        need -= head.length;
      } else {
        parts.push(head.subarray(0, need));
        this.pending[0] = head.subarray(need);
        need = 0;
      }
    }
    this.pendingBytes -= n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }
}
