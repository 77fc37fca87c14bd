/**
 * The native addon: its four-way SHA3-256 gives OpenSSL's digests for every length and count, its pad XOR
 * the JavaScript loop's bytes at every phase, its four-stream AES-CBC OpenSSL's ciphertext; its renameat2 flags and
 * futimens(fd, NULL) do what the kernel says; batched worker jobs fail one by one (a bad chunk in a batch
 * fails only its own job); and the addon is really in use: a build that silently fell back to OpenSSL would
 * lose the write and read speed, so that is a failure, not a skip.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCipheriv, createHash } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { keysFromHashes } from '../src/core/keys.js';
import { encryptChunk, encryptChunks, openChunk, openChunkInPlace, xorInto, xorIntoPortable } from '../src/core/chunk.js';
import { copyBytes } from '../src/core/copy-bytes.js';
import { storeAsBrotli } from '../src/core/raw-brotli.js';
import { maxBrotliSize, PROFILES } from '../src/core/compression.js';
import { native } from '../src/core/native.js';
import { ChunkDecryptFailed, ChunkHashMismatch } from '../src/core/errors.js';
import { sha3Backend, sha3Many } from '../src/core/sha3-many.js';
import { runJobs, useSlab } from '../src/lib/chunk-jobs.js';
import { prng, seededBytes, textLike } from './helpers/inputs.js';

const openssl = (b: Uint8Array) => createHash('sha3-256').update(b).digest();

describe('sha3Many', () => {
  it('uses the native four-way kernel on this machine', () => {
    expect(process.env.SEFS_NATIVE).not.toBe('0');
    expect(['avx512vl', 'avx2', 'generic']).toContain(sha3Backend);
  });

  it('matches OpenSSL at every length around the 136-byte rate, in any count and alignment', () => {
    const backing = seededBytes(4000, 1);
    const rand = prng(2);
    const lengths = [0, 1, 135, 136, 137, 271, 272, 273, 1000, 1088, 1089, 2999];
    for (let round = 0; round < 200; round++) {
      const count = 1 + Math.floor(rand() * 11);
      const list = Array.from({ length: count }, () => {
        const length = rand() < 0.5 ? lengths[Math.floor(rand() * lengths.length)]! : Math.floor(rand() * 3000);
        const at = Math.floor(rand() * 8);
        return backing.subarray(at, at + length);
      });
      expect(sha3Many(list).map((d) => d.toString('hex'))).toEqual(list.map((b) => openssl(b).toString('hex')));
    }
  });

  it('matches OpenSSL on 1 MiB chunks of different sizes in one batch', () => {
    const list = [1 << 20, (1 << 20) - 7, 400_000, 1 << 20, 12_345].map((n, i) => seededBytes(n, 10 + i));
    expect(sha3Many(list)).toEqual(list.map(openssl));
  });

  it('hashes empty arrays that have no memory behind them', () => {
    const empty = openssl(new Uint8Array(0));
    expect(sha3Many([new Uint8Array(0), Buffer.alloc(0), new Uint8Array(5).subarray(5)])).toEqual([empty, empty, empty]);
  });

  it('refuses what is not a list of byte arrays', () => {
    expect(() => sha3Many([new Uint8Array(1), 'text' as unknown as Uint8Array])).toThrow(TypeError);
  });

  it('every kernel this CPU runs (generic, AVX2, AVX-512VL) gives the same digests and XOR', () => {
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    const runnable = ['generic', ...(/\bavx2\b/.test(flags) ? ['avx2'] : []), ...(/\bavx512vl\b/.test(flags) ? ['avx512vl'] : [])];
    const script = [
      "import('./src/core/sha3-many.ts').then(async (m) => {",
      "  const { xorInto } = await import('./src/core/chunk.ts');",
      "  const data = Array.from({ length: 6 }, (_, i) => Buffer.alloc(1000 + 997 * i, i + 1));",
      "  const x = Buffer.alloc(70000); xorInto(x, 3, Buffer.alloc(69990, 0x5a), Buffer.alloc(64, 7));",
      "  console.log(m.sha3Backend, m.sha3Many(data).map((d) => d.toString('hex')).join(','), require('crypto').createHash('sha256').update(x).digest('hex'));",
      '});',
    ].join('\n');
    const outputs = runnable.map((kernel) =>
      execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { env: { ...process.env, SEFS_NATIVE_KERNEL: kernel }, encoding: 'utf8' }).trim().split(' '),
    );
    expect(outputs.map((o) => o[0])).toEqual(runnable);
    const data = Array.from({ length: 6 }, (_, i) => Buffer.alloc(1000 + 997 * i, i + 1));
    const expected = data.map((d) => openssl(d).toString('hex')).join(',');
    for (const o of outputs) expect(o[1]).toBe(expected);
    expect(new Set(outputs.map((o) => o[2])).size).toBe(1);
  });

  it('gives the same digests through OpenSSL when the addon is switched off', () => {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '-e', "import('./src/core/sha3-many.ts').then(m => console.log(m.sha3Backend, m.sha3Many([Buffer.from('abc'), Buffer.alloc(0)]).map(d => d.toString('hex')).join(' ')))"],
      { env: { ...process.env, SEFS_NATIVE: '0' }, encoding: 'utf8' },
    ).trim();
    expect(out).toBe(`openssl ${openssl(Buffer.from('abc')).toString('hex')} ${openssl(Buffer.alloc(0)).toString('hex')}`);
  });
});

describe('xorPad', () => {
  it('gives the JavaScript loop\'s bytes at every phase, length and alignment', () => {
    const rand = prng(4);
    const pad = seededBytes(64, 5);
    for (let round = 0; round < 300; round++) {
      const length = rand() < 0.3 ? 4096 + Math.floor(rand() * 64) : Math.floor(rand() * 200_000);
      const at = Math.floor(rand() * 300);
      const sourceAt = Math.floor(rand() * 8);
      const source = seededBytes(length + 8, round).subarray(sourceAt, sourceAt + length);
      const native = Buffer.alloc(at + length + 5, 7);
      const portable = Buffer.alloc(at + length + 5, 7);
      xorInto(native, at, source, pad);
      xorIntoPortable(portable, at, source, pad);
      expect(native.equals(portable)).toBe(true);
    }
  });

  it('refuses a source that does not fit in the target', () => {
    expect(() => xorInto(Buffer.alloc(5000), 10, Buffer.alloc(5000), Buffer.alloc(64))).toThrow(RangeError);
  });
});

describe('four-stream AES-128-CBC', () => {
  it('encrypts like OpenSSL, in place, for any count and whole-block lengths (empty ones too)', () => {
    const aes = native?.aesCbcEncryptMany;
    expect(aes, 'the addon offers AES on this CPU').toBeDefined();
    const rand = prng(6);
    for (let round = 0; round < 200; round++) {
      const count = 1 + Math.floor(rand() * 9);
      const plains = Array.from({ length: count }, (_, i) => seededBytes(16 * Math.floor(rand() * (round % 2 ? 5 : 400)), round * 10 + i));
      const keys = plains.map((_, i) => seededBytes(16, 5000 + round * 10 + i));
      const ivs = plains.map((_, i) => seededBytes(16, 9000 + round * 10 + i));
      const expected = plains.map((p, i) => {
        const cipher = createCipheriv('aes-128-cbc', keys[i]!, ivs[i]!).setAutoPadding(false);
        return Buffer.concat([cipher.update(p), cipher.final()]);
      });
      const buffers = plains.map((p) => (p.length === 0 ? new Uint8Array(0) : Buffer.from(p)));
      aes!(buffers, keys, ivs);
      buffers.forEach((b, i) => expect(Buffer.from(b).equals(expected[i]!), `round ${round}, buffer ${i}`).toBe(true));
    }
  });

  it('refuses partial blocks and wrong key sizes', () => {
    expect(() => native!.aesCbcEncryptMany!([Buffer.alloc(17)], [Buffer.alloc(16)], [Buffer.alloc(16)])).toThrow(RangeError);
    expect(() => native!.aesCbcEncryptMany!([Buffer.alloc(16)], [Buffer.alloc(15)], [Buffer.alloc(16)])).toThrow(RangeError);
  });

  it('encryptChunks gives encryptChunk\'s bytes, every profile, any mix of sizes and data', () => {
    const rand = prng(7);
    for (const profile of PROFILES) {
      const plains = [1, 100, 4095, 4096, 70_000, 1 << 20, 333_333].map((n, i) => (i % 2 ? textLike(n, i) : seededBytes(n, i)));
      const keys = plains.map(() => keysFromHashes(...([0, 1, 2].map(() => Buffer.from(Array.from({ length: 32 }, () => Math.floor(rand() * 256)))) as [Buffer, Buffer, Buffer])));
      const batch = encryptChunks(plains, keys, profile);
      plains.forEach((p, i) => expect(batch[i]!.content.equals(encryptChunk(p, keys[i]!, profile)), `${profile} chunk ${i}`).toBe(true));
    }
  });
});

describe('AES-128-CBC decryption in place', () => {
  it('decrypts like OpenSSL at every whole-block length around its eight-block stride', () => {
    const decrypt = native?.aesCbcDecrypt;
    expect(decrypt, 'the addon offers AES on this CPU').toBeDefined();
    for (const blocks of [0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 65_536 + 3]) {
      const plain = seededBytes(16 * blocks, blocks);
      const key = seededBytes(16, 100 + blocks);
      const iv = seededBytes(16, 200 + blocks);
      const buf = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false).update(plain);
      decrypt!(buf, key, iv);
      expect(buf.equals(plain), `${blocks} blocks`).toBe(true);
    }
    expect(() => decrypt!(Buffer.alloc(17), Buffer.alloc(16), Buffer.alloc(16))).toThrow(RangeError);
    expect(() => decrypt!(Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(32))).toThrow(RangeError);
  });

  it('unmasks with the pad in the same pass, at every phase of the pad', () => {
    const pad = seededBytes(64, 300);
    for (const blocks of [1, 3, 4, 5, 8, 9, 12, 13, 31, 1000]) {
      const plain = seededBytes(16 * blocks, 400 + blocks);
      const key = seededBytes(16, 500 + blocks);
      const iv = seededBytes(16, 600 + blocks);
      const stored = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false).update(plain);
      xorIntoPortable(stored, 0, stored, pad);
      native!.aesCbcDecrypt!(stored, key, iv, pad);
      expect(stored.equals(plain), `${blocks} blocks`).toBe(true);
    }
  });
});

describe('brotliDecodeInto', () => {
  it('decodes into the given buffer, and refuses streams that do not fit or are not brotli', () => {
    const decode = native?.brotliDecodeInto;
    expect(decode, "Node's brotli decoder is found").toBeDefined();
    const plain = textLike(300_000, 3);
    const stream = brotliCompressSync(plain);
    const out = Buffer.alloc(plain.length);
    expect(decode!(stream, out)).toBe(plain.length);
    expect(out.equals(plain)).toBe(true);
    expect(decode!(stream, Buffer.alloc(plain.length - 1))).toBe(-1);
    expect(decode!(seededBytes(1000, 4), out)).toBe(-1);
  });
});

describe('brotliEncodeInto', () => {
  it('writes the stream node:zlib writes with the same parameters (chunk names of the fast profile stay put)', () => {
    const encode = native?.brotliEncodeInto;
    expect(encode, "Node's brotli encoder is found").toBeDefined();
    const text = textLike(1_100_000, 7);
    const inputs: Uint8Array[] = [];
    for (const n of [1, 2, 3, 100, 700, 16_383, 16_384, 16_385, 65_536, 300_000, 1_048_576]) {
      inputs.push(text.subarray(0, n), seededBytes(n, n), Buffer.alloc(n));
    }
    for (const quality of [0, 1, 6]) {
      for (const input of inputs) {
        const expected = brotliCompressSync(input, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: quality, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: input.length } });
        const out = Buffer.alloc(maxBrotliSize(input.length));
        const n = encode!(input, out, quality);
        expect(n, `quality ${quality}, ${input.length} bytes`).toBe(expected.length);
        expect(out.subarray(0, n).equals(expected), `quality ${quality}, ${input.length} bytes`).toBe(true);
      }
    }
    // Too small an output: refused, never written past.
    const small = Buffer.alloc(10);
    expect(encode!(seededBytes(1000, 9), small, 0)).toBe(-1);
  });
});

describe('copyBytes', () => {
  it('copies as Buffer.copy does, out of shared memory too, clamped the same way', () => {
    const shared = Buffer.from(new SharedArrayBuffer(100_000));
    seededBytes(100_000, 5).copy(shared);
    for (const [at, from, to, targetLength] of [
      [0, 0, 100_000, 100_000],
      [7, 3, 90_001, 100_000],
      [50_000, 0, 100_000, 60_000],
      [0, 99_000, 200_000, 5000],
      [10, 20, 30, 100],
    ] as const) {
      const a = Buffer.alloc(targetLength, 1);
      const b = Buffer.alloc(targetLength, 1);
      expect(copyBytes(shared, a, at, from, to)).toBe(shared.copy(b, at, from, to));
      expect(a.equals(b), `${at} ${from} ${to}`).toBe(true);
    }
  });
});

/** A brotli stream of uncompressed meta-blocks, one per piece (each at most 64 KiB). */
function rawStream(pieces: Uint8Array[]): Buffer {
  const bytes: number[] = [];
  const out: Uint8Array[] = [];
  let acc = 0;
  let used = 0;
  const put = (value: number, bits: number) => {
    for (let i = 0; i < bits; i++) {
      acc |= ((value >>> i) & 1) << used;
      if (++used === 8) (bytes.push(acc), (acc = 0), (used = 0));
    }
  };
  const align = () => used > 0 && (bytes.push(acc), (acc = 0), (used = 0));
  put(1, 1); // WBITS 22
  put(5, 3);
  for (const piece of pieces) {
    put(0, 1); // ISLAST
    put(0, 2); // four nibbles
    put(piece.length - 1, 16);
    put(1, 1); // ISUNCOMPRESSED
    align();
    out.push(Buffer.from(bytes.splice(0)), piece);
  }
  put(1, 1); // ISLAST, ISLASTEMPTY
  put(1, 1);
  align();
  out.push(Buffer.from(bytes));
  return Buffer.concat(out);
}

describe('chunks opened in place', () => {
  const SLOT = 1.25 * 1024 * 1024;
  const keys = keysFromHashes(seededBytes(32, 1), seededBytes(32, 2), seededBytes(32, 3));
  const name = Buffer.alloc(32);
  const inSlot = (stored: Uint8Array) => {
    const slot = Buffer.alloc(SLOT);
    slot.set(stored);
    return slot;
  };

  it('give openChunk\'s plaintext for raw, multi-block raw and compressed chunks, as views of the slot', () => {
    const scratch = Buffer.alloc(SLOT);
    const raw = seededBytes(1 << 20, 6);
    const text = textLike(1 << 20, 7);
    for (const stored of [encryptChunk(raw, keys, 'fast'), encryptChunk(text, keys, 'selective'), encryptChunk(text, keys, 'fast'), encryptChunk(text, keys, 'compat')]) {
      const slot = inSlot(stored);
      const plain = openChunkInPlace(slot, stored.length, keys, name, 1 << 20, scratch);
      expect(plain.buffer).toBe(slot.buffer);
      expect(plain.equals(openChunk(stored, keys, name, 1 << 20))).toBe(true);
    }
    // A raw stream of several meta-blocks (another encoder's): joined at the front of the slot.
    const stream = rawStream([raw.subarray(0, 1000), raw.subarray(1000, 66_536)]);
    expect(brotliDecompressSync(stream).equals(raw.subarray(0, 66_536))).toBe(true);
    const cipher = createCipheriv('aes-128-cbc', keys.key, keys.iv);
    const stored = Buffer.concat([cipher.update(stream), cipher.final()]);
    xorInto(stored, 0, stored, keys.pad);
    const plain = openChunkInPlace(inSlot(stored), stored.length, keys, name, 66_536, scratch);
    expect(plain.equals(raw.subarray(0, 66_536))).toBe(true);
  });

  it('fail as openChunk does on damaged bytes, and through a slab job with the right error', () => {
    const plain = seededBytes(600_000, 8);
    const [own, n1, n2] = [openssl(plain), seededBytes(32, 2), seededBytes(32, 3)];
    const stored = encryptChunk(plain, keysFromHashes(own, n1, n2), 'fast');
    const damaged = Buffer.from(stored);
    damaged[300_000] ^= 1;
    const slab = new SharedArrayBuffer(2 * SLOT);
    useSlab(99, slab, SLOT);
    Buffer.from(slab).set(damaged, 0);
    Buffer.from(slab).set(stored, SLOT);
    const job = (at: number) => ({ kind: 'decryptSlot' as const, slab: 99, at, length: stored.length, own, n1, n2, dst: name, size: plain.length });
    const [bad, good, outside] = runJobs([job(0), job(SLOT), job(2 * SLOT)]);
    expect(bad).toSatisfy((e) => e instanceof ChunkHashMismatch || e instanceof ChunkDecryptFailed);
    const { plainAt, plainLength } = good as { plainAt: number; plainLength: number };
    expect(Buffer.from(slab, plainAt, plainLength).equals(plain)).toBe(true);
    expect(outside).toBeInstanceOf(Error);
  });
});

describe('batched chunk jobs', () => {
  it('fail one by one: a damaged chunk in a batch fails only its own job, with the right error', () => {
    const plains = [0, 1, 2].map((i) => seededBytes(200_000, 20 + i));
    const srcs = plains.map(openssl);
    const keysFor = (i: number) => [srcs[i]!, srcs[(i + 2) % 3]!, srcs[(i + 1) % 3]!] as const;
    const stored = plains.map((p, i) => encryptChunk(p, keysFromHashes(...keysFor(i)), 'fast'));
    const names = stored.map(openssl);
    const decryptJob = (i: number, data: Uint8Array, checks: 'both' | 'src' = 'both') => {
      const [own, n1, n2] = keysFor(i);
      return { kind: 'decrypt' as const, data, own, n1, n2, dst: names[i]!, size: 200_000, checks };
    };
    const flipped = Buffer.from(stored[1]!);
    flipped[1000] ^= 1;
    const results = runJobs([
      decryptJob(0, stored[0]!),
      decryptJob(1, flipped),
      decryptJob(1, flipped, 'src'),
      decryptJob(2, stored[0]!, 'src'), // another chunk's bytes under chunk 2's keys
      { kind: 'hash', data: plains[2]! },
      { kind: 'encrypt', data: plains[2]!, own: keysFor(2)[0], n1: keysFor(2)[1], n2: keysFor(2)[2], profile: 'fast' },
      decryptJob(2, stored[2]!),
    ]);
    expect(results[0]).toEqual({ plain: plains[0] });
    expect(results[1]).toBeInstanceOf(ChunkHashMismatch);
    expect((results[1] as ChunkHashMismatch).which).toBe('dst');
    expect(results[2]).toSatisfy((e) => e instanceof ChunkHashMismatch || e instanceof ChunkDecryptFailed);
    expect(results[3]).toSatisfy((e) => e instanceof ChunkHashMismatch || e instanceof ChunkDecryptFailed);
    expect(results[4]).toEqual({ hash: srcs[2] });
    expect(results[5]).toEqual({ name: names[2], content: stored[2] });
    expect(results[6]).toEqual({ plain: plains[2] });
  });
});

describe('renameat2 and futimens(fd, NULL)', () => {
  it('noReplace moves a name unless the target exists (EEXIST, both left as they were); exchange swaps two', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sefs-native-rename-'));
    try {
      const [a, b, c] = ['a', 'b', 'c'].map((n) => join(dir, n)) as [string, string, string];
      writeFileSync(a, 'A');
      writeFileSync(b, 'B');
      expect(native!.noReplace!(a, b)).toBe(-osConstants.errno.EEXIST);
      expect([readFileSync(a, 'utf8'), readFileSync(b, 'utf8')]).toEqual(['A', 'B']);
      symlinkSync('nowhere', c); // a dangling symlink is a taken name too
      expect(native!.noReplace!(a, c)).toBe(-osConstants.errno.EEXIST);
      expect(native!.exchange!(a, b)).toBe(0);
      expect([readFileSync(a, 'utf8'), readFileSync(b, 'utf8')]).toEqual(['B', 'A']);
      expect(native!.noReplace!(a, join(dir, 'd'))).toBe(0);
      expect(readFileSync(join(dir, 'd'), 'utf8')).toBe('B');
      expect(native!.noReplace!(a, join(dir, 'e'))).toBe(-osConstants.errno.ENOENT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('setFdTimesNow gives atime, mtime and ctime the one same kernel time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sefs-native-times-'));
    try {
      const f = join(dir, 'f');
      writeFileSync(f, 'x');
      utimesSync(f, 1000, 2000);
      const fd = openSync(f, 'r+');
      try {
        expect(native!.setFdTimesNow!(fd)).toBe(0);
      } finally {
        closeSync(fd);
      }
      const st = statSync(f, { bigint: true });
      expect([st.atimeNs, st.mtimeNs]).toEqual([st.ctimeNs, st.ctimeNs]);
      expect(Math.abs(Number(st.ctimeNs / 1_000_000n) - Date.now())).toBeLessThan(5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('removeNames: unlinkat of many names of one directory in one thread-pool job', () => {
  it('removes files and links (not what they point to), says ENOENT and EISDIR per name, refuses paths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sefs-native-remove-'));
    const outside = mkdtempSync(join(tmpdir(), 'sefs-native-remove-out-'));
    try {
      const names = Array.from({ length: 300 }, (_, i) => `gone-${i}`);
      for (const n of names) writeFileSync(join(dir, n), n);
      writeFileSync(join(outside, 'kept'), 'kept');
      symlinkSync(join(outside, 'kept'), join(dir, 'link'));
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'stays'), 'stays');
      const fd = openSync(dir, 'r');
      try {
        const results = await native!.removeNames!(fd, [...names, 'link', 'missing', 'sub']);
        expect(results).toEqual([...names.map(() => 0), 0, -osConstants.errno.ENOENT, -osConstants.errno.EISDIR]);
        expect(() => native!.removeNames!(fd, ['../stays'])).toThrow(TypeError);
        expect(() => native!.removeNames!(fd, ['..'])).toThrow(TypeError);
        expect(() => native!.removeNames!(fd, [])).toThrow(TypeError);
      } finally {
        closeSync(fd);
      }
      expect(readdirSync(dir).sort()).toEqual(['stays', 'sub']);
      expect(existsSync(join(outside, 'kept'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('readFile: open, fstat, real path, pread and close in one thread-pool job', () => {
  it('reads a whole file, a range and into a target; refuses what is not a small regular file without reading it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sefs-native-read-'));
    try {
      const data = seededBytes(300_000, 12);
      const f = join(dir, 'f');
      writeFileSync(f, data);
      const read = native!.readFile!;
      const whole = await read(f, true, 0, 1 << 20, 1 << 20);
      expect([whole.errno, whole.size, whole.length, whole.real]).toEqual([0, data.length, data.length, f]);
      expect(whole.bytes!.equals(data)).toBe(true);
      // A range past the end is cut at the end; into a target, whose view holds exactly what was read.
      const part = await read(f, false, 299_000, 310_000, 1 << 20);
      expect(part.bytes!.equals(data.subarray(299_000))).toBe(true);
      const target = Buffer.alloc(20_000, 7);
      const into = await read(f, false, 1000, 21_000, 1 << 20, target);
      expect(into.bytes).toBeUndefined();
      expect(into.length).toBe(20_000);
      expect(target.equals(data.subarray(1000, 21_000))).toBe(true);
      expect(() => read(f, false, 0, 30_000, 1 << 20, Buffer.alloc(100))).toThrow(TypeError);
      // Over `max`: fstat says so, nothing is read.
      const big = await read(f, false, 0, 1 << 20, 1000);
      expect([big.errno, big.size, big.length, big.bytes]).toEqual([0, data.length, 0, undefined]);
      // A symlink is not followed (ELOOP); a missing file is ENOENT; both from open.
      symlinkSync(f, join(dir, 'link'));
      const link = await read(join(dir, 'link'), false, 0, 100, 100);
      expect([link.errno, link.syscall]).toEqual([-osConstants.errno.ELOOP, 'open']);
      const gone = await read(join(dir, 'none'), false, 0, 100, 100);
      expect([gone.errno, gone.syscall]).toEqual([-osConstants.errno.ENOENT, 'open']);
      // A FIFO neither blocks the open nor is read; a directory is not read.
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      const fifo = await read(join(dir, 'fifo'), false, 0, 100, 100);
      expect([fifo.errno, (fifo.mode & 0o170000) === 0o010000, fifo.length]).toEqual([0, true, 0]);
      const sub = await read(dir, false, 0, 100, 1 << 30);
      expect([sub.errno, (sub.mode & 0o170000) === 0o040000, sub.length]).toEqual([0, true, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('direct: reads past the page cache into a target with room for whole blocks, else through it; writes new files past it; exact either way', async () => {
    // On the host's disk (the chunk store's kind of file system), not a tmpfs.
    const dir = mkdtempSync(join('/var/tmp', 'sefs-native-direct-'));
    try {
      const read = native!.readFile!;
      // Pages of `f` in the page cache (fincore), after they were dropped (written, synced, POSIX_FADV_DONTNEED).
      const drop = (f: string) => execFileSync('python3', ['-c', `import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)`, f]);
      const cached = (f: string) => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'PAGES', f], { encoding: 'utf8' }).trim());
      for (const size of [1, 4095, 4096, 12_345, (1 << 20) + 16]) {
        const data = seededBytes(size, size);
        const f = join(dir, `f${size}`);
        writeFileSync(f, data);
        // A slab slot's kind of target: room for the blocks at its first aligned address.
        const slot = Buffer.from(new SharedArrayBuffer(size + 8192)).fill(7);
        drop(f);
        const direct = await read(f, false, 0, slot.length, slot.length, slot, true);
        expect([direct.errno, direct.length], `${size}`).toEqual([0, size]);
        expect(slot.subarray(0, size).equals(data), `${size}`).toBe(true);
        expect(cached(f), `${size}: read past the page cache`).toBe(0);
        // No room for the aligned blocks: read through the page cache, as exact. The target starts one byte past
        // a 4 KiB boundary, so its first aligned address leaves it too short (a buffer of exactly `size` bytes
        // that happened to be page-aligned would have room, and was read past the page cache).
        const backing = Buffer.alloc(size + 8192, 7);
        const skip = (1 - native!.addressMod!(backing, 4096) + 4096) % 4096;
        const tight = backing.subarray(skip, skip + size);
        expect(native!.addressMod!(tight, 4096)).toBe(1);
        drop(f);
        const buffered = await read(f, false, 0, size, size, tight, true);
        expect([buffered.errno, buffered.length, tight.equals(data)], `${size}`).toEqual([0, size, true]);
        expect(cached(f), `${size}: read through the page cache`).toBeGreaterThan(0);
      }
      // writeDirect: new files past the page cache, exact at every size; an error is a negative errno.
      for (const size of [1, 4095, 4096, 12_345, (1 << 20) + 16]) {
        const data = seededBytes(size, size + 1);
        const w = join(dir, `w${size}`);
        const fd = openSync(w, 'wx');
        try {
          expect(native!.writeDirect!(fd, data), `${size}`).toBe(size);
        } finally {
          closeSync(fd);
        }
        expect(cached(w), `${size}: written past the page cache`).toBe(0);
        expect(readFileSync(w).equals(data), `${size}`).toBe(true);
      }
      const readOnly = openSync(join(dir, 'w1'), 'r');
      try {
        expect(native!.writeDirect!(readOnly, Buffer.alloc(10))).toBe(-osConstants.errno.EBADF);
      } finally {
        closeSync(readOnly);
      }
      // An unaligned start is read through the page cache.
      const f = join(dir, `f${(1 << 20) + 16}`);
      const data = readFileSync(f);
      const part = Buffer.alloc(100_000);
      const r = await read(f, false, 1000, 101_000, 1 << 21, part, true);
      expect([r.errno, r.length, part.equals(data.subarray(1000, 101_000))]).toEqual([0, 100_000, true]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
