/**
 * Everyday tools on a real mount: cp -a, tar, rsync, git and sqlite3 see a normal filesystem, and every
 * byte survives an unmount and a remount (then read back from the vault, not from the kernel's cache).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { disposeAll, fuseSuite, KiB, makeTree, MiB, prng, requireTools, run, sh, TestMount, treeDigest } from './helpers.js';

fuseSuite();

let m: TestMount;
beforeAll(async () => {
  requireTools('cp', 'tar', 'rsync', 'git', 'sqlite3');
  m = await TestMount.create('tools');
});
beforeEach(() => m.ensureMounted());
afterAll(disposeAll);

describe('cp -a', () => {
  it('copies files of 0, 1, 2, 3 B, 4 KiB, 3 MiB - 1, 3 MiB, 3 MiB + 1 and 20 MiB byte for byte, across a remount', async () => {
    const src = await makeTree(m.host('cp-src'), 1);
    const expected = await treeDigest(src, { mtimes: 'ms' });
    expect(Object.keys(expected).length).toBeGreaterThan(12);

    await run('cp', ['-a', src, m.at('cp')]);
    expect(await treeDigest(m.at('cp'), { mtimes: 'ms' })).toEqual(expected);

    await m.remount();
    expect(await treeDigest(m.at('cp'), { mtimes: 'ms' })).toEqual(expected);
    // And back out again.
    await run('cp', ['-a', m.at('cp'), m.host('cp-out')]);
    expect(await treeDigest(m.host('cp-out'), { mtimes: 'ms' })).toEqual(expected);
  });
});

describe('tar', () => {
  it('tar c | tar x into the mount and back out gives the same tree', async () => {
    const src = await makeTree(m.host('tar-src', 'tree'), 2, [0, 1, 2, 3, 100, 4 * KiB, 1 * MiB + 3, 3 * MiB + 1, 5 * MiB]);
    // tar archives keep whole seconds of mtime.
    const expected = await treeDigest(src, { mtimes: 's' });
    await sh(`mkdir -p "${m.at('tar')}" && tar -C "${m.host('tar-src')}" -cf - tree | tar -C "${m.at('tar')}" -xpf -`);
    expect(await treeDigest(m.at('tar', 'tree'), { mtimes: 'ms' })).toEqual(expected);
    await sh(`mkdir -p "${m.host('tar-out')}" && tar -C "${m.at('tar')}" -cf - tree | tar -C "${m.host('tar-out')}" -xpf -`);
    expect(await treeDigest(m.host('tar-out', 'tree'), { mtimes: 'ms' })).toEqual(expected);
  });
});

describe('rsync', () => {
  it('rsync -a copies a tree, and a second rsync -a transfers nothing', async () => {
    const src = await makeTree(m.host('rsync-src'), 3, [0, 1, 2, 3, 4 * KiB, 2 * MiB, 3 * MiB + 1, 7 * MiB]);
    const expected = await treeDigest(src, { mtimes: 'ms' });
    await run('rsync', ['-a', `${src}/`, `${m.at('rsync')}/`]);
    expect(await treeDigest(m.at('rsync'), { mtimes: 'ms' })).toEqual(expected);

    const second = await run('rsync', ['-a', '--itemize-changes', '--stats', `${src}/`, `${m.at('rsync')}/`]);
    expect(second.stdout).toMatch(/Number of regular files transferred: 0\b/);
    // --itemize-changes prints one line per changed item (times, sizes, permissions...): there must be none.
    const itemized = second.stdout.split('\n').filter((l) => /^[<>ch.*][fdLDS]/.test(l));
    expect(itemized).toEqual([]);
  });
});

describe('git', () => {
  it('git init, add, commit and fsck inside the mount, also after a remount', async () => {
    const repo = m.at('repo');
    const git = (...args: string[]) => run('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd: repo });
    await sh(`mkdir -p "${repo}/src"`);
    await git('init', '-q');
    const rand = prng(7);
    for (let i = 0; i < 20; i++) {
      const lines = Array.from({ length: 50 + i * 10 }, (_, j) => `line ${j} ${Math.floor(rand() * 1e9)}`).join('\n');
      await sh(`cat > "${repo}/src/file${i}.txt"`, { input: lines + '\n' });
    }
    await git('add', '-A');
    await git('commit', '-q', '-m', 'first');
    await sh(`echo changed >> "${repo}/src/file3.txt" && rm "${repo}/src/file4.txt" && mv "${repo}/src/file5.txt" "${repo}/src/renamed.txt"`);
    await git('add', '-A');
    await git('commit', '-q', '-m', 'second');
    await git('gc', '-q'); // packs objects: big writes, renames, deletions

    const check = async () => {
      await git('fsck', '--full', '--strict');
      expect((await git('rev-list', '--count', 'HEAD')).stdout.trim()).toBe('2');
      expect((await git('status', '--porcelain')).stdout).toBe('');
      expect((await git('show', 'HEAD:src/file3.txt')).stdout).toMatch(/changed\n$/);
    };
    await check();
    await m.remount();
    await check();
  });
});

describe('sqlite3', () => {
  it('creates a table, inserts 10k rows in a transaction and reads them back, also after a remount', async () => {
    const db = m.at('data.sqlite');
    const rand = prng(11);
    const rows = Array.from({ length: 10_000 }, (_, id) => ({ id, v: Math.floor(rand() * 2 ** 40), s: `row-${id}-${Math.floor(rand() * 1e6).toString(36)}` }));
    const insert = rows.map((r) => `INSERT INTO t VALUES (${r.id}, ${r.v}, '${r.s}');`).join('\n');
    await run('sqlite3', [db], { input: `CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);\nBEGIN;\n${insert}\nCOMMIT;\n` });

    const expectedSum = rows.reduce((a, r) => a + BigInt(r.v), 0n);
    const expectedDump = rows.map((r) => `${r.id}|${r.v}|${r.s}`).join('\n') + '\n';
    const check = async () => {
      const stats = await run('sqlite3', [db, 'PRAGMA integrity_check; SELECT count(*), sum(v) FROM t;']);
      expect(stats.stdout).toBe(`ok\n10000|${expectedSum}\n`);
      expect((await run('sqlite3', [db, 'SELECT id, v, s FROM t ORDER BY id;'])).stdout).toBe(expectedDump);
    };
    await check();
    await m.remount();
    await check();
    // A second transaction on the remounted file (journal create/delete, page rewrites in place).
    await run('sqlite3', [db, 'BEGIN; UPDATE t SET v = v + 1 WHERE id % 2 = 0; DELETE FROM t WHERE id >= 9000; COMMIT;']);
    const after = rows.filter((r) => r.id < 9000).reduce((a, r) => a + BigInt(r.v) + (r.id % 2 === 0 ? 1n : 0n), 0n);
    expect((await run('sqlite3', [db, 'PRAGMA integrity_check; SELECT count(*), sum(v) FROM t;'])).stdout).toBe(`ok\n9000|${after}\n`);
  });
});
