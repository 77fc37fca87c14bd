/**
 * The chunk cache's whole-chunk reads of chunks with keyed piece tags (core/pieces.ts checkAllPieces, in the
 * worker's decryptSlot job): the tags stand in for the plaintext's hash, so they must catch everything it did.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { encryptChunkBytes } from '../src/core/chunk.js';
import type { ChunkRef } from '../src/core/chunk-ref.js';
import { ChunkDecryptFailed, ChunkHashMismatch } from '../src/core/errors.js';
import { sha3 } from '../src/core/hash.js';
import { keysFromHashes } from '../src/core/keys.js';
import { hashPieces, newPieceKey } from '../src/core/pieces.js';
import { ChunkCache } from '../src/fs/chunk-cache.js';
import { WorkerPool } from '../src/lib/pool.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { seededBytes } from './helpers/inputs.js';

const MiB = 1024 * 1024;
const pool = new WorkerPool(2);
afterAll(() => pool.close());

/** A raw chunk in a store and its ref with keyed tags. 1,048,528 bytes: its stored length is 32 mod 64. */
async function taggedChunk(size = 1_048_528) {
  const plain = seededBytes(size, 21);
  const own = sha3(plain);
  const n1 = sha3(Buffer.from('n1'));
  const n2 = sha3(Buffer.from('n2'));
  const enc = encryptChunkBytes(plain, keysFromHashes(own, n1, n2), 'selective');
  const dst = sha3(enc.content);
  const pieces = hashPieces(enc.content, enc.plainAt!, newPieceKey(), { dst, own, n1, n2, size });
  const store = new MemoryStore();
  await store.put(dst, enc.content);
  const ref: ChunkRef = { dst, size, own, n1, n2, pieces };
  return { plain, store, ref, stored: enc.content };
}

async function readWhole(store: MemoryStore, ref: ChunkRef): Promise<Buffer> {
  const out = Buffer.alloc(ref.size);
  await new ChunkCache(store, pool, 64 * MiB).copyInto(ref, 0, ref.size, out, 0);
  return out;
}

async function failure(p: Promise<unknown>): Promise<ChunkHashMismatch> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ChunkHashMismatch);
  return err as ChunkHashMismatch;
}

describe('whole-chunk reads checked by keyed piece tags', () => {
  it('read exactly; a damaged byte anywhere is a piece mismatch naming the chunk and the piece, never bytes', async () => {
    const c = await taggedChunk();
    expect((await readWhole(c.store, c.ref)).equals(c.plain)).toBe(true);
    for (const at of [3, 500_000, c.stored.length - 1]) {
      const damaged = Buffer.from(c.stored);
      damaged[at]! ^= 0x20;
      const store = new MemoryStore();
      await store.put(c.ref.dst, damaged);
      const err = await failure(readWhole(store, c.ref));
      expect(err.which).toBe('piece');
      expect(err.chunkName).toBe(c.ref.dst.toString('hex'));
      expect(err.message).toMatch(/piece \d/);
    }
  });

  it('keys that are not the writer\'s fail as the plaintext hash made them fail (a wrong n2 alone decrypts to the right length)', async () => {
    const c = await taggedChunk();
    for (const field of ['own', 'n1', 'n2'] as const) {
      const wrong = { ...c.ref, [field]: sha3(c.ref[field]) };
      expect((await failure(readWhole(c.store, wrong))).which, field).toBe('piece');
      // Without tags the decryption or the plaintext's hash catches it.
      const { pieces: _, ...untagged } = wrong;
      const err = await readWhole(c.store, untagged).then(() => undefined, (e: unknown) => e);
      expect(err instanceof ChunkHashMismatch || err instanceof ChunkDecryptFailed, `${field} untagged`).toBe(true);
    }
  });
});
