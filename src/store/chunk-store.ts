/**
 * Where encrypted chunks live. Chunks are content-addressed (name = SHA3-256 of the bytes) and immutable,
 * so a put of a name that exists is a no-op and any store can be shared between files (dedup).
 */
export interface ReadAhead {
  chunks: number;
  group: number;
}

export interface GetOptions {
  /**
   * Fetched ahead of a sequential reader: a cache in front of a remote store does not keep it (a stream
   * larger than the cache would only push out what is worth keeping, at the cost of a file write per chunk).
   */
  readAhead?: boolean;
}

export interface ChunkStore {
  /**
   * The chunk's bytes; throws ChunkNotFound when there is none. The buffer is the caller's: a store must not
   * keep or reuse it (the mount moves it to a worker thread).
   */
  get(name: Buffer, options?: GetOptions): Promise<Buffer>;
  /**
   * get, into the caller's buffer (a slot of the mount's slab, lib/slab.ts): the number of bytes. Stores of
   * local files offer it; for the others the caller copies what get returns.
   */
  getInto?(name: Buffer, target: Buffer, options?: GetOptions): Promise<number>;
  /**
   * Bytes [start, end) of the chunk, unverified (fewer where it is shorter): the caller checks them against
   * piece hashes (core/pieces.ts). Stores that can read part of a chunk cheaply offer it.
   */
  getRange?(name: Buffer, start: number, end: number): Promise<Buffer>;
  /** Store a chunk under its name (a no-op when it is already there). */
  put(name: Buffer, content: Buffer): Promise<void>;
  has(name: Buffer): Promise<boolean>;
  delete(name: Buffer): Promise<void>;
  /**
   * Make puts durable (a no-op for stores without a disk): those of `names` when given (a commit syncs the
   * chunks it names, so one chunk that cannot be written fails only the commits that need it), else every one.
   */
  sync(names?: Iterable<Buffer>): Promise<void>;
  /** Remove many chunks at once (a store with batched deletes: S3's DeleteObjects). */
  deleteMany?(hexes: string[]): Promise<void>;
  /** Every chunk name in the store. */
  names(): AsyncIterable<Buffer>;
  /**
   * Stores of local files only: the directory where a worker thread may write a new chunk itself
   * (writeChunkTempSync), which `adopt` then takes as put. Keeps the chunk bytes off the caller's thread.
   */
  readonly localRoot?: string;
  /** `content`: the chunk's bytes, handed over when the store asks for them (wantsContent). */
  adopt?(name: Buffer, temp: string | undefined, content?: Buffer): Promise<void>;
  /**
   * The store sends new chunks elsewhere (an S3 vault's cache uploads them): the worker that wrote a chunk's
   * temp file hands its bytes back too, so the upload need not read the file again.
   */
  readonly wantsContent?: boolean;
  /**
   * How far a sequential reader's chunks are fetched ahead, and in what groups (each group is decrypted once
   * its fetches are in): a store behind a network wants a deeper window in smaller groups (ChunkCache).
   */
  readonly readAhead?: ReadAhead;
  /**
   * Whether a chunk a worker found already stored is still there, once any removal of it under way has
   * finished (space reclamation may remove an unreferenced chunk while a writer is about to name it again).
   */
  stillThere?(name: Buffer): Promise<boolean>;
}
