/**
 * The commit of an open file: self-encrypt its current content into a new entry, storing only the chunks
 * that changed. A chunk whose own plaintext and whose neighbours' are unchanged keeps its name (equal src
 * hashes mean equal plaintext, and the keys come from those hashes); holes with the same neighbours encrypt
 * to the same chunk, so each such context is encrypted once (a 1 TiB hole is one encryption).
 */
import { MIN_ENCRYPTABLE_BYTES } from '../core/constants.js';
import type { ChunkInfo, DataMap } from '../core/data-map.js';
import { neighbours } from '../core/keys.js';
import { chunkSize, chunkStart, numChunks } from '../core/layout.js';
import { ZEROS } from '../core/zeros.js';
import type { EncryptRequest, WorkerPool } from '../lib/pool.js';
import type { PieceHashes } from '../core/pieces.js';
import { MAX_PIECED_CHUNKS, type MetaEntry, PACK_LIMIT } from '../vault/meta-entry.js';
import type { ChunkWriter, WrittenChunk } from './chunk-writer.js';
import { BLOCK, type FileContent } from './file-content.js';

/** A commit encrypts chunks in batches of four, two batches at once: bounds memory to 8 MiB per file. */
const COMMIT_BATCH = 4;
const COMMIT_CONCURRENCY = 2;

export async function buildEntry(content: FileContent, writer: ChunkWriter, pool: WorkerPool): Promise<MetaEntry> {
  const size = content.size;
  if (size < MIN_ENCRYPTABLE_BYTES) return { kind: 'inline', size, data: await content.read(0, size) };
  if (size <= PACK_LIMIT) return packedEntry(await content.read(0, size), writer);
  const count = numChunks(size);
  // Small files: read the whole content (at most 3 MiB); large ones chunk along the blocks.
  const whole = size < 3 * BLOCK ? await content.read(0, size) : undefined;
  const plainOf = (i: number): Promise<Buffer> | Buffer => {
    const start = chunkStart(size, i);
    return whole ? whole.subarray(start, start + chunkSize(size, i)) : content.plainOfBlock(i, chunkSize(size, i));
  };
  // Hashes known without reading (holes, untouched and staged chunks) are taken as they are: a 1 TiB file
  // has a million chunks, and a promise for each would cost more memory than the whole DataMap.
  const srcs: Buffer[] = new Array(count);
  if (whole) (await Promise.all(pool.hashMany([0, 1, 2].map((i) => plainOf(i) as Buffer)))).forEach((h, i) => (srcs[i] = h));
  else {
    const waits: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const known = content.knownSrc(i, chunkSize(size, i));
      if (known) srcs[i] = known;
      else waits.push(content.srcOf(i, chunkSize(size, i)).then((h) => void (srcs[i] = h)));
    }
    await Promise.all(waits);
  }
  const infos: ChunkInfo[] = new Array(count);
  // Piece hashes of the chunks stored raw, for partial reads (core/pieces.ts); none past MAX_PIECED_CHUNKS.
  const pieces: (PieceHashes | undefined)[] = [];
  const place = (i: number, chunk: WrittenChunk): void => {
    infos[i] = { index: i, dstHash: chunk.name, srcHash: srcs[i]!, srcSize: chunkSize(size, i) };
    if (chunk.pieces && i < MAX_PIECED_CHUNKS) pieces[i] = chunk.pieces;
  };
  const request = (i: number, data: Buffer): EncryptRequest => {
    const [a, b] = neighbours(i, count);
    return { data, own: srcs[i]!, n1: srcs[a]!, n2: srcs[b]! };
  };
  const todo: number[] = [];
  const holes = new Map<string, { written?: WrittenChunk; first: number; chunks: number[] }>();
  for (let i = 0; i < count; i++) {
    const [a, b] = neighbours(i, count);
    const reusable = reusableChunk(content, i, chunkSize(size, i), srcs[i]!, srcs[a]!, srcs[b]!, whole !== undefined);
    if (reusable) place(i, reusable);
    else if (!whole && content.isHole(i, chunkSize(size, i))) {
      const own = srcs[i]!;
      // Inside a run of holes all three are the one zero-hash object: no hex for each of a million chunks.
      const key = own === srcs[a] && own === srcs[b] ? `${chunkSize(size, i)}:run` : `${chunkSize(size, i)}:${own.toString('hex')}${srcs[a]!.toString('hex')}${srcs[b]!.toString('hex')}`;
      const context = holes.get(key);
      if (context) context.chunks.push(i);
      else holes.set(key, { first: i, chunks: [i] });
    } else todo.push(i);
  }
  // The rest is encrypted in batches (one worker message each, sharing the four-way hash), a few at once.
  const contexts = [...holes.values()];
  const holeJobs = contexts.map(async (context) => {
    const i = context.first;
    context.written = await writer.write([request(i, ZEROS.subarray(0, chunkSize(size, i)))])[0]!;
  });
  // One failure stops the other batches, and the commit ends only once none is still running: nothing
  // keeps encrypting and storing for a commit that has already failed.
  let failed = false;
  const worker = async (): Promise<void> => {
    while (todo.length > 0 && !failed) {
      const batch = todo.splice(0, COMMIT_BATCH);
      try {
        const plains = await Promise.all(batch.map((i) => plainOf(i)));
        const written = await Promise.all(writer.write(batch.map((i, k) => request(i, plains[k]!))));
        batch.forEach((i, k) => place(i, written[k]!));
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const outcomes = await Promise.allSettled([...Array.from({ length: COMMIT_CONCURRENCY }, worker), ...holeJobs]);
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failure) throw failure.reason;
  for (const context of contexts) for (const i of context.chunks) place(i, context.written!);
  const dataMap: DataMap = { chunks: infos };
  return pieces.length > 0 ? { kind: 'map', size, dataMap, pieces } : { kind: 'map', size, dataMap };
}

/** An existing chunk with exactly this plaintext and these keys, if there is one (with its piece hashes). */
function reusableChunk(content: FileContent, i: number, size: number, own: Buffer, n1: Buffer, n2: Buffer, small: boolean): WrittenChunk | undefined {
  const block = small ? undefined : content.block(i);
  if (block?.kind === 'staged') {
    const r = block.ref;
    if (r.size === size && r.own.equals(own) && r.n1.equals(n1) && r.n2.equals(n2)) return { name: r.dst, pieces: r.pieces };
  }
  const base = content.base;
  // A packed entry's chunks are not in the store: nothing of it can be named by an entry that is not packed.
  if (base.kind !== 'map' || base.packed) return undefined;
  const chunks = base.dataMap.chunks;
  const info = chunks[i];
  if (!info || info.srcSize !== size || !info.srcHash.equals(own)) return undefined;
  const [a, b] = neighbours(i, chunks.length);
  if (chunks[a]!.srcHash.equals(n1) && chunks[b]!.srcHash.equals(n2)) return { name: info.dstHash, pieces: base.pieces?.[i] };
  return undefined;
}

/**
 * A small file's entry with its chunks inside (meta-entry.ts, kind 3): all three chunks are encrypted anew,
 * as any change of a file under 3 MiB changes every chunk's keys or size anyway.
 */
async function packedEntry(plain: Buffer, writer: ChunkWriter): Promise<MetaEntry> {
  const size = plain.length;
  const plains = [0, 1, 2].map((i) => plain.subarray(chunkStart(size, i), chunkStart(size, i) + chunkSize(size, i)));
  const chunks = await writer.encrypt(plains);
  const dataMap: DataMap = { chunks: chunks.map((c, i) => ({ index: i, dstHash: c.name, srcHash: c.src, srcSize: plains[i]!.length })) };
  return { kind: 'map', size, dataMap, packed: chunks.map((c) => c.content) };
}
