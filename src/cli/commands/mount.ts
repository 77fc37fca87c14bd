/**
 * sefs mount VAULT MOUNTPOINT [--cache-mb N] [--foreground] [--passphrase-file F]
 * Without --foreground it starts itself again in the foreground as a detached daemon, waits until the
 * mount is live, and returns.
 */
import { spawn } from 'node:child_process';
import { fstatSync, readSync } from 'node:fs';
import { openAppendSync, vaultArea } from '../../vault/safe-fs.js';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFuse } from '../../fs/fuse-binding.js';
import { mountVault } from '../../fs/mount.js';
import { checkMountPlace, realPath } from '../../fs/mount-paths.js';
import { mountCodec } from '../../vault/seal.js';
import { forgetMount, privateRegistry, recordMount } from '../../fs/mount-registry.js';
import { isMounted, isMountedAt } from '../../fs/stale-mount.js';
import { initVault, vaultPaths } from '../../vault/config.js';
import { GC_SIGNAL, readGcRequest, writeGcAnswer } from '../../vault/gc-request.js';
import { nonNegativeInt, parseCommandArgs, positionals } from '../args.js';

export const summary = 'mount a vault as a normal directory';
export const usage = `usage: sefs mount VAULT MOUNTPOINT [--cache-mb N] [--threads N] [--foreground] [--passphrase-file F]

Serves VAULT at MOUNTPOINT (both created when missing). Every file written there is self-encrypted
into VAULT/chunks; VAULT/meta holds the DataMaps. Ctrl-C or SIGTERM commits open files and unmounts;
so does 'sefs umount MOUNTPOINT'.
  --cache-mb    decrypted-chunk cache size (default from sefs.json, 128)
  --threads     crypto worker threads (default: one per core)
  --foreground  stay in the foreground (default: run as a daemon logging to VAULT/sefs.log)
  --passphrase-file F  the passphrase of a sealed vault (see sefs init); checked before mounting
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs({
    args,
    options: { 'cache-mb': { type: 'string' }, threads: { type: 'string' }, foreground: { type: 'boolean' }, 'passphrase-file': { type: 'string' } },
  });
  const [vault, mnt] = positionals(pos, ['VAULT', 'MOUNTPOINT']) as [string, string];
  const cacheMb = nonNegativeInt(values['cache-mb'], '--cache-mb');
  const threads = nonNegativeInt(values.threads, '--threads');
  // Refusals that need no daemon answer here, as one line: an unpatched binding, a mount nested in its vault.
  loadFuse();
  await checkMountPlace(vault, mnt);
  // A wrong or missing passphrase fails here, in the foreground, before anything is written.
  const codec = await mountCodec(vault, values['passphrase-file']);
  // Where `sefs umount` will find this mount: refused now, before mounting, if another user could steer it.
  await privateRegistry();
  if (!values.foreground) return daemonize(vault, mnt, args);

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
  const mounted = await mountVault(vault, mnt, { cacheMb, threads: threads || undefined, codec });
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

/** Start `sefs mount ... --foreground` detached, logging to VAULT/sefs.log; return once it is mounted. */
async function daemonize(vault: string, mnt: string, args: string[]): Promise<number> {
  await initVault(vault);
  const logPath = vaultPaths(resolve(vault)).log;
  // Never through a link, 0600 (safe-fs.ts): the daemon may run as root, and its lines name files.
  const log = openAppendSync(logPath, vaultArea(vault));
  const logStart = fstatSync(log).size;
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const child = spawn(process.execPath, [main, 'mount', ...args, '--foreground'], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
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
