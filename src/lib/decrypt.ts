/** In-memory decryption, as the reference's `decrypt(data_map, get_chunk)`. */
import { type DataMap, dataMapSize } from '../core/data-map.js';
import { type ChunkCrypto } from './crypto.js';
import { decryptSlices, rootDataMap } from './read.js';
import { type ChunkSource, fetcherOf } from './source.js';

export interface DecryptOptions {
  /** Where chunk crypto runs (default: the calling thread). */
  pool?: ChunkCrypto;
  /** Chunks fetched and decrypted at once (default: all of them). */
  ahead?: number;
}

/**
 * The whole content of a file from its DataMap (a shrunk one is expanded first). `getChunk` may be a function,
 * sync or async, returning the chunk's bytes (null when missing), or a ChunkStore.
 */
export async function decrypt(dataMap: DataMap, getChunk: ChunkSource, options: DecryptOptions = {}): Promise<Buffer> {
  const root = await rootDataMap(dataMap, getChunk);
  const size = dataMapSize(root);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  const ahead = options.ahead ?? root.chunks.length;
  for await (const slice of decryptSlices(root, fetcherOf(getChunk), 0, size, { pool: options.pool, ahead })) {
    pos += slice.copy(out, pos);
  }
  return out;
}
