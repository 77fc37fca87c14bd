/**
 * The sefs library. In-memory calls follow the reference crate (encrypt, decrypt); streaming and parallel
 * calls run chunk crypto on worker threads (the process-wide pool unless given one) with bounded memory.
 */
export { type ChunkInfo, type DataMap, dataMapSize, dataMapToJson, deserializeDataMap, serializeDataMap } from '../core/data-map.js';
export { type EncryptedChunk, expandDataMap, shrinkDataMap } from '../core/encrypt.js';
export * from '../core/errors.js';
export { type Profile, PROFILES, isProfile } from '../core/compression.js';
export { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
export type { ChunkStore } from '../store/chunk-store.js';
export { MemoryStore } from '../store/memory-store.js';
export { DiskStore, type DiskStoreOptions } from '../store/disk-store.js';
export { WorkerPool, sharedPool } from './pool.js';
export { type ChunkCrypto, inlineCrypto, windowFor } from './crypto.js';
export { type ChunkSource, type GetChunk, fetcherOf } from './source.js';
export { DEFAULT_PROFILE, type EncryptOptions, encrypt, storeDataMap } from './encrypt.js';
export { type DecryptOptions, decrypt } from './decrypt.js';
export { type RangeOptions, type SliceOptions, clipRange, decryptChunkAt, decryptRange, decryptSlices, rootDataMap } from './read.js';
export { type PoolOptions, parallelDecrypt, parallelEncrypt, withPool } from './parallel.js';
export { type FileOptions, type Progress, decryptToFile, encryptFile } from './file.js';
export { SelfEncryptor, type SelfEncryptorOptions, type SelfEncryptorStore } from './self-encryptor.js';
export { type ChunkSink, EncryptPipeline } from './pipeline.js';
export { readDataMapFile, writeDataMapFile } from './data-map-file.js';
export { withTempFile, writeFileAtomic } from './atomic-file.js';
export { Deferred, TaskWindow } from './window.js';
