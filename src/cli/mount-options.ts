/**
 * sefs mount's settings from its flags and from `-o` options as fstab gives them: `mount -t fuse.sefs VAULT MNT -o
 * OPTS` (or an fstab line of type fuse.sefs) makes mount.fuse run `sefs VAULT MNT -o OPTS`, with the generic
 * options of mount(8) among ours.
 */
import { readFile } from 'node:fs/promises';
import { UsageError, cacheMb, threadCount } from './args.js';
import type { PassphraseValues } from './passphrase.js';

export interface MountSettings {
  cacheMb?: number;
  /** An S3 vault's local chunk cache (MiB). */
  diskCacheMb?: number;
  threads?: number;
  readOnly: boolean;
  allowOther: boolean;
  /** Generic options the kernel acts on, passed through. */
  kernelOptions: string[];
  passphrase: PassphraseValues;
}

/** Generic options passed on to the kernel mount (libfuse knows them as mount flags). */
const TO_KERNEL = new Set(['noexec', 'noatime', 'sync', 'dirsync']);

/**
 * Generic options that change nothing here: defaults of a FUSE mount (exec, atime, async; nosuid and nodev are
 * always on), fstab and systemd bookkeeping that mount(8) or systemd act on, not the file system.
 */
const GENERIC = new Set(['defaults', 'dev', 'nodev', 'suid', 'nosuid', 'exec', 'atime', 'async', 'relatime', 'norelatime', 'strictatime', 'lazytime', 'nolazytime', 'diratime', 'nodiratime', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', 'nofail', '_netdev', 'loud', 'silent']);

const isGeneric = (o: string): boolean => GENERIC.has(o) || o.startsWith('x-') || o.startsWith('comment=');

interface MountFlags extends PassphraseValues {
  'read-only'?: boolean;
  'allow-other'?: boolean;
  o?: string[];
}

/** The settings of the flags, with `-o` options applied over them (the later of ro/rw wins). */
export function mountSettings(values: MountFlags, numbers: { cacheMb?: number; diskCacheMb?: number; threads?: number }): MountSettings {
  const s: MountSettings = {
    ...numbers,
    readOnly: values['read-only'] === true,
    allowOther: values['allow-other'] === true,
    kernelOptions: [],
    passphrase: { 'passphrase-file': values['passphrase-file'], 'passphrase-fd': values['passphrase-fd'] },
  };
  for (const option of (values.o ?? []).flatMap((o) => o.split(',')).filter(Boolean)) {
    const eq = option.indexOf('=');
    const [key, value] = eq < 0 ? [option, undefined] : [option.slice(0, eq), option.slice(eq + 1)];
    if (key === 'ro' || key === 'rw') s.readOnly = key === 'ro';
    else if (key === 'allow_other') s.allowOther = true;
    else if (key === 'passphrase_file' && value) s.passphrase['passphrase-file'] = value;
    else if (key === 'cache_mb' && value !== undefined) s.cacheMb = cacheMb(value, '-o cache_mb');
    else if (key === 'disk_cache_mb' && value !== undefined) s.diskCacheMb = cacheMb(value, '-o disk_cache_mb');
    else if (key === 'threads' && value !== undefined) s.threads = threadCount(value);
    else if (TO_KERNEL.has(option)) s.kernelOptions.push(option);
    else if (!isGeneric(option)) {
      throw new UsageError(`unknown mount option '${option}' (sefs takes allow_other, ro, rw, passphrase_file=F, cache_mb=N, disk_cache_mb=N, threads=N and the generic options of mount(8))`);
    }
  }
  return s;
}

/** Why allow_other would fail here, if it would: fusermount allows it to users other than root only by /etc/fuse.conf. */
export async function allowOtherRefusal(): Promise<string | undefined> {
  if (process.getuid?.() === 0) return undefined;
  const conf = await readFile('/etc/fuse.conf', 'utf8').catch(() => '');
  if (/^\s*user_allow_other\s*$/m.test(conf)) return undefined;
  return "allow_other needs 'user_allow_other' in /etc/fuse.conf for users other than root (add that line as root, or mount without it)";
}
