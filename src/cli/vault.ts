/** What the commands that read a vault share: its passphrase option, opening it, printing sizes. */
import { readPassphraseFile } from '../vault/seal.js';
import { type OpenedVault, openVault } from '../vault/walk.js';

export const passphraseOption = { 'passphrase-file': { type: 'string' } } as const;

export const passphraseUsage = '  --passphrase-file F  the passphrase of a sealed vault (the file\'s bytes, without a trailing newline)';

/** Open VAULT, checking the passphrase of a sealed one before anything else happens. */
export async function openVaultFor(vault: string, passphraseFile: string | undefined): Promise<OpenedVault> {
  return openVault(vault, passphraseFile === undefined ? undefined : await readPassphraseFile(passphraseFile));
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
