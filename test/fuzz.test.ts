/**
 * Hostile input: random and mutated DataMaps and metadata files must end in a clean error (InvalidDataMap
 * or another SefsError in the library, EIO through the mount), never a crash, a hang or wrong bytes.
 * Also names: every byte but NUL and '/', names of 255 bytes, deep trees.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeDataMap, deserializeDataMap, type DataMap } from '../src/core/data-map.js';
import { encryptBytes, expandDataMap, decryptAll } from '../src/core/encrypt.js';
import { SefsError, InvalidDataMap } from '../src/core/errors.js';
import { frameEntry } from '../src/vault/meta-entry.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { decrypt } from '../src/lib/decrypt.js';
import { TestMount } from './fuse/helpers.js';
import { prng, seededBytes } from './helpers/inputs.js';

const CASES = 10_000;

/** One mutation of `seed`: bit flips, truncation, extension, random bytes, huge counts, child tags. */
function mutate(seed: Buffer, rand: () => number): Buffer {
  const pick = Math.floor(rand() * 7);
  const b = Buffer.from(seed);
  const at = () => Math.floor(rand() * b.length);
  switch (pick) {
    case 0: {
      const flips = 1 + Math.floor(rand() * 8);
      for (let i = 0; i < flips; i++) b[at()]! ^= 1 << Math.floor(rand() * 8);
      return b;
    }
    case 1:
      return b.subarray(0, at());
    case 2:
      return Buffer.concat([b, seededBytes(1 + Math.floor(rand() * 100), Math.floor(rand() * 1e9))]);
    case 3:
      return seededBytes(Math.floor(rand() * 600), Math.floor(rand() * 1e9));
    case 4: {
      // A chunk count that claims far more entries than the bytes hold.
      const big = [2n ** 32n, 2n ** 60n, 2n ** 64n - 1n, BigInt(Math.floor(rand() * 1e6))][Math.floor(rand() * 4)]!;
      if (b.length >= 9) b.writeBigUInt64LE(big, 1);
      return b;
    }
    case 5: {
      // A child level where there was none, or a wild one.
      const tail = Buffer.alloc(9);
      tail.writeUInt8(1, 0);
      tail.writeBigUInt64LE(BigInt([0, 1, 2, 17, 2 ** 40][Math.floor(rand() * 5)]!), 1);
      return Buffer.concat([b.subarray(0, b.length - 1), tail]);
    }
    default: {
      // A size or index field overwritten.
      if (b.length >= 89) b.writeBigUInt64LE(BigInt(Math.floor(rand() * 2 ** 40)), 9 + 80 * Math.floor(rand() * Math.floor((b.length - 10) / 80)) + (rand() < 0.5 ? 0 : 72));
      return b;
    }
  }
}

describe('hostile DataMaps in the library', () => {
  const store = new MemoryStore();
  const seeds: { bytes: Buffer; input: Buffer }[] = [];

  beforeAll(async () => {
    for (const [size, seed] of [[3, 1], [3072, 2], [100_000, 3], [5 * 1024 * 1024 + 17, 4]] as const) {
      const input = seededBytes(size, seed);
      const { dataMap, chunks } = encryptBytes(input, 'fast');
      for (const c of chunks) await store.put(c.name, c.content);
      seeds.push({ bytes: serializeDataMap(dataMap), input });
    }
  });

  it(`${CASES} mutated DataMaps end in InvalidDataMap or another clean error, never wrong bytes`, async () => {
    const rand = prng(7);
    const outcomes = { invalid: 0, otherError: 0, sameBytes: 0 };
    for (let i = 0; i < CASES; i++) {
      const seed = seeds[i % seeds.length]!;
      const bytes = mutate(seed.bytes, rand);
      let map: DataMap;
      try {
        map = deserializeDataMap(bytes);
      } catch (err) {
        expect(err, `case ${i}: ${String(err)}`).toBeInstanceOf(InvalidDataMap);
        outcomes.invalid++;
        continue;
      }
      try {
        const out = await decrypt(map, (name) => store.get(name));
        // A mutation that still decrypts must give the original bytes exactly.
        expect(out.equals(seed.input), `case ${i} decrypted to different bytes`).toBe(true);
        outcomes.sameBytes++;
      } catch (err) {
        expect(err, `case ${i}: ${String(err)}`).toBeInstanceOf(SefsError);
        outcomes.otherError++;
      }
    }
    expect(outcomes.invalid + outcomes.otherError + outcomes.sameBytes).toBe(CASES);
    expect(outcomes.invalid).toBeGreaterThan(CASES / 2);
  });

  it('rejects child levels that do not step down by one (no loops)', async () => {
    const input = seededBytes(5 * 1024 * 1024, 9);
    const { dataMap, chunks } = encryptBytes(input, 'fast');
    for (const c of chunks) await store.put(c.name, c.content);
    // A "level 1" map whose content claims to be level 1 again.
    const selfish = encryptBytes(serializeDataMap({ ...dataMap, child: 1 }), 'fast');
    for (const c of selfish.chunks) await store.put(c.name, c.content);
    await expect(expandDataMap({ chunks: selfish.dataMap.chunks, child: 1 }, (n) => store.get(n))).rejects.toBeInstanceOf(InvalidDataMap);
    // Level 5 holding a root map.
    const jump = encryptBytes(serializeDataMap(dataMap), 'fast');
    for (const c of jump.chunks) await store.put(c.name, c.content);
    await expect(expandDataMap({ chunks: jump.dataMap.chunks, child: 5 }, (n) => store.get(n))).rejects.toBeInstanceOf(InvalidDataMap);
    // And the honest level 1 expands to the file.
    const root = await expandDataMap({ chunks: jump.dataMap.chunks, child: 1 }, (n) => store.get(n));
    expect((await decryptAll(root, (n) => store.get(n))).equals(input)).toBe(true);
  });
});

describe('hostile input through a mount', () => {
  let m: TestMount;
  const originals = new Map<string, Buffer>();

  beforeAll(async () => {
    m = await TestMount.create('fuzz');
    for (const [name, size] of [['tiny', 2], ['small', 5000], ['big', 3 * 1024 * 1024 + 5]] as const) {
      const data = seededBytes(size, size);
      await writeFile(m.at(name), data);
      originals.set(name, data);
    }
    await m.unmount();
  }, 120_000);

  afterAll(async () => {
    await m?.dispose();
  });

  it(`${CASES} damaged metadata files give EIO on the file, and the mount lives on`, async () => {
    const rand = prng(11);
    const metaDir = join(m.vault, 'meta');
    const seeds = [...originals.keys()].map((n) => readFileSync(join(metaDir, n)));
    const damaged = join(metaDir, 'damaged');
    const emptied = new Set<string>();
    await mkdir(damaged);
    for (let i = 0; i < CASES; i++) {
      const seed = seeds[i % seeds.length]!;
      let bytes: Buffer;
      // Inline entries hold plain bytes: a well-framed entry with other bytes is simply another file,
      // so only DataMap entries get damage inside a valid frame.
      if (i % 2 === 0 || seed[5] === 0) {
        bytes = mutate(seed, rand); // raw damage: the checksum catches it
      } else {
        // A damaged DataMap inside a well-framed entry: the decoder itself must refuse it.
        const payload = mutate(seed.subarray(14, seed.length - 32), rand);
        bytes = frameEntry(seed[5]!, Number(seed.readBigUInt64LE(6)), payload);
      }
      await writeFile(join(damaged, `f${i}`), bytes);
      if (bytes.length === 0 || bytes.every((b) => b === 0)) emptied.add(`f${i}`);
    }
    await m.mount();
    const outcomes = { eio: 0, readOk: 0 };
    const names = await readdir(m.at('damaged'));
    expect(names.length).toBe(CASES);
    for (const name of names) {
      const content = await readFile(m.at('damaged', name)).catch((err: NodeJS.ErrnoException) => err);
      if (Buffer.isBuffer(content)) {
        // Only an entry that is still exactly an original may read.
        // A zero-length entry is an empty file by rule (a new file's entry cut short by a power loss).
        const allowed = [...originals.values(), ...(emptied.has(name) ? [Buffer.alloc(0)] : [])];
        expect(allowed.some((o) => o.equals(content)), `${name} read as bytes of no original`).toBe(true);
        outcomes.readOk++;
      } else {
        expect((content as NodeJS.ErrnoException).code, `${name}: ${String(content)}`).toBe('EIO');
        outcomes.eio++;
      }
    }
    expect(outcomes.eio).toBeGreaterThan(CASES * 0.9);
    // The daemon is alive and the good files still read.
    for (const [name, data] of originals) expect((await readFile(m.at(name))).equals(data)).toBe(true);
    const status = readFileSync(`/proc/${m.pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
    expect(rssKb, 'mount RSS after the fuzz run (kB)').toBeLessThan(600_000);
  }, 600_000);

  it('handles names with every byte but NUL and /, 255-byte names and deep trees', async () => {
    // Every ASCII byte 1..127 but '/' inside a name.
    for (let c = 1; c < 128; c++) {
      if (c === 0x2f) continue;
      const name = `n${String.fromCharCode(c)}x`;
      await writeFile(m.at(name), `byte ${c}`);
    }
    const listed = new Set(await readdir(m.at('.')));
    for (let c = 1; c < 128; c++) if (c !== 0x2f) expect(listed.has(`n${String.fromCharCode(c)}x`), `byte ${c}`).toBe(true);
    expect(await readFile(m.at('n\nx'), 'utf8')).toBe('byte 10');
    // Multi-byte UTF-8 names work; lone bytes 0x80..0xff are not UTF-8 and are refused with EILSEQ.
    await writeFile(m.at('é☃🔐'), 'unicode');
    expect(await readFile(m.at('é☃🔐'), 'utf8')).toBe('unicode');
    for (const byte of [0x80, 0xc3, 0xfe, 0xff]) {
      const path = Buffer.concat([Buffer.from(m.mnt + '/bad'), Buffer.from([byte])]);
      await expect(writeFile(path, 'x')).rejects.toMatchObject({ code: 'EILSEQ' });
    }
    // 255 bytes is the limit, as on a kernel filesystem.
    const long = 'L'.repeat(255);
    await writeFile(m.at(long), 'long');
    expect(await readFile(m.at(long), 'utf8')).toBe('long');
    await expect(writeFile(m.at('L'.repeat(256)), 'x')).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    // A deep tree.
    let dir = m.at('deep');
    for (let i = 0; i < 150; i++) dir = join(dir, `d${i}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'leaf'), 'bottom');
    expect(await readFile(join(dir, 'leaf'), 'utf8')).toBe('bottom');
    expect((await stat(join(dir, 'leaf'))).size).toBe(6);
    const fh = await open(join(dir, 'leaf'), 'r');
    await fh.close();
  }, 300_000);
});
