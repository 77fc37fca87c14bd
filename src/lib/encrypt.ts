/** In-memory encryption, as the reference's `encrypt(bytes)`, and the final step every encrypt path shares. */
import type { Profile } from '../core/compression.js';
import type { DataMap } from '../core/data-map.js';
import { type EncryptedChunk, encryptBytes, shrinkDataMap } from '../core/encrypt.js';
import type { ChunkSink } from './pipeline.js';

/** The library's default profile: chunk names equal the reference crate's. */
export const DEFAULT_PROFILE: Profile = 'compat';

export interface EncryptOptions {
  profile?: Profile;
}

/**
 * Self-encrypt `bytes` (at least 3) in memory: the DataMap, shrunk as the reference shrinks it when the file has
 * more than 3 chunks, and every chunk to store, the shrunk map's own chunks included. A TooSmall for < 3 bytes.
 */
export function encrypt(bytes: Uint8Array, options: EncryptOptions = {}): { dataMap: DataMap; chunks: EncryptedChunk[] } {
  const profile = options.profile ?? DEFAULT_PROFILE;
  const root = encryptBytes(bytes, profile);
  const shrunk = shrinkDataMap(root.dataMap, profile);
  return { dataMap: shrunk.dataMap, chunks: [...root.chunks, ...shrunk.chunks] };
}

/**
 * Shrink a root map, store the chunks that holds it, and make every put durable: after this the returned map
 * can be written out, naming only chunks that are safely stored.
 */
export async function storeDataMap(root: DataMap, store: ChunkSink, profile: Profile): Promise<DataMap> {
  const shrunk = shrinkDataMap(root, profile);
  for (const c of shrunk.chunks) await store.put(c.name, c.content);
  await store.sync?.();
  return shrunk.dataMap;
}
