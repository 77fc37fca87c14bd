/**
 * sefs mount VAULT MOUNTPOINT [--cache-mb N] [--threads N] [--read-only] [--allow-other] [--foreground]
 *            [--passphrase-file F | --passphrase-fd N] [-o OPTS]
 * Without --foreground it starts itself again in the foreground as a detached daemon, waits until the
 * mount is live, and returns. `-o` takes fstab's options (mount.fuse runs `sefs VAULT MNT -o OPTS`).
 */
import { spawn } from 'node:child_process';
import { fstatSync, readSync } from 'node:fs';
import { openAppendSync, vaultArea } from '../../vault/safe-fs.js';
import { access } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFuse } from '../../fs/fuse-binding.js';
import { mountVault } from '../../fs/mount.js';
import { checkMountPlace, realPath } from '../../fs/mount-paths.js';
import { vaultCodec } from '../../vault/seal.js';
import { plainCodec } from '../../vault/meta-codec.js';
import { forgetMount, privateRegistry, recordMount } from '../../fs/mount-registry.js';
import { isMounted, isMountedAt } from '../../fs/stale-mount.js';
import { VaultError, initVault, readVaultConfig, vaultPaths } from '../../vault/config.js';
import { GC_SIGNAL, readGcRequest, writeGcAnswer } from '../../vault/gc-request.js';
import { type OptionTable, type Parsed, cacheMb, threadCount } from '../args.js';
import { hasPassphraseSource, passphraseOptions, passphraseUsage, readPassphrase } from '../passphrase.js';
import { checkDirectory } from '../vault.js';
import { type MountSettings, allowOtherRefusal, mountSettings } from '../mount-options.js';

export const summary = 'mount a vault as a normal directory';
export const usage = `usage: sefs mount VAULT MOUNTPOINT [--cache-mb N] [--disk-cache-mb N] [--threads N] [--read-only] [--allow-other]
                  [--foreground] [--passphrase-file F | --passphrase-fd N] [-o OPTIONS]

Serves VAULT at MOUNTPOINT (both created when missing). Every file written there is self-encrypted
into VAULT/chunks; VAULT/meta holds the DataMaps. Ctrl-C or SIGTERM commits open files and unmounts;
so does 'sefs umount MOUNTPOINT' (or umount/fusermount -u).
  --cache-mb N    decrypted-chunk cache size, 1 to 1048576 (default from sefs.json, 128)
  --disk-cache-mb N  a vault with chunks in S3 (sefs init --chunks): its local chunk cache in
                  VAULT/chunks, LRU, 1 to 1048576 (default 1024); new chunks upload from it in the
                  background, and writers wait while those not yet uploaded fill it
  --threads N     crypto worker threads, 1 to 256 (default: one per core)
  --read-only     mount read-only: every change is refused with EROFS
  --allow-other   let other users see the files (as a user other than root this needs
                  'user_allow_other' in /etc/fuse.conf)
  --foreground    stay in the foreground (default: run as a daemon logging to VAULT/sefs.log)
${passphraseUsage}
  -o OPTIONS      mount options as fstab gives them (type fuse.sefs, through mount.fuse):
                  allow_other, ro, rw, passphrase_file=F, cache_mb=N, disk_cache_mb=N, threads=N; noexec, noatime,
                  sync and dirsync go to the kernel; the generic ones mount passes (defaults, dev,
                  suid, nofail, _netdev, noauto, user, x-systemd.*, ...) are accepted and change nothing
`;

export const options = {
  'cache-mb': { type: 'string', help: 'decrypted-chunk cache size (MiB)' },
  'disk-cache-mb': { type: 'string', help: "an S3 vault's local chunk cache size (MiB)" },
  threads: { type: 'string', help: 'crypto worker threads (1 to 256)' },
  'read-only': { type: 'boolean', help: 'mount read-only (EROFS on every change)' },
  'allow-other': { type: 'boolean', help: 'let other users see the files' },
  foreground: { type: 'boolean', help: 'stay in the foreground instead of running as a daemon' },
  ...passphraseOptions,
  o: { type: 'string', short: 'o', multiple: true, help: 'mount options as fstab gives them', complete: ['allow_other', 'ro', 'rw', 'passphrase_file=', 'cache_mb=', 'disk_cache_mb=', 'threads=', 'noexec', 'noatime'] },
} as const satisfies OptionTable;
export const operands = [
  { name: 'VAULT', complete: 'dir' },
  { name: 'MOUNTPOINT', complete: 'dir' },
] as const;

export async function run({ values, operands: [vault, mnt] }: Parsed<typeof options>): Promise<number> {
  const settings = mountSettings(values, { cacheMb: cacheMb(values['cache-mb']), diskCacheMb: cacheMb(values['disk-cache-mb'], '--disk-cache-mb'), threads: threadCount(values.threads) });
  await checkDirectory(vault!, 'a vault directory', true);
  await checkDirectory(mnt!, 'a directory', true);
  const refusal = settings.allowOther ? await allowOtherRefusal() : undefined;
  if (refusal) throw new VaultError(refusal);
  // Refusals that need no daemon answer here, as one line: an unpatched binding, a mount nested in its vault.
  loadFuse();
  await checkMountPlace(vault!, mnt!);
  const exists = await access(vaultPaths(vault!).config).then(() => true, () => false);
  if (!exists && settings.readOnly) throw new VaultError(`${vault} is not a vault yet: a read-only mount cannot create one (run sefs init ${vault})`);
  if (!exists && hasPassphraseSource(settings.passphrase)) {
    throw new VaultError(`${vault} is not a vault yet: create it sealed with sefs init ${vault} --seal (or --passphrase-file F)`);
  }
  // The passphrase is read once, here, and a wrong or missing one fails in the foreground before anything is written.
  const config = exists ? await readVaultConfig(vault!) : undefined;
  const passphrase = await readPassphrase(settings.passphrase, config?.seal ? { vault: vault! } : undefined);
  // vaultCodec zero-fills what it is given: a daemon still needs the bytes, so it checks a copy.
  const codec = config ? await vaultCodec(config, passphrase && Buffer.from(passphrase), vault!) : plainCodec;
  if (values.foreground) passphrase?.fill(0);
  // Where `sefs umount` will find this mount: refused now, before mounting, if another user could steer it.
  await privateRegistry();
  if (!values.foreground) return daemonize(vault!, mnt!, settings, passphrase);
  const { cacheMb: cache, diskCacheMb, threads, readOnly, allowOther, kernelOptions } = settings;

  // A rejection nobody handled is a bug, but the mount must outlive it (a dead daemon leaves a dead mount):
  // it is logged loudly (the tests fail on such a line) instead of ending the process.
  // The log may sit on the full disk the mount is reporting ENOSPC for: a failed log line must not end the daemon.
  process.stderr.on('error', () => {});
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`sefs: BUG: unhandled rejection: ${(err as Error)?.stack ?? String(err)}\n`);
  });
  // sefs gc of this vault may signal as soon as the pid file exists, before the mount is up: a signal
  // without a handler would end the process, so the handler comes first and holds requests until then.
  let serveGc: (() => void) | undefined;
  let gcAsked = false;
  process.on(GC_SIGNAL, () => (serveGc ? serveGc() : (gcAsked = true)));
  const mounted = await mountVault(vault!, mnt!, { cacheMb: cache, diskCacheMb, threads, codec, readOnly, allowOther, kernelOptions });
  serveGc = () => {
    const started = Date.now();
    readGcRequest(mounted.vault)
      .then(async (request) => {
        const answer = await mounted.collectGarbage(request.dryRun).then(
          (r) => ({ id: request.id, report: { ...r, seconds: (Date.now() - started) / 1000 } }),
          (err: Error) => ({ id: request.id, error: err.message }),
        );
        await writeGcAnswer(mounted.vault, answer);
      })
      .catch((err: Error) => process.stderr.write(`sefs: gc request: ${err.message}\n`));
  };
  if (gcAsked) serveGc();
  await recordMount({ pid: process.pid, vault: mounted.vault, mountpoint: mounted.mountpoint });
  process.stderr.write(`sefs: ${mounted.vault} mounted at ${mounted.mountpoint} (Ctrl-C or 'sefs umount ${mnt}' to unmount)\n`);
  // Tell a waiting parent (daemon mode) we are live; it closes the channel.
  process.send?.({ ready: true });

  await new Promise<void>((done) => {
    const stop = (why: string) => {
      process.stderr.write(`sefs: ${why}: committing open files and unmounting\n`);
      mounted.unmount().then(done, (err: Error) => {
        process.stderr.write(`sefs: unmount: ${err.message}\n`);
        done();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGHUP', () => stop('SIGHUP'));
    // Unmounted from outside (fusermount -u): stop serving.
    const watch = setInterval(() => {
      // The mount point as resolved at mount time: resolving it again would stat the mount's root.
      isMountedAt(mounted.mountpoint).then((yes) => {
        if (!yes) {
          clearInterval(watch);
          stop('unmounted externally');
        }
      });
    }, 2000);
  });
  await forgetMount(mounted.mountpoint);
  process.stderr.write(`sefs: ${mounted.mountpoint} unmounted\n`);
  // Worker threads and the FUSE thread are gone; exit even if a stray handle lingers.
  process.exit(0);
}

/**
 * Start `sefs mount ... --foreground` detached, logging to VAULT/sefs.log; return once it is mounted. The daemon
 * gets the settings as flags and the passphrase through a pipe (its fd 4), never the source read here.
 */
async function daemonize(vault: string, mnt: string, settings: MountSettings, passphrase: Uint8Array | undefined): Promise<number> {
  if (!settings.readOnly) await initVault(vault);
  const logPath = vaultPaths(resolve(vault)).log;
  // Never through a link, 0600 (safe-fs.ts): the daemon may run as root, and its lines name files.
  const log = openAppendSync(logPath, vaultArea(vault));
  const logStart = fstatSync(log).size;
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const flags = [
    ...(settings.cacheMb ? ['--cache-mb', String(settings.cacheMb)] : []),
    ...(settings.diskCacheMb ? ['--disk-cache-mb', String(settings.diskCacheMb)] : []),
    ...(settings.threads ? ['--threads', String(settings.threads)] : []),
    ...(settings.readOnly ? ['--read-only'] : []),
    ...(settings.allowOther ? ['--allow-other'] : []),
    ...(settings.kernelOptions.length ? ['-o', settings.kernelOptions.join(',')] : []),
    ...(passphrase ? ['--passphrase-fd', '4'] : []),
  ];
  const child = spawn(process.execPath, [main, 'mount', vault, mnt, '--foreground', ...flags], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc', 'pipe'],
  });
  // A socket pair: ended and then closed whole, or its open read side would keep this process waiting.
  const pipe = child.stdio[4] as Socket;
  pipe.on('error', () => {}); // a daemon that dies first says why in the log, read below
  const bytes = Buffer.from(passphrase ?? []);
  passphrase?.fill(0);
  pipe.end(bytes, () => {
    bytes.fill(0);
    pipe.destroy();
  });
  const outcome = await new Promise<'ready' | 'exited'>((done) => {
    child.once('message', () => done('ready'));
    child.once('exit', () => done('exited'));
  });
  if (outcome === 'ready' && (await isMounted(mnt))) {
    child.unref();
    if (child.connected) child.disconnect();
    process.stdout.write(`sefs: ${await realPath(vault)} mounted at ${await realPath(mnt)} (daemon pid ${child.pid}, log ${logPath})\n`);
    return 0;
  }
  // Show the daemon's own error lines rather than only pointing at the log.
  const said = readFrom(log, logStart).toString('utf8').trim();
  process.stderr.write(`${said ? said + '\n' : ''}sefs: mount failed (log: ${logPath})\n`);
  return 1;
}

/** What was appended to the open log since `start` (its last 64 KiB at most). */
function readFrom(fd: number, start: number): Buffer {
  const end = fstatSync(fd).size;
  const from = Math.max(start, end - 64 * 1024);
  const buf = Buffer.alloc(Math.max(0, end - from));
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, from + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}
