/** What the commands that read a vault share: checking its path, opening it with its passphrase, printing sizes. */
import { type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { VaultError, readVaultConfig } from '../vault/config.js';
import { type OpenedVault, openVault } from '../vault/walk.js';
import { type PassphraseValues, readPassphrase } from './passphrase.js';

function kindOf(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a directory';
}

/**
 * Refuse a path that is not a directory, saying what it is ("is a regular file, not a vault directory").
 * `what` names the directory expected; a missing path is allowed when `missingOk` (init and mount create it).
 */
export async function checkDirectory(path: string, what: string, missingOk: boolean): Promise<void> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missingOk) return;
    // A FUSE mount left stale by a killed daemon: the mount clears it (stale-mount.ts).
    if (code === 'ENOTCONN') return;
    if (code === 'ENOENT') throw new VaultError(`${path} does not exist`);
    if (code === 'ENOTDIR') throw new VaultError(`${path}: a component of the path is not a directory`);
    throw err;
  }
  if (!st.isDirectory()) throw new VaultError(`${path} is ${kindOf(st)}, not ${what}`);
}

/** Open the vault at `path`, checking the passphrase of a sealed one (asked for on a terminal) before anything else. */
export async function openVaultFor(path: string, values: PassphraseValues): Promise<OpenedVault> {
  await checkDirectory(path, 'a vault directory', false);
  const config = await readVaultConfig(path);
  return openVault(path, await readPassphrase(values, config.seal ? { vault: path } : undefined));
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Print a command's --json report: the vault and whether it is sealed, then the command's own fields. */
export function printJson(vault: OpenedVault, fields: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ vault: vault.root, sealed: vault.codec.sealed, ...fields }, null, 2) + '\n');
}
