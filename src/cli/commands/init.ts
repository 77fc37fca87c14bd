/** sefs init VAULT [--profile fast|compat] [--cache-mb N] [--passphrase-file F [--scrypt-log-n N]] */
import { isProfile } from '../../core/compression.js';
import { DEFAULT_SCRYPT, createSeal, openSeal, readPassphraseFile } from '../../vault/seal.js';
import { VaultError, initVault, readVaultConfig } from '../../vault/config.js';
import { UsageError, nonNegativeInt, parseCommandArgs, positionals } from '../args.js';

export const summary = 'create a vault (done by the first mount too); sealed with --passphrase-file';
export const usage = `usage: sefs init VAULT [--profile fast|compat] [--cache-mb N] [--passphrase-file F [--scrypt-log-n N]]

Creates VAULT/sefs.json, VAULT/chunks/ and VAULT/meta/ (0700).
  --profile          compression profile of new chunks: fast (default) or compat
                     (chunk names identical to the self_encryption crate's)
  --cache-mb         default size of a mount's decrypted-chunk cache (128)
  --passphrase-file  seal the metadata with the passphrase in F (its bytes without a trailing newline):
                     entries are encrypted, names and symlink targets too, so that meta/ and chunks/
                     can be kept on untrusted storage. Mount, fsck, gc and stats then need the same file.
  --scrypt-log-n     cost of the passphrase's key derivation: scrypt N = 2^this (default ${DEFAULT_SCRYPT.logN}, 128 MiB; at most 18)
`;

export async function run(args: string[]): Promise<void> {
  const { values, positionals: pos } = parseCommandArgs({
    args,
    options: { profile: { type: 'string' }, 'cache-mb': { type: 'string' }, 'passphrase-file': { type: 'string' }, 'scrypt-log-n': { type: 'string' } },
  });
  const [vault] = positionals(pos, ['VAULT']);
  const profile = values.profile ?? 'fast';
  if (!isProfile(profile)) throw new UsageError(`--profile must be fast or compat, got '${profile}'`);
  const logN = nonNegativeInt(values['scrypt-log-n'], '--scrypt-log-n');
  const passphraseFile = values['passphrase-file'];
  if (logN !== undefined && passphraseFile === undefined) throw new UsageError('--scrypt-log-n goes with --passphrase-file');
  const passphrase = passphraseFile === undefined ? undefined : await readPassphraseFile(passphraseFile);

  const existing = await readVaultConfig(vault!).catch(() => undefined);
  if (existing && passphrase) {
    // An existing vault is never re-keyed: say what it is.
    if (!existing.seal) throw new VaultError(`${vault} is already an unsealed vault: a vault is sealed when it is created`);
    await openSeal(existing, passphrase, vault!);
  }
  const seal = passphrase && !existing ? await createSeal(passphrase, { ...DEFAULT_SCRYPT, logN: logN ?? DEFAULT_SCRYPT.logN }) : undefined;
  passphrase?.fill(0);
  const config = await initVault(vault!, { profile, cacheMb: nonNegativeInt(values['cache-mb'], '--cache-mb'), seal });
  const sealed = config.seal ? ', metadata sealed' : '';
  process.stdout.write(`sefs: vault ${vault} ready (profile ${config.profile}${sealed})\n`);
}
