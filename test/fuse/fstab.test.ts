/**
 * Mounting the way Linux users do: an fstab line of type fuse.sefs and `mount MNT`, `mount -t fuse.sefs`, both
 * through Debian's mount.fuse helper (which runs `sefs VAULT MNT -o OPTS` by the shell's default PATH), then
 * `umount` or `sefs umount`; read-only mounts (the kernel's `ro`, and the daemon refusing changes by itself once
 * the kernel lets them through); passphrases from fstab, a descriptor and a `<(...)` file that can be read once.
 *
 * mount(8) gives its helpers no PATH, so `sefs` must be in a standard directory: each script runs in a private
 * mount namespace (unshare -m) with a directory holding `sefs` bind-mounted over /usr/local/sbin, so nothing
 * outside the test sees it. Its mounts live and die in that namespace; the script unmounts them on any exit.
 */
import { mkdtemp, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, fuseSuite, requireFuse, requireTools, sh } from './helpers.js';

fuseSuite();

let dir: string;
let bin: string;

beforeAll(async () => {
  requireFuse();
  requireTools('mount', 'umount', 'unshare', '/sbin/mount.fuse');
  dir = await mkdtemp(join(tmpdir(), 'sefs-fstab-'));
  bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'sefs'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`);
  await chmod(join(bin, 'sefs'), 0o755);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * Run `body` (bash) in a private mount namespace where `sefs` is on mount.fuse's PATH. $D is the test's directory;
 * `cleanup` unmounts the given mount points on exit, whatever happened (the namespace ends with its processes).
 */
async function inNamespace(body: string, mounts: string[]): Promise<{ stdout: string; stderr: string }> {
  const script = `
    D=${dir}
    cleanup () { for m in ${mounts.join(' ')}; do sefs umount "$D/$m" 2>/dev/null || fusermount -uz "$D/$m" 2>/dev/null || true; done; }
    trap cleanup EXIT
    mount --bind ${bin} /usr/local/sbin
    export PATH=/usr/local/sbin:$PATH
    # The daemon of a mount point, and waiting for it to end after an unmount from outside.
    # The error message of a command that must fail (the part after the last ': '), and no stop for its status.
    errof () { ( eval "$1" ) 2>&1 | sed 's/.*: //' || true; }
    daemon_gone () { for i in $(seq 1 100); do [ -e "$1/sefs.pid" ] || return 0; sleep 0.1; done; echo "daemon of $1 still running" >&2; return 1; }
    ${body}`;
  const file = join(dir, `script-${++scripts}.sh`);
  return writeFile(file, `set -euo pipefail\n${script}`).then(() => sh(`exec unshare -m --propagation private bash ${file}`));
}
let scripts = 0;

describe('fstab and mount(8)', () => {
  it('an fstab line of type fuse.sefs mounts with `mount MNT`, with the generic options mount passes; umount ends the daemon', async () => {
    const r = await inNamespace(
      `
      sefs init "$D/v1" >/dev/null
      mkdir -p "$D/m1"
      echo "$D/v1 $D/m1 fuse.sefs defaults,noauto,nofail,_netdev,x-systemd.automount,cache_mb=64,noatime 0 0" >"$D/fstab"
      mount -T "$D/fstab" "$D/m1" >/dev/null
      grep " $D/m1 " /proc/mounts | cut -d' ' -f3,4
      echo "written through fstab" >"$D/m1/file"
      cat "$D/m1/file"
      sefs gc "$D/v1" --grace-minutes 5 2>&1 | sed "s/pid [0-9]*/pid N/" || echo "status $?"
      umount "$D/m1"
      daemon_gone "$D/v1"
      ! grep -q " $D/m1 " /proc/mounts
      echo unmounted
      `,
      ['m1'],
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^fuse\.sefs rw,.*noatime/);
    expect(lines.slice(1)).toEqual([
      'written through fstab',
      // A grace period cannot apply to a mounted vault: the mount sweeps what nothing holds.
      'sefs: --grace-minutes does not apply to a mounted vault (the mount, pid N, sweeps what nothing holds)',
      'status 2',
      'unmounted',
    ]);
  });

  it('mount -t fuse.sefs -o ro: the kernel mounts read-only; a remount rw still meets EROFS from the daemon; sefs umount', async () => {
    const r = await inNamespace(
      `
      sefs init "$D/v2" >/dev/null
      sefs mount "$D/v2" "$D/m2" >/dev/null
      echo "before" >"$D/m2/old"
      sefs umount "$D/m2"
      mount -t fuse.sefs -o ro,nofail "$D/v2" "$D/m2" >/dev/null
      grep " $D/m2 " /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1
      cat "$D/m2/old"
      errof 'echo x >"$D/m2/new"'
      mount -i -o remount,rw "$D/m2"
      grep " $D/m2 " /proc/mounts | cut -d' ' -f4 | cut -d, -f1
      errof 'echo x >"$D/m2/new"'
      errof 'echo x >>"$D/m2/old"'
      errof 'mkdir "$D/m2/dir"'
      errof 'rm "$D/m2/old"'
      errof 'touch "$D/m2/old"'
      cat "$D/m2/old"
      sefs umount "$D/m2"
      ! grep -q " $D/m2 " /proc/mounts
      echo unmounted
      `,
      ['m2'],
    );
    expect(r.stdout.trim().split('\n')).toEqual([
      'fuse.sefs ro',
      'before',
      'Read-only file system',
      'rw',
      'Read-only file system',
      'Read-only file system',
      'Read-only file system',
      'Read-only file system',
      'Read-only file system',
      'before',
      'unmounted',
    ]);
  });

  it('a sealed vault from fstab with passphrase_file; without it the mount fails with the one line saying so', async () => {
    const r = await inNamespace(
      `
      printf 'fstab secret\\n' >"$D/pass"
      sefs init "$D/v3" --passphrase-file "$D/pass" --scrypt-log-n 10 >/dev/null
      mkdir -p "$D/m3"
      echo "$D/v3 $D/m3 fuse.sefs noauto,passphrase_file=$D/pass 0 0" >"$D/fstab3"
      mount -T "$D/fstab3" "$D/m3" >/dev/null
      echo "sealed" >"$D/m3/s"
      cat "$D/m3/s"
      umount "$D/m3"
      daemon_gone "$D/v3"
      mount -t fuse.sefs "$D/v3" "$D/m3" </dev/null 2>&1 || echo "status $?"
      `,
      ['m3'],
    );
    expect(r.stdout.trim().split('\n')).toEqual([
      'sealed',
      `sefs: ${dir}/v3 is sealed: give its passphrase with --passphrase-file F or --passphrase-fd N (or run on a terminal to be asked)`,
      'status 1',
    ]);
  });
});

describe('passphrase sources of a daemon mount', () => {
  it('a <(...) file (readable once) and a descriptor both reach the daemon; a wrong one fails in the foreground', async () => {
    const r = await inNamespace(
      `
      printf 'once\\n' >"$D/pass4"
      sefs init "$D/v4" --passphrase-fd 3 --scrypt-log-n 10 3<"$D/pass4" >/dev/null
      sefs mount "$D/v4" "$D/m4" --passphrase-file <(printf 'once\\n') >/dev/null
      echo "via a process substitution" >"$D/m4/a"
      sefs umount "$D/m4"
      printf 'once' | sefs mount "$D/v4" "$D/m4" --passphrase-fd 0 >/dev/null
      cat "$D/m4/a"
      sefs umount "$D/m4"
      sefs mount "$D/v4" "$D/m4" --passphrase-fd 3 3< <(printf 'wrong') 2>&1 || echo "status $?"
      `,
      ['m4'],
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('via a process substitution');
    expect(lines[1]).toMatch(/^sefs: wrong passphrase/);
    expect(lines.slice(2)).toEqual(['status 1']);
  });
});
