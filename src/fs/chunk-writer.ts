/**
 * Encrypts an open file's chunks in the worker pool and puts them in the store, remembering every name it
 * stored since the file's last commit: the file holds those chunks against space reclamation until its
 * commit names them (or drops them).
 *
 * A store of local files has the workers write the chunk files themselves, so the encrypted bytes never come
 * back to this (the FUSE) thread. Every name is held before the store is asked whether the chunk is already
 * there, and a chunk found there is checked once more after that: space reclamation may have removed it in
 * between, and then it is written again from the plaintext, which the caller still holds.
 */
import type { Profile } from '../core/compression.js';
import { neighbours } from '../core/keys.js';
import type { PieceHashes } from '../core/pieces.js';
import { type Job, type PieceFields, type PieceOptions, runJobsOrThrow } from '../lib/chunk-jobs.js';
import type { EncryptRequest, WorkerPool } from '../lib/pool.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { BlockBuffers } from './block-buffers.js';

/** Small files up to this size are encrypted on the calling thread (encrypt). */
const ENCRYPT_HERE_MAX = 16 * 1024;

/** A chunk in the store: its name, and its piece hashes when it was stored raw (core/pieces.ts). */
export interface WrittenChunk {
  name: Buffer;
  pieces?: PieceHashes;
}

function writtenChunk(name: Buffer, fields: PieceFields, key: Buffer | undefined): WrittenChunk {
  if (!fields.pieceHashes || fields.plainAt === undefined) return { name };
  return { name, pieces: key ? { plainAt: fields.plainAt, hashes: fields.pieceHashes, key } : { plainAt: fields.plainAt, hashes: fields.pieceHashes } };
}

export class ChunkWriter {
  private stored = new Set<string>();

  constructor(
    private readonly store: ChunkStore,
    private readonly pool: WorkerPool,
    private readonly profile: Profile,
    /** Where the blocks given to write() may live: their bytes are held until each write settles. */
    private readonly buffers?: BlockBuffers,
    /** The file's piece key (core/pieces.ts); none: SHA-256 piece hashes, as its entry already has. */
    private readonly pieceKey?: Buffer,
  ) {}

  private get pieces(): PieceOptions {
    return this.pieceKey ? { key: this.pieceKey } : {};
  }

  /** Encrypt and store chunks as one worker batch; one result per chunk, each settling on its own. */
  write(chunks: EncryptRequest[]): Promise<WrittenChunk>[] {
    const { store } = this;
    // The plaintext may be encrypted again after its first job (below): a block buffer stays held until then,
    // even if its block is dropped meanwhile (block-buffers.ts).
    const holding = (chunk: EncryptRequest, p: Promise<WrittenChunk>): Promise<WrittenChunk> => {
      const release = this.buffers?.hold(chunk.data);
      if (release) p.then(release, release);
      return p;
    };
    if (store.localRoot !== undefined && store.adopt) {
      const adopt = store.adopt.bind(store);
      const options = { profile: this.profile, storeRoot: store.localRoot, keepContent: store.wantsContent, pieces: this.pieces };
      return this.pool.storeMany(chunks, options).map((p, i) =>
        holding(
          chunks[i]!,
          p.then(async (done) => {
            const { name, temp, content } = done;
            this.stored.add(name.toString('hex'));
            if (temp !== undefined || (await store.stillThere?.(name)) !== false) {
              await adopt(name, temp, content);
              return writtenChunk(name, done, this.pieceKey);
            }
            return this.viaPut(chunks[i]!);
          }),
        ),
      );
    }
    return chunks.map((chunk) => holding(chunk, this.viaPut(chunk)));
  }

  private viaPut(chunk: EncryptRequest): Promise<WrittenChunk> {
    return this.pool.encryptMany([chunk], this.profile, this.pieces)[0]!.then(async (done) => {
      this.stored.add(done.name.toString('hex'));
      await this.store.put(done.name, done.content);
      return writtenChunk(done.name, done, this.pieceKey);
    });
  }

  /**
   * Self-encrypt a whole small file's chunks (given in order) without storing them: a packed entry holds
   * them (committer.ts). Two worker batches: the src hashes, then the chunks keyed by them. A file of at most
   * ENCRYPT_HERE_MAX bytes is encrypted on this thread: its hashes, brotli and AES take less time than the two
   * round trips to a worker (a message each way and a thread woken; native-notes/small-files.md, eighth session).
   */
  async encrypt(plains: Buffer[]): Promise<{ name: Buffer; content: Buffer; src: Buffer }[]> {
    const here = plains.reduce((n, p) => n + p.length, 0) <= ENCRYPT_HERE_MAX;
    const srcs = here ? runJobsOrThrow(plains.map((data): Job => ({ kind: 'hash', data }))).map((r) => (r as { hash: Buffer }).hash) : await Promise.all(this.pool.hashMany(plains));
    const requests = plains.map((data, i): EncryptRequest => {
      const [a, b] = neighbours(i, plains.length);
      return { data, own: srcs[i]!, n1: srcs[a]!, n2: srcs[b]! };
    });
    const done = here
      ? (runJobsOrThrow(requests.map((r): Job => ({ kind: 'encrypt', ...r, profile: this.profile }))) as { name: Buffer; content: Buffer }[])
      : await Promise.all(this.pool.encryptMany(requests, this.profile));
    return done.map((c, i) => ({ name: c.name, content: c.content, src: srcs[i]! }));
  }

  holds(hex: string): boolean {
    return this.stored.has(hex);
  }

  /** The names stored since the last call (a commit takes them). */
  take(): Set<string> {
    const stored = this.stored;
    this.stored = new Set();
    return stored;
  }
}
