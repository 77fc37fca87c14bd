/** What is needed to decrypt one chunk of a DataMap: its name, size, and the src hashes that key it. */
import type { DataMap } from './data-map.js';
import { neighbours } from './keys.js';
import type { PieceHashes } from './pieces.js';

export interface ChunkRef {
  dst: Buffer;
  size: number;
  own: Buffer;
  n1: Buffer;
  n2: Buffer;
  /** The chunk's encrypted bytes, when the caller holds them (a packed entry): no store read. */
  stored?: Buffer;
  /** How to read part of it without reading it whole, when it was stored raw (core/pieces.ts). */
  pieces?: PieceHashes;
}

/** How to decrypt chunk i of a DataMap. */
export function chunkRefOf(map: DataMap, i: number): ChunkRef {
  const [a, b] = neighbours(i, map.chunks.length);
  const info = map.chunks[i]!;
  return { dst: info.dstHash, size: info.srcSize, own: info.srcHash, n1: map.chunks[a]!.srcHash, n2: map.chunks[b]!.srcHash };
}
