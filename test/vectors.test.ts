/**
 * Reference vectors (made by the self_encryption crate, copied from shared/vectors) and our own fixtures
 * (test/fixtures/own, made by scripts/make-fixtures.ts for the fast and selective profiles), checked the same way:
 * layout, hashes, DataMap bytes, chunk names and bytes, shrinking, and decryption of the stored chunks.
 */
import { describe, expect, it } from 'vitest';
import { serializeDataMap, deserializeDataMap } from '../src/core/data-map.js';
import { encryptBytes } from '../src/core/encrypt.js';
import { chunkSpans } from '../src/core/layout.js';
import { decrypt, decryptRange, encrypt, rootDataMap } from '../src/lib/index.js';
import { FIXTURE_SETS, loadCaseFiles, loadVectors, storeOf } from './helpers/fixtures.js';
import { inputFromWords, sha3hex } from './helpers/inputs.js';

const hex = (b: Buffer): string => b.toString('hex');

describe.each(FIXTURE_SETS)('fixture set %s', (set) => {
  const vectors = loadVectors(set);

  it('has cases', () => {
    expect(Object.keys(vectors).length).toBeGreaterThanOrEqual(3);
  });

  describe.each(Object.entries(vectors))('%s', (name, v) => {
    const input = inputFromWords(v.input);
    const profile = v.profile ?? 'compat';
    const files = loadCaseFiles(set, name);
    const root = encryptBytes(input, profile);

    it('regenerates the input from its description', () => {
      expect(input.length).toBe(v.file_size);
      expect(sha3hex(input)).toBe(v.input_sha3);
    });

    it('has the chunk layout and src hashes', () => {
      expect(chunkSpans(input.length).map((s) => [s.start, s.size])).toEqual(v.chunks.map((c) => [c.start, c.size]));
      expect(root.dataMap.chunks.map((c) => hex(c.srcHash))).toEqual(v.chunks.map((c) => c.src));
      expect(root.dataMap.chunks.map((c) => c.srcSize)).toEqual(v.chunks.map((c) => c.size));
    });

    it(`gives the same chunk names and DataMap bytes (${profile})`, () => {
      expect(root.dataMap.chunks.map((c) => hex(c.dstHash))).toEqual(v.chunks.map((c) => c.dst));
      const bytes = serializeDataMap(root.dataMap);
      expect(sha3hex(bytes)).toBe(v.datamap_sha3);
      expect(bytes.equals(files.datamap)).toBe(true);
      expect(deserializeDataMap(files.datamap)).toEqual(root.dataMap);
    });

    it('shrinks the DataMap as the fixture does, and makes exactly the stored chunks', () => {
      const { dataMap, chunks } = encrypt(input, { profile });
      if (v.shrunk_level1_chunks === null) {
        expect(dataMap).toEqual(root.dataMap);
        expect(files.shrunk).toBeUndefined();
      } else {
        expect(dataMap.child).toBe(1);
        expect(dataMap.chunks.map((c) => ({ index: c.index, dst: hex(c.dstHash), src: hex(c.srcHash), size: c.srcSize }))).toEqual(v.shrunk_level1_chunks);
        expect(serializeDataMap(dataMap).equals(files.shrunk!)).toBe(true);
      }
      // Every chunk we make is a fixture file with the very same bytes, and every fixture file is one we make.
      const made = new Map(chunks.map((c) => [hex(c.name), c.content]));
      expect([...made.keys()].sort()).toEqual([...files.chunks.keys()].sort());
      for (const [name, bytes] of made) expect(bytes.equals(files.chunks.get(name)!), name).toBe(true);
    });

    it('decrypts the fixture chunks from the root DataMap file', async () => {
      const map = deserializeDataMap(files.datamap);
      const got = await decrypt(map, (n) => files.chunks.get(hex(n)));
      expect(got.equals(input)).toBe(true);
    });

    it('decrypts the fixture chunks from the shrunk DataMap file', async () => {
      if (!files.shrunk) return expect(v.shrunk_level1_chunks).toBeNull();
      const shrunk = deserializeDataMap(files.shrunk);
      const store = storeOf(files.chunks);
      expect((await decrypt(shrunk, store)).equals(input)).toBe(true);
      expect(await rootDataMap(shrunk, store)).toEqual(deserializeDataMap(files.datamap));
      const mid = Math.floor(input.length / 2);
      expect((await decryptRange(shrunk, store, mid - 5, 10)).equals(input.subarray(mid - 5, mid + 5))).toBe(true);
    });
  });
});
