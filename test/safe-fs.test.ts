/**
 * The kept directory pins of safe-fs.ts (atName, atNameSync): reused while the directory is where it was
 * checked, pinned afresh (with every check) once it was moved, removed or swapped for a link; and
 * readBoundedMany, checked file by file as readBounded. Real files.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../src/core/native.js';
import { UnsafeVaultNode, areaOf, atName, atNameSync, closeDirPins, readBounded, readBoundedMany } from '../src/vault/safe-fs.js';
import { seededBytes } from './helpers/inputs.js';

/** The descriptor a pinned name goes through: /proc/self/fd/N/name -> N. */
const fdOf = (at: string): number => Number(/^\/proc\/self\/fd\/(\d+)\//.exec(at)![1]);
const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('kept directory pins', () => {
  let base: string;
  let area: string;
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'sefs-pins-'));
  });
  afterEach(() => closeDirPins());
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const fresh = (name: string): string => {
    const vault = join(base, name);
    mkdirSync(join(vault, 'd'), { recursive: true });
    area = areaOf(vault);
    return vault;
  };

  it('reuse one descriptor for the same directory, and close it with closeDirPins', () => {
    const vault = fresh('reuse');
    const before = openFds();
    const first = atNameSync(join(vault, 'd', 'a'), area, (at) => (writeFileSync(at, 'a'), at));
    const second = atNameSync(join(vault, 'd', 'b'), area, (at) => (writeFileSync(at, 'b'), at));
    expect(fdOf(second)).toBe(fdOf(first));
    expect(openFds()).toBe(before + 1);
    expect(readFileSync(join(vault, 'd', 'b'), 'utf8')).toBe('b');
    closeDirPins();
    expect(openFds()).toBe(before);
  });

  it('a directory moved away: the path is pinned afresh, and names land in what is there now', () => {
    const vault = fresh('moved');
    atNameSync(join(vault, 'd', 'a'), area, (at) => writeFileSync(at, 'a'));
    renameSync(join(vault, 'd'), join(vault, 'd.moved'));
    mkdirSync(join(vault, 'd'));
    atNameSync(join(vault, 'd', 'b'), area, (at) => writeFileSync(at, 'b'));
    expect(readdirSync(join(vault, 'd'))).toEqual(['b']);
    expect(readdirSync(join(vault, 'd.moved'))).toEqual(['a']);
  });

  it('a directory removed: ENOENT, not a name in the removed directory', () => {
    const vault = fresh('removed');
    atNameSync(join(vault, 'd', 'a'), area, (at) => writeFileSync(at, 'a'));
    rmSync(join(vault, 'd', 'a'));
    rmdirSync(join(vault, 'd'));
    expect(() => atNameSync(join(vault, 'd', 'b'), area, (at) => writeFileSync(at, 'b'))).toThrow(/ENOENT/);
  });

  it('a directory swapped for a link to a victim after it was pinned: refused, the victim untouched', () => {
    const vault = fresh('swapped');
    const victim = join(base, 'victim');
    mkdirSync(victim);
    atNameSync(join(vault, 'd', 'a'), area, (at) => writeFileSync(at, 'a'));
    renameSync(join(vault, 'd'), join(vault, 'd.moved'));
    symlinkSync(victim, join(vault, 'd'));
    expect(() => atNameSync(join(vault, 'd', 'planted'), area, (at) => writeFileSync(at, 'x'))).toThrow(UnsafeVaultNode);
    expect(readdirSync(victim)).toEqual([]);
    expect(readdirSync(join(vault, 'd.moved'))).toEqual(['a']);
  });

  it('a directory reached through a link inside the vault is not kept: a changed link is followed at once', () => {
    // The link is a middle component (a last one is refused outright): l/sub is d/sub, then e/sub.
    const vault = fresh('inner-link');
    mkdirSync(join(vault, 'd', 'sub'));
    mkdirSync(join(vault, 'e', 'sub'), { recursive: true });
    symlinkSync('d', join(vault, 'l'));
    atNameSync(join(vault, 'l', 'sub', 'a'), area, (at) => writeFileSync(at, 'a'));
    rmSync(join(vault, 'l'));
    symlinkSync('e', join(vault, 'l'));
    atNameSync(join(vault, 'l', 'sub', 'b'), area, (at) => writeFileSync(at, 'b'));
    expect(readdirSync(join(vault, 'd', 'sub'))).toEqual(['a']);
    expect(readdirSync(join(vault, 'e', 'sub'))).toEqual(['b']);
  });

  it('a pin held across an await stays open while many other directories push it out of the cache', async () => {
    const vault = fresh('held');
    for (let i = 0; i < 80; i++) mkdirSync(join(vault, `o${i}`));
    const before = openFds();
    let release!: () => void;
    const waiting = new Promise<void>((r) => (release = r));
    const held = atName(join(vault, 'd', 'late'), area, async (at) => {
      await waiting;
      writeFileSync(at, 'late'); // through the descriptor pinned before the others
      return at;
    });
    for (let i = 0; i < 80; i++) atNameSync(join(vault, `o${i}`, 'f'), area, (at) => writeFileSync(at, String(i)));
    release();
    await held;
    expect(readFileSync(join(vault, 'd', 'late'), 'utf8')).toBe('late');
    for (let i = 0; i < 80; i++) expect(existsSync(join(vault, `o${i}`, 'f'))).toBe(true);
    // At most the cache's bound stays open, however many directories were pinned.
    expect(openFds() - before).toBeLessThanOrEqual(32);
  });
});

describe('readBoundedMany: a directory listing read in one thread-pool job', () => {
  it('gives each path what readBounded gives it alone: the bytes, or the same error', async () => {
    expect(native?.readFiles, 'the addon with readFiles is built (npm run build)').toBeTypeOf('function');
    const vault = mkdtempSync(join(tmpdir(), 'sefs-many-'));
    const outside = mkdtempSync(join(tmpdir(), 'sefs-many-out-'));
    try {
      const area = areaOf(vault);
      mkdirSync(join(vault, 'd'));
      writeFileSync(join(outside, 'secret'), 'not the vault');
      symlinkSync(outside, join(vault, 'out'));
      const files: [string, Buffer][] = [0, 1, 4096, 70_000, 300_000].map((size, i) => [join(vault, 'd', `f${i}`), seededBytes(size, i + 1)]);
      for (const [p, data] of files) writeFileSync(p, data);
      symlinkSync(files[1]![0], join(vault, 'd', 'link'));
      const paths = [
        ...files.map(([p]) => p),
        join(vault, 'd', 'link'), // a link where a file belongs
        join(vault, 'd', 'missing'),
        join(vault, 'd'), // a directory
        join(vault, 'out', 'secret'), // through a link, out of the vault
      ];
      const max = 100_000;
      const many = await readBoundedMany(paths, area, max, { noAtime: true });
      expect(many).toHaveLength(paths.length);
      for (const [i, p] of paths.entries()) {
        const alone = await readBounded(p, area, max, { noAtime: true }).catch((err: Error) => err);
        const got = many[i]!;
        if (alone instanceof Error) {
          expect(got, p).toBeInstanceOf(Error);
          expect([got.constructor.name, (got as Error).message], p).toEqual([alone.constructor.name, alone.message]);
        } else {
          expect(got instanceof Error ? got.message : got.equals(alone), p).toBe(true);
        }
      }
      // The sizes within the bound are read exactly; the one over it is refused, the others errors as expected.
      expect(many.slice(0, 4).map((b) => (b as Buffer).length)).toEqual([0, 1, 4096, 70_000]);
      expect(many[4]).toBeInstanceOf(Error);
      expect(many[5]).toBeInstanceOf(UnsafeVaultNode);
      expect((many[6] as NodeJS.ErrnoException).code).toBe('ENOENT');
      expect(many[7]).toBeInstanceOf(Error);
      expect(many[8]).toBeInstanceOf(UnsafeVaultNode);
    } finally {
      rmSync(vault, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("past a job's byte budget, files are stat'ed but read alone afterwards: still each one's exact bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sefs-many-budget-'));
    try {
      const area = areaOf(dir);
      // 3 MiB files: the job reads the first, and the second would pass its 4 MiB budget.
      const sizes = [3 << 20, 3 << 20, 100, 3 << 20, 5000];
      const paths = sizes.map((size, i) => {
        const p = join(dir, `f${i}`);
        writeFileSync(p, seededBytes(size, 50 + i));
        return p;
      });
      const raw = await native!.readFiles!(paths, true, 16 << 20, 4 << 20);
      expect(raw.map((r) => r.skipped === true)).toEqual([false, true, false, true, false]);
      expect(raw.map((r) => r.size)).toEqual(sizes); // skipped ones are still stat'ed
      const many = await readBoundedMany(paths, area, 16 << 20, { noAtime: true });
      many.forEach((b, i) => expect(Buffer.isBuffer(b) && b.equals(readFileSync(paths[i]!)), paths[i]).toBe(true));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
