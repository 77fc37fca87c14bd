/**
 * The entry format's node fields (version 2), the xattr rules, and the inode-number counter, without a mount;
 * an entry of the old format (version 1, no inode number) served by a real mount.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidDataMap } from '../src/core/errors.js';
import { decodeEntry, encodeEntry, frameEntry, type MetaEntry } from '../src/vault/meta-entry.js';
import { INO_BASE, InodeNumbers } from '../src/vault/inode-numbers.js';
import { XATTR_CREATE, XATTR_REPLACE, getXattr, listXattrs, removeXattr, setXattr } from '../src/vault/xattrs.js';
import { plainCodec } from '../src/vault/meta-codec.js';
import { VaultBuilder } from './helpers/vault.js';
import { disposeAll, fuseSuite, run, sh, TestMount } from './fuse/helpers.js';

fuseSuite();
afterAll(disposeAll);

const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).name;
  }
};

describe('entry node fields', () => {
  const plain: MetaEntry = { kind: 'inline', size: 2, data: Buffer.from('hi') };

  it('an entry without node fields is version 1, byte for byte as before', () => {
    expect(encodeEntry(plain).equals(frameEntry(0, 2, Buffer.from('hi')))).toBe(true);
    expect(encodeEntry(plain)[4]).toBe(1);
  });

  it('round-trips inode number, type and rdev, xattrs and link as version 2', () => {
    const node = { ino: INO_BASE + 7, type: 0o020000, rdev: 0x0103, xattrs: new Map([['user.a', Buffer.from('x')], ['trusted.é', Buffer.alloc(0)]]) };
    const bytes = encodeEntry({ ...plain, node });
    expect(bytes[4]).toBe(2);
    expect(decodeEntry(bytes)).toEqual({ ...plain, node });
    expect(decodeEntry(encodeEntry({ kind: 'inline', size: 0, data: Buffer.alloc(0), node: { link: 42 } })).node).toEqual({ link: 42 });
  });

  it('an unknown field, a bad type or a truncated field is damage', () => {
    const field = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), Buffer.from(new Uint32Array([body.length]).buffer), body]);
    const v2 = (fields: Buffer): Buffer => {
      const framed = frameEntry(0, 0, Buffer.alloc(0), fields);
      return framed;
    };
    expect(() => decodeEntry(v2(field(9, Buffer.alloc(1))))).toThrow(InvalidDataMap);
    expect(() => decodeEntry(v2(field(2, Buffer.alloc(12))))).toThrow(/type/);
    expect(() => decodeEntry(v2(field(1, Buffer.alloc(4))))).toThrow(/truncated/);
  });
});

describe('xattr rules', () => {
  it('as the kernel and ext4 give them', () => {
    let x = setXattr(undefined, 'user.a', Buffer.from('1'), 0);
    expect(code(() => setXattr(x, 'user.a', Buffer.from('2'), XATTR_CREATE))).toBe('EEXIST');
    expect(code(() => setXattr(x, 'user.b', Buffer.from('2'), XATTR_REPLACE))).toBe('ENODATA');
    expect(code(() => getXattr(x, 'user.b'))).toBe('ENODATA');
    expect(code(() => removeXattr(x, 'user.b'))).toBe('ENODATA');
    expect(code(() => setXattr(x, 'user.' + 'n'.repeat(251), Buffer.alloc(0), 0))).toBe('ERANGE');
    expect(code(() => setXattr(x, 'other.a', Buffer.alloc(0), 0))).toBe('EOPNOTSUPP');
    expect(code(() => setXattr(x, 'system.other', Buffer.alloc(0), 0))).toBe('EOPNOTSUPP');
    expect(code(() => setXattr(x, 'system.posix_acl_access', Buffer.alloc(28), 0))).toBe('EOPNOTSUPP');
    expect(code(() => setXattr(x, 'user.v', Buffer.alloc(64 * 1024 + 1), 0))).toBe('E2BIG');
    for (let i = 0; i < 3; i++) x = setXattr(x, `user.v${i}`, Buffer.alloc(64 * 1024), 0);
    expect(code(() => setXattr(x, 'user.v3', Buffer.alloc(64 * 1024), 0))).toBe('ENOSPC');
    x = setXattr(x, 'user.a', Buffer.from('22'), XATTR_REPLACE);
    expect(getXattr(x, 'user.a').toString()).toBe('22');
    expect(listXattrs(x)).toEqual(['user.a', 'user.v0', 'user.v1', 'user.v2']);
    expect(removeXattr(setXattr(undefined, 'user.z', Buffer.alloc(1), 0), 'user.z')).toBeUndefined();
  });
});

describe('inode numbers', () => {
  it('are handed out once, above the host range, and never again after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sefs-ino-'));
    try {
      const file = join(dir, 'inodes');
      const first = new InodeNumbers(file);
      const a = await Promise.all(Array.from({ length: 5000 }, () => first.allocate()));
      expect(new Set(a).size).toBe(5000);
      expect(Math.min(...a)).toBe(INO_BASE);
      // A restart (or a crash) skips what was reserved and not used.
      const reserved = Number((await readFile(file, 'utf8')).trim());
      expect(reserved).toBeGreaterThan(Math.max(...a));
      expect(await new InodeNumbers(file).allocate()).toBe(reserved);
      await writeFile(file, 'garbage');
      expect(await new InodeNumbers(file).allocate().catch((err: NodeJS.ErrnoException) => err.code)).toBe('EIO');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('an entry of the old format', () => {
  it('is served with its host inode number until its first commit, then keeps a stored one', async () => {
    const m = await TestMount.create('nodes-v1');
    await m.unmount();
    await new VaultBuilder(m.vault, plainCodec).add('/old.txt', Buffer.from('written by an older sefs'));
    expect((await readFile(join(m.vault, 'meta/old.txt')))[4]).toBe(1);
    await m.mount();
    expect(await readFile(m.at('old.txt'), 'utf8')).toBe('written by an older sefs');
    expect(lstatSync(m.at('old.txt')).ino).toBe(lstatSync(join(m.vault, 'meta/old.txt')).ino);
    await sh(`echo more >> ${m.at('old.txt')} && sync ${m.at('old.txt')}`);
    const ino = lstatSync(m.at('old.txt')).ino;
    expect(ino).toBeGreaterThanOrEqual(INO_BASE);
    await m.remount();
    expect(lstatSync(m.at('old.txt')).ino).toBe(ino);
    expect((await readFile(join(m.vault, 'meta/old.txt')))[4]).toBe(2);
    expect((await run('cat', [m.at('old.txt')])).stdout).toBe('written by an older sefsmore\n');
    await m.dispose();
  });
});
