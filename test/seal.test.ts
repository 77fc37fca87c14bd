/**
 * Sealed metadata: names, entries and symlink targets round-trip through the codec and do not show in
 * meta/; a wrong passphrase is one clear error that writes nothing; a sealed vault mounted through the CLI
 * works with cp and cat, and fsck, gc and stats read it with the passphrase.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidDataMap } from '../src/core/errors.js';
import { fsck } from '../src/vault/fsck.js';
import { SealError, WrongPassphrase, codecForMaster, createSeal, openSeal } from '../src/vault/seal.js';
import { readPassphrase } from '../src/cli/passphrase.js';
import { type VaultConfig, initVault } from '../src/vault/config.js';
import { storedFormOf } from '../src/vault/meta-dir.js';
import { openVault } from '../src/vault/walk.js';
import { ensureBuiltCli } from './helpers/build.js';
import { seededBytes, textLike } from './helpers/inputs.js';
import { VaultBuilder, mountCli, sefs, unmountCli } from './helpers/vault.js';
import { oneLineError, snapshot } from './helpers/assert-cli.js';

const pass = Buffer.from('correct horse battery staple');
/** Low scrypt cost for speed; the default (2^17) is what `sefs init` uses. */
const LOG_N = 12;

describe('sealed codec', () => {
  const dirA = new Uint8Array(16).fill(1);
  const dirB = new Uint8Array(16).fill(2);

  it('round-trips names, entries and symlink targets bound to their place; names and targets are deterministic, entries are not', async () => {
    const { params, codec, sign } = await createSeal(pass, { logN: LOG_N });
    const config = { format: 2, profile: 'fast', cacheMb: 128, store: 'disk', createdAt: 'now', seal: params } as unknown as VaultConfig;
    config.mac = sign(config);
    const reopened = await openSeal(config, Buffer.from(pass), '/v');
    for (const name of ['a', 'report.pdf', 'é ü 日本語 🙂', ' leading space', '.hidden', 'x'.repeat(175), 'y'.repeat(255)]) {
      const stored = codec.encodeName(name, dirA);
      expect(stored).toMatch(/^[A-Za-z0-9_-]+$/);
      if (name.length > 4) expect(stored).not.toContain(name);
      expect(reopened.encodeName(name, dirA)).toBe(stored);
      expect(reopened.decodeName(stored, dirA)).toBe(name);
      // Equal names in two directories differ, and a name does not decode in another directory.
      expect(codec.encodeName(name, dirB)).not.toBe(stored);
      expect(reopened.decodeName(stored, dirB)).toBeUndefined();
    }
    const entry = textLike(500, 1);
    const here = { dir: dirA, name: 'f' };
    const a = codec.sealEntry(entry, here);
    const b = codec.sealEntry(entry, here);
    expect(a.equals(b)).toBe(false); // a fresh nonce per write
    expect(reopened.openEntry(a, here).equals(entry)).toBe(true);
    expect(reopened.openEntry(b, here).equals(entry)).toBe(true);
    // Bound to its name and directory.
    expect(() => reopened.openEntry(a, { dir: dirA, name: 'g' })).toThrow(/does not authenticate here/);
    expect(() => reopened.openEntry(a, { dir: dirB, name: 'f' })).toThrow(/does not authenticate here/);
    const link = codec.sealLink('../some/where else', here);
    expect(reopened.openLink(link, here)).toEqual({ target: '../some/where else' });
    expect(() => reopened.openLink(link, { dir: dirB, name: 'f' })).toThrow(InvalidDataMap);
    expect(link).not.toBe(codec.encodeName('../some/where else', dirA)); // names and targets are separate domains
    // A symlink's inode number travels sealed with its target (a sealed rename makes a new host symlink).
    const numbered = codec.sealLink('../some/where else', here, 2 ** 31 + 5);
    expect(reopened.openLink(numbered, here)).toEqual({ target: '../some/where else', ino: 2 ** 31 + 5 });
  });

  it('stores a name of up to 255 bytes: long sealed names by hash, never over 255 on the host', () => {
    const codec = codecForMaster(Buffer.alloc(32, 7));
    const short = storedFormOf(codec.encodeName('x'.repeat(175), dirA));
    const long = storedFormOf(codec.encodeName('x'.repeat(176), dirA));
    expect(short).toMatch(/^[A-Za-z0-9_-]{255}$/);
    expect(long).toMatch(/^~[A-Za-z0-9_-]{43}$/);
    expect(storedFormOf(codec.encodeName('é'.repeat(127), dirA)).length).toBeLessThanOrEqual(255);
  });

  it('hides stored names that are not its own, and refuses tampered entries and targets', async () => {
    const codec = codecForMaster(Buffer.alloc(32, 7));
    const here = { dir: dirA, name: 'f' };
    expect(codec.decodeName('plain-name.txt', dirA)).toBeUndefined();
    expect(codec.decodeName('A'.repeat(40), dirA)).toBeUndefined();
    const sealed = codec.sealEntry(Buffer.from('entry bytes'), here);
    sealed[sealed.length - 1]! ^= 1;
    expect(() => codec.openEntry(sealed, here)).toThrow(InvalidDataMap);
    const other = (await createSeal(pass, { logN: LOG_N })).codec; // same passphrase, another master key
    expect(() => other.openEntry(codec.sealEntry(Buffer.from('x'), here), here)).toThrow(InvalidDataMap);
    expect(other.decodeName(codec.encodeName('name', dirA), dirA)).toBeUndefined();
    expect(() => other.openLink(codec.sealLink('t', here), here)).toThrow(InvalidDataMap);
  });

  it('tells a wrong passphrase, and refuses KDF parameters out of bounds before any work', async () => {
    const { params, sign } = await createSeal(pass, { logN: LOG_N });
    const config = { format: 2, profile: 'fast', seal: params } as unknown as VaultConfig;
    config.mac = sign(config);
    await expect(openSeal(config, Buffer.from('wrong'), '/v')).rejects.toThrow(WrongPassphrase);
    for (const hostile of [{ logN: 40 }, { logN: 22 }, { logN: 17, r: 32 }, { logN: 17, p: 16 }, { logN: 5 }, { r: 0.5 }]) {
      const started = Date.now();
      const bad = { ...config, seal: { ...params, ...hostile } } as VaultConfig;
      await expect(openSeal(bad, Buffer.from(pass), '/v')).rejects.toThrow(SealError);
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('reads the passphrase file without its trailing newline', async () => {
    const d = await mkdtemp(join(tmpdir(), 'sefs-pass-'));
    await writeFile(join(d, 'p'), 'secret\r\n');
    expect(Buffer.from((await readPassphrase({ 'passphrase-file': join(d, 'p') }))!).toString()).toBe('secret');
    await writeFile(join(d, 'e'), '\n');
    await expect(readPassphrase({ 'passphrase-file': join(d, 'e') })).rejects.toThrow(/empty/);
    await rm(d, { recursive: true });
  });
});

describe('fsck of a sealed vault', () => {
  it('reports a stored name that does not decode and an entry that does not authenticate', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sefs-seal-fsck-'));
    const seal = await createSeal(pass, { logN: LOG_N });
    await initVault(root, { seal });
    const builder = new VaultBuilder(root, seal.codec);
    await builder.addAll({ '/docs/a.txt': textLike(5000, 1), '/docs/b.txt': textLike(6000, 2), '/c': seededBytes(100, 3) });
    const vault = await openVault(root, Buffer.from(pass));
    expect((await fsck(vault, { deep: true })).damaged).toEqual([]);

    const docs = builder.meta.diskPath('/docs');
    await rename(builder.meta.diskPath('/docs/a.txt'), join(docs, 'A'.repeat(40)));
    const c = builder.meta.diskPath('/c');
    const bytes = await readFile(c);
    bytes[30]! ^= 1;
    await writeFile(c, bytes);
    const r = await fsck(vault);
    expect(r.damaged.map((d) => [d.path, d.entryError])).toEqual([
      ['/c', expect.stringMatching(/does not authenticate/)],
      [`/docs/?${'A'.repeat(40)}`, expect.stringMatching(/^stored name does not decode in this directory/)],
    ]);
    await expect(openVault(root, Buffer.from('nope'))).rejects.toThrow(WrongPassphrase);
    await rm(root, { recursive: true });
  });
});

describe('a sealed vault through the CLI', () => {
  let dir: string;
  let vault: string;
  let mnt: string;
  let pw: string;
  let bad: string;

  beforeAll(async () => {
    ensureBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'sefs-seal-'));
    vault = join(dir, 'vault');
    mnt = join(dir, 'mnt');
    pw = join(dir, 'pw');
    bad = join(dir, 'bad');
    await writeFile(pw, `${pass.toString()}\n`);
    await writeFile(bad, 'not it\n');
    const init = await sefs('init', vault, '--passphrase-file', pw, '--scrypt-log-n', String(LOG_N));
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/metadata sealed/);
  });
  afterAll(async () => {
    await unmountCli(mnt);
    await rm(dir, { recursive: true, force: true });
  });

  it('stores the KDF parameters, salt, wrapped master key and settings MAC in sefs.json', async () => {
    const config = JSON.parse(await readFile(join(vault, 'sefs.json'), 'utf8')) as { format: number; seal: Record<string, unknown>; mac: string };
    expect(config.format).toBe(2);
    expect(config.seal).toMatchObject({ version: 2, kdf: 'scrypt', logN: LOG_N, r: 8, p: 1 });
    expect(Buffer.from(config.seal.masterKey as string, 'base64').length).toBe(24 + 32 + 16);
    expect(config.mac).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a wrong or missing passphrase with one line, writing nothing', async () => {
    const before = snapshot(dir);
    oneLineError(await sefs('mount', vault, mnt, '--passphrase-file', bad), /wrong passphrase/);
    oneLineError(await sefs('mount', vault, mnt, '--foreground', '--passphrase-file', bad), /wrong passphrase/);
    oneLineError(await sefs('mount', vault, mnt), /is sealed: give its passphrase with --passphrase-file/);
    for (const cmd of ['fsck', 'gc', 'stats']) {
      oneLineError(await sefs(cmd, vault, '--passphrase-file', bad), /wrong passphrase/);
      oneLineError(await sefs(cmd, vault), /is sealed/);
    }
    oneLineError(await sefs('init', vault, '--passphrase-file', bad), /wrong passphrase/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('serves cp and cat; meta/ shows no name, target or content in the clear; fsck, gc and stats read it', async () => {
    const names = ['quarterly-report.txt', 'holiday-photos', 'secret-plans.md', 'résumé-draft.odt'];
    const src = join(dir, 'src');
    await mkdir(join(src, names[1]!), { recursive: true });
    const contents: Record<string, Buffer> = {
      [names[0]!]: textLike(30_000, 3),
      [`${names[1]}/${names[2]}`]: Buffer.from('the plans are in the plans file\n'),
      [`${names[1]}/${names[3]}`]: seededBytes(4 * 1024 * 1024 + 7, 4),
      'xy': Buffer.from('xy'), // inline in its entry
    };
    for (const [rel, data] of Object.entries(contents)) await writeFile(join(src, rel), data);
    await symlink(`${names[1]}/${names[2]}`, join(src, 'link-to-plans'));

    await mountCli(vault, mnt, '--passphrase-file', pw);
    await promisify(execFile)('cp', ['-a', `${src}/.`, mnt]);
    for (const [rel, data] of Object.entries(contents)) {
      const { stdout } = await promisify(execFile)('cat', [join(mnt, rel)], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
      expect(stdout.equals(data), rel).toBe(true);
    }
    expect(await readlink(join(mnt, 'link-to-plans'))).toBe(`${names[1]}/${names[2]}`);
    expect(readdirSync(mnt).sort()).toEqual([names[0], names[1], 'link-to-plans', 'xy'].sort());
    await unmountCli(mnt);

    // Nothing readable in meta/: neither in the stored names, nor in symlink targets, nor in any file's bytes.
    const secrets = [...names, 'link-to-plans', 'plans']; // long enough not to turn up by chance
    const meta = join(vault, 'meta');
    const stored: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        stored.push(e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isSymbolicLink()) stored.push(readlinkSync(p));
        else stored.push(readFileSync(p).toString('latin1'));
      }
    };
    walk(meta);
    expect(stored.length).toBe(15); // 6 names, 4 entries, 1 symlink target, 2 directory ids (name and bytes)
    for (const secret of secrets) for (const s of stored) expect(s.includes(secret), `${secret} in meta/`).toBe(false);
    const grep = await new Promise<string>((res) =>
      execFile('grep', ['-r', '-l', '-a', '-e', 'plans', '-e', 'report', '-e', 'holiday', meta], (err, out, errout) => res(`${err?.code ?? 0} ${out}${errout}`)),
    );
    expect(grep).toBe('1 '); // grep: no match

    const fsck = await sefs('fsck', vault, '--deep', '--passphrase-file', pw, '--json');
    expect(fsck.code, fsck.stderr + fsck.stdout).toBe(0);
    expect(JSON.parse(fsck.stdout)).toMatchObject({ ok: true, sealed: true, files: 4, directories: 1, symlinks: 1 });
    const stats = await sefs('stats', vault, '--passphrase-file', pw);
    expect(stats.stdout).toMatch(/^metadata +sealed/m);
    expect((await sefs('gc', vault, '--passphrase-file', pw)).code).toBe(0);

    // And back through a new mount.
    await mountCli(vault, mnt, '--passphrase-file', pw);
    expect((await readFile(join(mnt, names[1]!, names[3]!))).equals(contents[`${names[1]}/${names[3]}`]!)).toBe(true);
    await unmountCli(mnt);
  });

  it('does not seal an existing unsealed vault', async () => {
    const plain = join(dir, 'plain');
    expect((await sefs('init', plain)).code).toBe(0);
    oneLineError(await sefs('init', plain, '--passphrase-file', pw), /already an unsealed vault/);
    oneLineError(await sefs('fsck', plain, '--passphrase-file', pw), /not sealed/);
  });
});
