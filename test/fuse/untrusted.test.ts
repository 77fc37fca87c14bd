/**
 * The vault is untrusted ground (issue 9): someone with write access to it plants a hostile shape (a link, a
 * FIFO, a huge file, a poisoned chunk, a forged mount record, a foreign mount) and the daemon, running as root
 * here, must answer with a clear error or EIO, never act outside the vault. Each test plants one shape in a
 * real vault, drives the real CLI and mount, and checks that a victim outside the vault is unchanged.
 * native-notes/threat-model.md lists these tests by attack.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha3 } from '../../src/core/hash.js';
import { PACK_LIMIT, decodeEntry } from '../../src/vault/meta-entry.js';
import { CLI, KiB, MiB, TestMount, alive, codeOf, disposeAll, failure, fuseSuite, isMounted, requireFuse, run, seededBytes, sh, writeFileSynced } from './helpers.js';

fuseSuite();

/** A victim directory outside every vault, with a file; its digest says whether anything touched it. */
async function makeVictim(dir: string): Promise<string> {
  const victim = join(dir, 'victim');
  await mkdir(victim, { recursive: true });
  await writeFile(join(victim, 'precious'), 'do not touch\n', { mode: 0o644 });
  return victim;
}

async function victimState(victim: string): Promise<string> {
  const names = (await readdir(victim)).sort();
  const parts = await Promise.all(names.map(async (n) => `${n}:${(await lstat(join(victim, n))).mode.toString(8)}:${await readFile(join(victim, n), 'utf8').catch(() => '')}`));
  return `${(await lstat(victim)).mode.toString(8)}|${parts.join('|')}`;
}

/** A new sealed vault in `base` (cheap scrypt), and how to mount it at base/mnt. */
async function sealedVault(base: string): Promise<{ base: string; vault: string; mnt: string; mount: () => Promise<unknown> }> {
  await mkdir(base, { recursive: true });
  const pass = join(base, 'pass');
  await writeFile(pass, 'correct horse battery staple');
  const vault = join(base, 'vault');
  const mnt = join(base, 'mnt');
  await run(process.execPath, [CLI, 'init', vault, '--passphrase-file', pass, '--scrypt-log-n', '10']);
  return { base, vault, mnt, mount: () => run(process.execPath, [CLI, 'mount', vault, mnt, '--passphrase-file', pass]) };
}

/** The chunk files an entry names in the store (none for a packed small file). */
async function chunksOf(m: TestMount, name: string): Promise<string[]> {
  const entry = decodeEntry(await readFile(join(m.vault, 'meta', name)));
  if (entry.kind !== 'map' || entry.packed) return [];
  return entry.dataMap.chunks.map((c) => c.dstHash.toString('hex'));
}

describe('the vault as untrusted ground', () => {
  let dir: string;
  beforeAll(async () => {
    requireFuse();
    dir = await mkdtemp(join(tmpdir(), 'sefs-untrusted-'));
  });
  afterAll(async () => {
    await disposeAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('VAULT/tmp as a link to a victim directory: the mount refuses, the victim keeps its files', async () => {
    const victim = await makeVictim(join(dir, 'tmp-attack'));
    const vault = join(dir, 'tmp-attack', 'vault');
    await run(process.execPath, [CLI, 'init', vault]);
    await rm(join(vault, 'tmp'), { recursive: true });
    await symlink(victim, join(vault, 'tmp'));
    const before = await victimState(victim);
    const mnt = join(dir, 'tmp-attack', 'mnt');
    expect(await failure(['mount', vault, mnt])).toMatch(/tmp is a symbolic link where a directory belongs/);
    expect(await isMounted(mnt)).toBe(false);
    expect(await victimState(victim)).toBe(before);
  });

  it('VAULT/sefs.log as a link: nothing is appended to its target; an existing log is made 0600', async () => {
    const victim = await makeVictim(join(dir, 'log-attack'));
    const vault = join(dir, 'log-attack', 'vault');
    const mnt = join(dir, 'log-attack', 'mnt');
    await run(process.execPath, [CLI, 'init', vault]);
    await symlink(join(victim, 'precious'), join(vault, 'sefs.log'));
    const before = await victimState(victim);
    expect(await failure(['mount', vault, mnt])).toMatch(/sefs\.log is a symbolic link where a regular file belongs/);
    expect(await failure(['mount', vault, mnt, '--foreground'])).toMatch(/sefs\.log is a symbolic link/);
    expect(await isMounted(mnt)).toBe(false);
    expect(await victimState(victim)).toBe(before);

    await rm(join(vault, 'sefs.log'));
    await writeFile(join(vault, 'sefs.log'), 'old line\n', { mode: 0o644 });
    await chmod(join(vault, 'sefs.log'), 0o644);
    const { stdout } = await run(process.execPath, [CLI, 'mount', vault, mnt]);
    try {
      expect(stdout).toMatch(/mounted/);
      expect((await stat(join(vault, 'sefs.log'))).mode & 0o777).toBe(0o600);
    } finally {
      await run(process.execPath, [CLI, 'umount', mnt]);
    }
  });

  describe('links planted in meta/ while the kernel still caches what was there', () => {
    let m: TestMount;
    beforeAll(async () => {
      m = await TestMount.create('meta-links');
    });
    afterAll(async () => {
      await m.dispose();
    });

    it('a directory swapped for a link: chmod, listing and create through it are EIO, the victim is untouched', async () => {
      const victim = await makeVictim(join(dir, 'meta-dir-victim'));
      // meta/d -> ../../meta-dir-victim/victim from meta/ of m's vault: point at the victim by a path relative to meta/.
      await mkdir(m.at('d'));
      await writeFile(m.at('d', 'precious'), 'mine\n');
      const before = await victimState(victim);
      // Relative to meta/, where the link lives; from the mount point (one level less deep) it leads nowhere,
      // so only a daemon following the link could reach the victim.
      const relVictim = relative(join(m.vault, 'meta'), victim);
      const attempt = async (op: string) => {
        const meta = join(m.vault, 'meta');
        const { stdout } = await sh(`stat ${JSON.stringify(m.at('d', 'precious'))} >/dev/null
mv ${JSON.stringify(join(meta, 'd'))} ${JSON.stringify(join(meta, 'd.moved'))}
ln -s ${JSON.stringify(relVictim)} ${JSON.stringify(join(meta, 'd'))}
${op} 2>&1 || true`);
        await rm(join(meta, 'd'));
        await rename(join(meta, 'd.moved'), join(meta, 'd'));
        return stdout;
      };
      // The link does lead to the victim from meta/ (so the daemon would reach it if it followed links).
      await symlink(relVictim, join(m.vault, 'meta', 'probe'));
      expect((await readdir(join(m.vault, 'meta', 'probe'))).sort()).toEqual(['precious']);
      await rm(join(m.vault, 'meta', 'probe'));

      expect(await attempt(`chmod 600 ${JSON.stringify(m.at('d', 'precious'))}`)).toMatch(/Input\/output error/);
      expect(await attempt(`ls ${JSON.stringify(m.at('d'))}`)).toMatch(/Input\/output error/);
      expect(await attempt(`touch ${JSON.stringify(m.at('d', 'planted'))}`)).toMatch(/Input\/output error/);
      expect(await victimState(victim)).toBe(before);
      expect(await m.log()).toMatch(/UnsafeVaultNode/);
      // The vault's own directory is intact.
      expect(await readFile(m.at('d', 'precious'), 'utf8')).toBe('mine\n');
    });

    it('an entry swapped for a link to a host file: chmod and chown through it are EIO, the host file is untouched', async () => {
      const victim = await makeVictim(join(dir, 'meta-entry-victim'));
      await writeFileSynced(m.at('e'), 'mine\n'); // committed, not waiting for its write-back
      const before = await victimState(victim);
      const target = relative(join(m.vault, 'meta'), join(victim, 'precious'));
      const out = await swapThenEntry(target, [`chmod 600 ${JSON.stringify(m.at('e'))}`, `chown 1234 ${JSON.stringify(m.at('e'))}`]);
      expect(out.match(/Input\/output error/g)?.length).toBe(2);
      expect(await victimState(victim)).toBe(before);
      expect((await lstat(join(victim, 'precious'))).uid).toBe(0);
    });

    async function swapThenEntry(target: string, ops: string[]): Promise<string> {
      const meta = join(m.vault, 'meta');
      const { stdout } = await sh(`stat ${JSON.stringify(m.at('e'))} >/dev/null
mv ${JSON.stringify(join(meta, 'e'))} ${JSON.stringify(join(meta, 'e.moved'))}
ln -s ${JSON.stringify(target)} ${JSON.stringify(join(meta, 'e'))}
${ops.map((op) => `${op} 2>&1 || true`).join('\n')}`);
      await rm(join(meta, 'e'));
      await rename(join(meta, 'e.moved'), join(meta, 'e'));
      return stdout;
    }
  });

  it('in a sealed vault too: a directory swapped for a link leaves mkdir, rename, unlink and symlink through it EIO, the victim untouched', async () => {
    const { base, vault, mnt, mount } = await sealedVault(join(dir, 'sealed-links'));
    await mount();
    try {
      await mkdir(join(mnt, 'd'));
      await writeFile(join(mnt, 'd', 'f'), 'mine\n');
      await symlink('f', join(mnt, 'd', 'l'));
      await run(process.execPath, [CLI, 'umount', mnt]);
      await mount();
      const meta = join(vault, 'meta');
      const [sealedDir] = (await readdir(meta, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
      const victim = await makeVictim(join(base, 'victim-home'));
      // The victim holds what the sealed directory holds (its id and entries), so a daemon following the link
      // would find names it can decode and act on them there.
      for (const name of await readdir(join(meta, sealedDir!))) await sh(`cp -a ${JSON.stringify(join(meta, sealedDir!, name))} ${JSON.stringify(victim)}/`);
      const before = await victimState(victim);
      const relVictim = relative(meta, victim);
      const attempt = async (op: string) => {
        const { stdout } = await sh(`ls ${JSON.stringify(join(mnt, 'd'))} >/dev/null
mv ${JSON.stringify(join(meta, sealedDir!))} ${JSON.stringify(join(meta, 'moved'))}
ln -s ${JSON.stringify(relVictim)} ${JSON.stringify(join(meta, sealedDir!))}
${op} 2>&1 || true`);
        await rm(join(meta, sealedDir!));
        await rename(join(meta, 'moved'), join(meta, sealedDir!));
        return stdout;
      };
      for (const op of [`mkdir ${JSON.stringify(join(mnt, 'd', 'sub'))}`, `mv ${JSON.stringify(join(mnt, 'd', 'f'))} ${JSON.stringify(join(mnt, 'd', 'g'))}`, `rm ${JSON.stringify(join(mnt, 'd', 'l'))}`, `ln -s x ${JSON.stringify(join(mnt, 'd', 'planted'))}`]) {
        expect(await attempt(op), op).toMatch(/Input\/output error|No such file/);
        expect(await victimState(victim), op).toBe(before);
      }
      expect(await readFile(join(mnt, 'd', 'f'), 'utf8')).toBe('mine\n');
    } finally {
      await run(process.execPath, [CLI, 'umount', mnt]).catch(() => run('fusermount', ['-uz', mnt]));
    }
  });

  describe('hostile chunk and entry files', () => {
    let m: TestMount;
    beforeAll(async () => {
      m = await TestMount.create('hostile-files');
    });
    afterAll(async () => {
      await m.dispose();
    });

    it('a chunk replaced by a link to /dev/zero or by a FIFO: reads are EIO at once, memory stays low, unmount works', async () => {
      await writeFile(m.at('zero.bin'), seededBytes(4 * MiB, 11));
      await writeFile(m.at('fifo.bin'), seededBytes(4 * MiB, 12));
      await m.remount();
      const [zeroChunk] = await chunksOf(m, 'zero.bin');
      const [fifoChunk] = await chunksOf(m, 'fifo.bin');
      await rm(m.chunkPath(zeroChunk!));
      await symlink('/dev/zero', m.chunkPath(zeroChunk!));
      await rm(m.chunkPath(fifoChunk!));
      await run('mkfifo', [m.chunkPath(fifoChunk!)]);
      const started = Date.now();
      expect(await codeOf(readFile(m.at('zero.bin')))).toBe('EIO');
      expect(await codeOf(readFile(m.at('fifo.bin')))).toBe('EIO');
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(await m.peakRssMb()).toBeLessThan(1024);
      expect(await m.log()).toMatch(/is a symbolic link where a regular file belongs/);
      expect(await m.log()).toMatch(/is a special file where a regular file belongs/);
      await m.unmount();
      // fsck names both as unreadable, without hanging on the FIFO.
      const fsck = await run(process.execPath, [CLI, 'fsck', m.vault]).then(
        (r) => r.stdout,
        (err: Error) => err.message,
      );
      expect(fsck).toMatch(/zero\.bin/);
      expect(fsck).toMatch(/fifo\.bin/);
      await m.mount();
    });

    it('a huge sparse entry: stat is EIO at once, nothing is read', async () => {
      await writeFile(m.at('big-entry'), seededBytes(4 * KiB, 13));
      await m.remount();
      await truncate(join(m.vault, 'meta', 'big-entry'), 64 * 1024 * MiB);
      const started = Date.now();
      expect(await codeOf(stat(m.at('big-entry')))).toBe('EIO');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await m.log()).toMatch(/more than the format allows/);
      expect(await m.peakRssMb()).toBeLessThan(1024);
    });
  });

  it('a planted chunk of the right size under a predictable name heals on the next write of that content', async () => {
    const m = await TestMount.create('dedup-poison');
    try {
      const data = seededBytes(3 * MiB + 7, 21);
      await writeFile(m.at('first'), data);
      await m.unmount();
      const chunks = await chunksOf(m, 'first');
      // Poison every chunk of the file with same-sized garbage (what an attacker or bit rot leaves).
      for (const hex of chunks) {
        const size = (await stat(m.chunkPath(hex))).size;
        await writeFile(m.chunkPath(hex), Buffer.alloc(size, 0x5a));
      }
      await m.mount();
      expect(await codeOf(readFile(m.at('first')))).toBe('EIO');
      // The same content written again: dedup must not trust the planted files.
      await writeFile(m.at('second'), data);
      await m.remount();
      for (const hex of chunks) expect(sha3(await readFile(m.chunkPath(hex))).toString('hex')).toBe(hex);
      expect((await readFile(m.at('second'))).equals(data)).toBe(true);
      expect((await readFile(m.at('first'))).equals(data)).toBe(true);
    } finally {
      await m.dispose();
    }
  });

  describe('mount records and foreign mounts', () => {
    it('a registry directory another user made first is refused before mounting', async () => {
      const base = join(dir, 'registry');
      const victim = await makeVictim(join(base, 'elsewhere'));
      const runtime = join(base, 'run');
      await mkdir(runtime, { recursive: true });
      // Another user's directory (uid 65534), open to all, where root's mount would write its record.
      await mkdir(join(runtime, '.sefs-mounts'), { mode: 0o777 });
      await chmod(join(runtime, '.sefs-mounts'), 0o777);
      await sh(`chown 65534 ${JSON.stringify(join(runtime, '.sefs-mounts'))}`);
      const vault = join(base, 'vault');
      const mnt = join(base, 'mnt');
      await run(process.execPath, [CLI, 'init', vault]);
      const env = { XDG_RUNTIME_DIR: runtime };
      expect(await failure(['mount', vault, mnt], env)).toMatch(/owned by uid 65534: refusing/);
      // ... or a link to a victim directory.
      await rm(join(runtime, '.sefs-mounts'), { recursive: true });
      await symlink(victim, join(runtime, '.sefs-mounts'));
      const before = await victimState(victim);
      expect(await failure(['mount', vault, mnt], env)).toMatch(/is a symbolic link: refusing/);
      expect(await isMounted(mnt)).toBe(false);
      expect(await victimState(victim)).toBe(before);
    });

    it('sefs umount signals only the daemon of that vault: a forged record naming another process is not followed', async () => {
      const base = join(dir, 'forged');
      const runtime = join(base, 'run');
      await mkdir(runtime, { recursive: true, mode: 0o700 });
      const env = { XDG_RUNTIME_DIR: runtime };
      const vault = join(base, 'vault');
      const mnt = join(base, 'mnt');
      await run(process.execPath, [CLI, 'init', vault]);
      const { stdout } = await run(process.execPath, [CLI, 'mount', vault, mnt], { env });
      const daemon = Number(/daemon pid (\d+)/.exec(stdout)![1]);
      const bystander = spawn('sleep', ['600'], { stdio: 'ignore' });
      try {
        // Overwrite the record with one naming the bystander (as a user who could write the registry would).
        const key = createHash('sha256').update(mnt).digest('hex').slice(0, 24);
        await writeFile(join(runtime, '.sefs-mounts', `${key}.json`), JSON.stringify({ pid: bystander.pid, vault, mountpoint: mnt }));
        await run(process.execPath, [CLI, 'umount', mnt], { env });
        expect(alive(bystander.pid!)).toBe(true);
        expect(await isMounted(mnt)).toBe(false);
      } finally {
        bystander.kill('SIGKILL');
        if (alive(daemon)) process.kill(daemon, 'SIGKILL');
        if (await isMounted(mnt)) await run('fusermount', ['-uz', mnt]);
      }
    });

    it('a foreign filesystem on the mount point is never unmounted: not by a mount with a stale pid file, not by sefs umount', async () => {
      const base = join(dir, 'foreign');
      const vault = join(base, 'vault');
      const mnt = join(base, 'mnt');
      await run(process.execPath, [CLI, 'init', vault]);
      await mkdir(mnt, { recursive: true });
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
      try {
        await writeFile(join(mnt, 'foreign-file'), 'keep\n');
        // A stale pid file: a process that is gone.
        await writeFile(join(vault, 'sefs.pid'), '999999999');
        expect(await failure(['mount', vault, mnt])).toMatch(/already mounted \(tmpfs/);
        expect(await failure(['umount', mnt])).toMatch(/not a sefs mount \(tmpfs/);
        expect(await isMounted(mnt)).toBe(true);
        expect(await readFile(join(mnt, 'foreign-file'), 'utf8')).toBe('keep\n');
      } finally {
        await run('umount', [mnt]);
      }
    });
  });

  describe('log lines', () => {
    it('names are escaped: a file name cannot add a line of its own to the log', async () => {
      const m = await TestMount.create('log-escape');
      try {
        const name = 'x\nINJECTED ssh-ed25519 AAAA attacker\n\u001b[2J';
        await writeFile(m.at(name), seededBytes(PACK_LIMIT + 64 * KiB, 31));
        await m.remount();
        for (const hex of await chunksOf(m, name)) await rm(m.chunkPath(hex));
        expect(await codeOf(readFile(m.at(name)))).toBe('EIO');
        const log = await m.log();
        expect(log).toMatch(/x\\nINJECTED/);
        expect(log.split('\n').some((line) => line.startsWith('INJECTED'))).toBe(false);
        expect(log).not.toContain('\u001b');
      } finally {
        await m.dispose();
      }
    });

    it('a sealed vault logs no plaintext path, even when a read fails on a missing chunk', async () => {
      const { vault, mnt, mount } = await sealedVault(join(dir, 'sealed-log'));
      await mount();
      try {
        await mkdir(join(mnt, 'private-dir'));
        await writeFile(join(mnt, 'private-dir', 'secret-name.txt'), seededBytes(PACK_LIMIT + 64 * KiB, 41));
        await run(process.execPath, [CLI, 'umount', mnt]);
        // Remove every chunk: the file's read fails.
        await sh(`find ${JSON.stringify(join(vault, 'chunks'))} -type f -name '????????????????????????????????????????????????????????????????' -delete`);
        await mount();
        expect(await codeOf(readFile(join(mnt, 'private-dir', 'secret-name.txt')))).toBe('EIO');
        const log = await readFile(join(vault, 'sefs.log'), 'utf8');
        expect(log).toMatch(/read "meta\/[^"]+\/[^"]+": ChunkNotFound chunk [0-9a-f]{64}/);
        expect(log).not.toMatch(/secret-name|private-dir/);
        expect((await stat(join(vault, 'sefs.log'))).mode & 0o777).toBe(0o600);
      } finally {
        await run(process.execPath, [CLI, 'umount', mnt]).catch(() => run('fusermount', ['-uz', mnt]));
      }
    });
  });
});
