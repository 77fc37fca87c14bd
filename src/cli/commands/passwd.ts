/** sefs passwd VAULT --passphrase-file OLD --new-passphrase-file NEW [--scrypt-log-n N] */
import { DEFAULT_SCRYPT, changePassphrase, readPassphraseFile } from '../../vault/seal.js';
import { nonNegativeInt, parseCommandArgs, positionals, required } from '../args.js';

export const summary = "change a sealed vault's passphrase (rewrites sefs.json only)";
export const usage = `usage: sefs passwd VAULT --passphrase-file OLD --new-passphrase-file NEW [--scrypt-log-n N]

A sealed vault's data is encrypted under a random master key that the passphrase only wraps: this
wraps it again under the new passphrase (new salt) and replaces sefs.json atomically. Chunks and
metadata are not touched; a running mount keeps working. The old passphrase no longer opens the vault.
  --passphrase-file F      the current passphrase (the file's bytes, without a trailing newline)
  --new-passphrase-file F  the new passphrase
  --scrypt-log-n N         new cost of the key derivation (default: keep the current one; ${DEFAULT_SCRYPT.logN} = 128 MiB)
`;

export async function run(args: string[]): Promise<void> {
  const { values, positionals: pos } = parseCommandArgs({
    args,
    options: { 'passphrase-file': { type: 'string' }, 'new-passphrase-file': { type: 'string' }, 'scrypt-log-n': { type: 'string' } },
  });
  const [vault] = positionals(pos, ['VAULT']) as [string];
  const oldFile = required(values['passphrase-file'], '--passphrase-file');
  const newFile = required(values['new-passphrase-file'], '--new-passphrase-file');
  const logN = nonNegativeInt(values['scrypt-log-n'], '--scrypt-log-n');
  const oldPassphrase = await readPassphraseFile(oldFile);
  const newPassphrase = await readPassphraseFile(newFile).catch((err: Error) => {
    oldPassphrase.fill(0);
    throw err;
  });
  await changePassphrase(vault, oldPassphrase, newPassphrase, logN === undefined ? undefined : { ...DEFAULT_SCRYPT, logN });
  process.stdout.write(`sefs: passphrase of ${vault} changed (sefs.json rewritten; data untouched)\n`);
}
