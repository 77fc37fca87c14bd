/** Fixture sets in the layout of shared/vectors: vectors.json plus one folder per case (chunks/, datamap.bin, datamap-shrunk.bin). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../../src/core/compression.js';
import { MemoryStore } from '../../src/store/memory-store.js';

export interface VectorChunk {
  index: number;
  start: number;
  size: number;
  src: string;
  dst: string;
}

export interface VectorCase {
  input: string;
  input_sha3: string;
  file_size: number;
  /** Our own fixtures record the profile that made them; the reference's are all compat. */
  profile?: Profile;
  chunks: VectorChunk[];
  datamap_sha3: string;
  shrunk_level1_chunks: { index: number; dst: string; src: string; size: number }[] | null;
}

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
/** The reference crate's vectors (copied from shared/vectors) and the fixtures sefs made itself. */
export const FIXTURE_SETS = ['reference', 'own'] as const;

export function loadVectors(set: string): Record<string, VectorCase> {
  return JSON.parse(readFileSync(join(FIXTURES, set, 'vectors.json'), 'utf8')) as Record<string, VectorCase>;
}

export interface CaseFiles {
  chunks: Map<string, Buffer>;
  datamap: Buffer;
  shrunk: Buffer | undefined;
}

export function loadCaseFiles(set: string, name: string): CaseFiles {
  const dir = join(FIXTURES, set, name);
  const chunks = new Map<string, Buffer>();
  for (const f of readdirSync(join(dir, 'chunks'))) chunks.set(f, readFileSync(join(dir, 'chunks', f)));
  const shrunkPath = join(dir, 'datamap-shrunk.bin');
  return { chunks, datamap: readFileSync(join(dir, 'datamap.bin')), shrunk: existsSync(shrunkPath) ? readFileSync(shrunkPath) : undefined };
}

export function storeOf(chunks: Map<string, Buffer>): MemoryStore {
  const store = new MemoryStore();
  for (const [hex, bytes] of chunks) store.chunks.set(hex, Buffer.from(bytes));
  return store;
}
