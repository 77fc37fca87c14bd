/** sefs passwd VAULT [--passphrase-file OLD | --passphrase-fd N] [--new-passphrase-file NEW] [--scrypt-log-n N] */
import { changePassphrase } from '../../vault/seal.js';
import { DEFAULT_SCRYPT } from '../../vault/kdf.js';
import { type OptionTable, type Parsed, intOption } from '../args.js';
import { passphraseOptions, readPassphrase } from '../passphrase.js';
import { checkDirectory } from '../vault.js';

export const summary = "change a sealed vault's passphrase (rewrites sefs.json only)";
export const usage = `usage: sefs passwd VAULT [--passphrase-file OLD | --passphrase-fd N] [--new-passphrase-file NEW] [--scrypt-log-n N]

A sealed vault's data is encrypted under a random master key that the passphrase only wraps: this
wraps it again under the new passphrase (new salt) and replaces sefs.json atomically. Chunks and
metadata are not touched; a running mount keeps working. The old passphrase no longer opens the vault.
  --passphrase-file F      the current passphrase (the file's bytes, without a trailing newline)
  --passphrase-fd N        the current passphrase, read from file descriptor N
  --new-passphrase-file F  the new passphrase
                           (without these, both are asked for on a terminal, the new one twice)
  --scrypt-log-n N         new cost of the key derivation, 10 to 18 (default: keep the current one; ${DEFAULT_SCRYPT.logN} = 128 MiB)
`;

export const options = {
  ...passphraseOptions,
  'new-passphrase-file': { type: 'string', help: 'read the new passphrase from a file', complete: 'file' },
  'scrypt-log-n': { type: 'string', help: "new cost of the passphrase's key derivation (log2 of scrypt N)" },
} as const satisfies OptionTable;
export const operands = [{ name: 'VAULT', complete: 'dir' }] as const;

export async function run({ values, operands: [vault] }: Parsed<typeof options>): Promise<void> {
  const logN = intOption(values['scrypt-log-n'], '--scrypt-log-n', 10, 18);
  await checkDirectory(vault!, 'a vault directory', false);
  const oldPassphrase = (await readPassphrase(values, { vault: vault! }))!;
  const newPassphrase = await readPassphrase({ 'passphrase-file': values['new-passphrase-file'] }, { vault: `${vault} (new passphrase)`, confirm: true }).catch((err: Error) => {
    oldPassphrase.fill(0);
    throw err;
  });
  try {
    await changePassphrase(vault!, oldPassphrase, newPassphrase!, logN === undefined ? undefined : { ...DEFAULT_SCRYPT, logN });
  } finally {
    oldPassphrase.fill(0);
    newPassphrase!.fill(0);
  }
  process.stdout.write(`sefs: passphrase of ${vault} changed (sefs.json rewritten; data untouched)\n`);
}
