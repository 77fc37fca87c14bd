/** sefs init VAULT [--chunks s3://BUCKET[/PREFIX]] [--profile selective|fast|compat] [--cache-mb N] [--seal | --passphrase-file F | --passphrase-fd N] [--scrypt-log-n N] */
import { PROFILES, isProfile } from '../../core/compression.js';
import { createSeal, openSeal } from '../../vault/seal.js';
import { DEFAULT_SCRYPT } from '../../vault/kdf.js';
import { type VaultConfig, VaultError, initVault, readVaultConfig } from '../../vault/config.js';
import { type OptionTable, type Parsed, UsageError, cacheMb, intOption } from '../args.js';
import { hasPassphraseSource, passphraseOptions, readPassphrase } from '../passphrase.js';
import { checkDirectory } from '../vault.js';
import { type S3Location, S3Store, parseS3Url, s3Url } from '../../store/s3-store.js';

export const summary = 'create a vault (done by the first mount too); sealed with a passphrase';
export const usage = `usage: sefs init VAULT [--chunks s3://BUCKET[/PREFIX]] [--profile selective|fast|compat] [--cache-mb N]
                 [--seal | --passphrase-file F | --passphrase-fd N [--scrypt-log-n N]]

Creates VAULT/sefs.json, VAULT/chunks/ and VAULT/meta/ (0700). On an existing vault it checks that the
options given match it (a profile, cache size or seal is chosen when a vault is created) and changes nothing.
  --chunks s3://BUCKET[/PREFIX]  keep the chunks in an S3 bucket (created if missing), VAULT/chunks
                     being a local cache (sefs mount --disk-cache-mb). Endpoint, region and keys come
                     from the AWS SDK's settings (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
                     AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws); one vault per prefix
  --profile          compression profile of the vault's chunks: selective (default: compresses only
                     chunks that shrink to a third or less, stores the rest raw), fast (compresses
                     whatever it can: half the space for text, reads of it at half the speed) or compat
                     (chunk names identical to the self_encryption crate's, slow writes)
  --cache-mb N       default size of a mount's decrypted-chunk cache, 1 to 1048576 (128)
  --seal             seal the metadata with a passphrase asked for on the terminal (twice)
  --passphrase-file F  seal with the passphrase in F (its bytes without a trailing newline)
  --passphrase-fd N  seal with the passphrase read from file descriptor N
                     Sealed: entries are encrypted, names and symlink targets too, so that meta/ and
                     chunks/ can be kept on untrusted storage. Mount, fsck, gc and stats then need it.
  --scrypt-log-n N   cost of the passphrase's key derivation: scrypt N = 2^this (default ${DEFAULT_SCRYPT.logN}, 128 MiB; at most 18)
`;

export const options = {
  chunks: { type: 'string', help: 'keep the chunks in an S3 bucket: s3://BUCKET[/PREFIX]' },
  profile: { type: 'string', help: 'compression profile of new chunks', complete: PROFILES },
  'cache-mb': { type: 'string', help: "default size of a mount's chunk cache (MiB)" },
  seal: { type: 'boolean', help: 'seal the metadata with a passphrase asked for on the terminal' },
  ...passphraseOptions,
  'scrypt-log-n': { type: 'string', help: "cost of the passphrase's key derivation (log2 of scrypt N)" },
} as const satisfies OptionTable;
export const operands = [{ name: 'VAULT', complete: 'dir' }] as const;

export async function run({ values, operands: [vault] }: Parsed<typeof options>): Promise<void> {
  const profile = values.profile;
  if (profile !== undefined && !isProfile(profile)) throw new UsageError(`--profile must be one of ${PROFILES.join(', ')}, got '${profile}'`);
  const cache = cacheMb(values['cache-mb']);
  const logN = intOption(values['scrypt-log-n'], '--scrypt-log-n', 10, 18);
  const sealing = values.seal === true || hasPassphraseSource(values);
  if (values.seal && hasPassphraseSource(values)) throw new UsageError('--seal asks for the passphrase: drop it, or drop --passphrase-file/--passphrase-fd');
  if (logN !== undefined && !sealing) throw new UsageError('--scrypt-log-n goes with --seal, --passphrase-file or --passphrase-fd');
  await checkDirectory(vault!, 'a vault directory', true);
  const s3 = values.chunks === undefined ? undefined : parseS3Url(values.chunks);
  if (values.chunks !== undefined && !s3) throw new UsageError(`--chunks takes s3://BUCKET[/PREFIX], got '${values.chunks}'`);

  const existing = await readVaultConfig(vault!).catch((err: unknown) => {
    if (err instanceof VaultError && /no sefs.json/.test(err.message)) return undefined;
    throw err;
  });
  if (existing) {
    refuseChanges(vault!, existing, { profile, cache, sealing, logN, s3 });
    const passphrase = sealing ? await readPassphrase(values, { vault: vault! }) : undefined;
    // A wrong one is an error: say so rather than "ready".
    if (passphrase) await openSeal(existing, passphrase, vault!).finally(() => passphrase.fill(0));
  }
  const passphrase = sealing && !existing ? await readPassphrase(values, { vault: vault!, confirm: true }) : undefined;
  const seal = passphrase ? await createSeal(passphrase, { ...DEFAULT_SCRYPT, logN: logN ?? DEFAULT_SCRYPT.logN }) : undefined;
  passphrase?.fill(0);
  // The bucket first: a vault is not created for a bucket it cannot reach.
  const createdBucket = s3 && !existing ? await new S3Store(s3).ensureBucket() : false;
  const config = await initVault(vault!, { profile, cacheMb: cache, seal, s3 });
  const sealed = config.seal ? ', metadata sealed' : '';
  const where = config.s3 ? `, chunks in ${s3Url(config.s3)}${createdBucket ? ' (bucket created)' : ''}` : '';
  process.stdout.write(`sefs: vault ${vault} ${existing ? 'already exists' : 'ready'} (profile ${config.profile}${sealed}${where})\n`);
}

/** Options that choose what a vault is cannot apply to one that exists: refused, never silently ignored. */
function refuseChanges(vault: string, c: VaultConfig, asked: { profile?: string; cache?: number; sealing: boolean; logN?: number; s3?: S3Location }): void {
  const refuse = (what: string) => {
    throw new VaultError(`${vault} is already ${what}`);
  };
  if (asked.profile !== undefined && asked.profile !== c.profile) refuse(`a vault of profile ${c.profile}: --profile ${asked.profile} cannot apply (the profile is chosen when a vault is created)`);
  if (asked.cache !== undefined && asked.cache !== c.cacheMb) refuse(`a vault with --cache-mb ${c.cacheMb}: --cache-mb ${asked.cache} cannot apply (give it to sefs mount instead)`);
  if (asked.sealing && !c.seal) refuse('an unsealed vault: a vault is sealed when it is created');
  if (asked.s3 && (c.store !== 's3' || s3Url(c.s3!) !== s3Url(asked.s3))) refuse(`a vault with its chunks in ${c.s3 ? s3Url(c.s3) : 'chunks/'}: --chunks ${s3Url(asked.s3)} cannot apply`);
  if (asked.logN !== undefined) refuse('a vault: --scrypt-log-n applies only when a vault is created');
}
