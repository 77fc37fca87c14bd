/**
 * The built `sefs` command as a user runs it (`node dist/cli/main.js`, built by `npm test`; rebuilt here when
 * stale): reference chunk names from encrypt --json, exact bytes from decrypt and cat, one-line errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuiltCli } from './helpers/build.js';
import { FIXTURES, loadCaseFiles, loadVectors } from './helpers/fixtures.js';
import { inputFromWords, seededBytes, textLike } from './helpers/inputs.js';

const MiB = 1024 * 1024;

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function sefs(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'buffer', maxBuffer: 64 * MiB });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** A failed run: non-zero exit and exactly one line `sefs: ...` on stderr. */
function expectOneLineError(r: Run, pattern: RegExp, code = 1): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(/^sefs: [^\n]+\n$/);
  expect(r.stderr).toMatch(pattern);
}

let dir: string;
beforeAll(async () => {
  ensureBuiltCli();
  dir = await mkdtemp(join(tmpdir(), 'sefs-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Chunk files under a store directory, as hex names. */
async function storeNames(store: string): Promise<string[]> {
  const names: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else names.push(e.name);
    }
  };
  await walk(store);
  return names.sort();
}

it('--help lists the commands; a command has its own --help', () => {
  const r = sefs('--help');
  expect(r.code).toBe(0);
  for (const name of ['encrypt', 'decrypt', 'cat']) expect(r.stdout.toString()).toMatch(new RegExp(`^  ${name} `, 'm'));
  const e = sefs('encrypt', '--help');
  expect(e.code).toBe(0);
  expect(e.stdout.toString()).toContain('--profile');
  expect(sefs().code).toBe(2);
});

describe.each(Object.entries(loadVectors('reference')))('reference vector %s', (name, v) => {
  const input = inputFromWords(v.input);
  const files = loadCaseFiles('reference', name);

  it('encrypt --profile compat --json reproduces the reference chunks and DataMap file', async () => {
    const file = join(dir, `${name}.in`);
    await writeFile(file, input);
    const store = join(dir, `${name}.store`);
    const map = join(dir, `${name}.datamap`);
    const r = sefs('encrypt', file, '--store', store, '--datamap', map, '--json', '--profile', 'compat');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout.toString()) as { file_size: number; child: number | null; chunks: object[] };
    expect(json.file_size).toBe(v.file_size);
    expect(json.child).toBeNull();
    expect(json.chunks).toEqual(v.chunks.map((c) => ({ index: c.index, dst: c.dst, src: c.src, size: c.size })));
    expect(await storeNames(store)).toEqual([...files.chunks.keys()].sort());
    expect((await readFile(map)).equals(files.shrunk ?? files.datamap)).toBe(true);

    const out = join(dir, `${name}.out`);
    const d = sefs('decrypt', map, '--store', store, '--out', out);
    expect(d.code, d.stderr).toBe(0);
    expect((await readFile(out)).equals(input)).toBe(true);
  });

  it('decrypts the reference DataMap files from a store of the reference chunk files', async () => {
    const store = join(dir, `${name}.ref-store`);
    for (const hex of files.chunks.keys()) {
      const sub = join(store, hex.slice(0, 2), hex.slice(2, 4));
      await mkdir(sub, { recursive: true });
      await copyFile(join(FIXTURES, 'reference', name, 'chunks', hex), join(sub, hex));
    }
    for (const mapName of ['datamap.bin', 'datamap-shrunk.bin']) {
      const map = join(FIXTURES, 'reference', name, mapName);
      if (!existsSync(map)) continue;
      const out = join(dir, `${name}.${mapName}.out`);
      const d = sefs('decrypt', relative(dir, map), '--store', store, '--out', out);
      expect(d.code, d.stderr).toBe(0);
      expect((await readFile(out)).equals(input)).toBe(true);
      const c = sefs('cat', map, '--store', store, '--offset', '1', '--length', String(input.length));
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout.equals(input.subarray(1))).toBe(true);
    }
  });
});

describe('a multi-chunk file', () => {
  const input = Buffer.concat([textLike(3 * MiB, 21), seededBytes(2 * MiB + 77, 22)]);
  const store = () => join(dir, 'multi.store');
  const map = () => join(dir, 'multi.bin.datamap');

  beforeAll(async () => {
    await writeFile(join(dir, 'multi.bin'), input);
    const r = sefs('encrypt', 'multi.bin', '--store', store(), '--profile', 'fast'); // compressed text chunks, raw random ones
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(map())).toBe(true); // FILE.datamap by default
    expect(r.stdout.toString()).toMatch(/^[^\n]+\n$/);
  });

  it.each([
    [0, undefined],
    [0, 1],
    [MiB - 3, 10], // across a chunk border
    [3 * MiB - 1, MiB + 2], // across two borders
    [input.length - 1, undefined], // the last byte
    [input.length - 5, 100], // past the end: clipped
    [input.length, undefined], // at the end: nothing
    [12345, 0],
  ])('cat --offset %i --length %s', (offset, length) => {
    const args = ['cat', map(), '--store', store(), '--offset', String(offset)];
    if (length !== undefined) args.push('--length', String(length));
    const r = sefs(...args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(input.subarray(offset, length === undefined ? undefined : offset + length))).toBe(true);
  });

  it('cat without a range writes the whole file; decrypt writes it to --out', async () => {
    const r = sefs('cat', map(), '--store', store());
    expect(r.stdout.equals(input)).toBe(true);
    const d = sefs('decrypt', map(), '--store', store(), '--out', 'multi.out');
    expect(d.code, d.stderr).toBe(0);
    expect((await readFile(join(dir, 'multi.out'))).equals(input)).toBe(true);
  });
});

describe('bad input: one line on stderr and a non-zero exit', () => {
  it('usage errors exit 2', () => {
    expectOneLineError(sefs('frobnicate'), /unknown command 'frobnicate'/, 2);
    expectOneLineError(sefs('encrypt', 'x'), /--store is required/, 2);
    expectOneLineError(sefs('encrypt'), /missing FILE/, 2);
    expectOneLineError(sefs('encrypt', 'a', 'b', '--store', 's'), /unexpected argument 'b'/, 2);
    expectOneLineError(sefs('encrypt', 'x', '--store', 's', '--profile', 'turbo'), /--profile/, 2);
    expectOneLineError(sefs('encrypt', 'x', '--store', 's', '--bogus'), /bogus/, 2);
    expectOneLineError(sefs('cat', 'm', '--store', 's', '--offset', '-4'), /--offset/, 2);
    expectOneLineError(sefs('cat', 'm', '--store', 's', '--length', 'ten'), /--length/, 2);
    expectOneLineError(sefs('decrypt', 'm', '--store', 's'), /--out is required/, 2);
  });

  it('a missing input file, DataMap or store', async () => {
    expectOneLineError(sefs('encrypt', 'no-such-file', '--store', 'st'), /no-such-file: no such file or directory/);
    expectOneLineError(sefs('decrypt', 'no-such-map', '--store', 'st', '--out', 'o'), /no-such-map: no such file or directory/);
    await writeFile(join(dir, 'small.txt'), textLike(5000, 1));
    expect(sefs('encrypt', 'small.txt', '--store', 'small.store').code).toBe(0);
    expectOneLineError(sefs('cat', 'small.txt.datamap', '--store', 'no-such-store'), /no-such-store is not a directory/);
  });

  it('a file under 3 bytes', async () => {
    await writeFile(join(dir, 'tiny'), 'ab');
    expectOneLineError(sefs('encrypt', 'tiny', '--store', 'tiny.store'), /too small/);
  });

  it('a corrupt or truncated DataMap', async () => {
    await writeFile(join(dir, 'garbage.datamap'), 'this is not a DataMap');
    expectOneLineError(sefs('decrypt', 'garbage.datamap', '--store', 'st', '--out', 'o'), /invalid DataMap/);
    await writeFile(join(dir, 'small2.txt'), textLike(5000, 2));
    expect(sefs('encrypt', 'small2.txt', '--store', 'small2.store').code).toBe(0);
    const map = await readFile(join(dir, 'small2.txt.datamap'));
    await writeFile(join(dir, 'cut.datamap'), map.subarray(0, map.length - 20));
    expectOneLineError(sefs('cat', 'cut.datamap', '--store', 'small2.store'), /invalid DataMap/);
  });

  it('a missing or damaged chunk names the chunk, and leaves no output file', async () => {
    await writeFile(join(dir, 'victim.txt'), textLike(9000, 3));
    const r = sefs('encrypt', 'victim.txt', '--store', 'victim.store', '--json');
    const chunks = (JSON.parse(r.stdout.toString()) as { chunks: { dst: string }[] }).chunks;
    const path = (hex: string) => join(dir, 'victim.store', hex.slice(0, 2), hex.slice(2, 4), hex);

    const damaged = await readFile(path(chunks[1]!.dst));
    damaged[0]! ^= 1;
    await writeFile(path(chunks[1]!.dst), damaged);
    expectOneLineError(sefs('decrypt', 'victim.txt.datamap', '--store', 'victim.store', '--out', 'victim.out'), new RegExp(`chunk ${chunks[1]!.dst} is corrupt`));
    expect(existsSync(join(dir, 'victim.out'))).toBe(false);

    await rm(path(chunks[2]!.dst));
    expectOneLineError(sefs('cat', 'victim.txt.datamap', '--store', 'victim.store', '--offset', '8000'), new RegExp(`chunk ${chunks[2]!.dst} not found`));
  });

  it('an offset past the end', async () => {
    await writeFile(join(dir, 'short.txt'), 'hello world');
    expect(sefs('encrypt', 'short.txt', '--store', 'short.store').code).toBe(0);
    expectOneLineError(sefs('cat', 'short.txt.datamap', '--store', 'short.store', '--offset', '12'), /past the end/);
  });
});
