/** sefs init VAULT [--profile fast|compat] [--cache-mb N] */
import { isProfile } from '../../core/compression.js';
import { initVault } from '../../fs/vault-config.js';
import { UsageError, nonNegativeInt, parseCommandArgs, positionals } from '../args.js';

export const summary = 'create a vault (done by the first mount too)';
export const usage = `usage: sefs init VAULT [--profile fast|compat] [--cache-mb N]

Creates VAULT/sefs.json, VAULT/chunks/ and VAULT/meta/ (0700).
  --profile    compression profile of new chunks: fast (default) or compat
               (chunk names identical to the self_encryption crate's)
  --cache-mb   default size of a mount's decrypted-chunk cache (256)
`;

export async function run(args: string[]): Promise<void> {
  const { values, positionals: pos } = parseCommandArgs({
    args,
    options: { profile: { type: 'string' }, 'cache-mb': { type: 'string' } },
  });
  const [vault] = positionals(pos, ['VAULT']);
  const profile = values.profile ?? 'fast';
  if (!isProfile(profile)) throw new UsageError(`--profile must be fast or compat, got '${profile}'`);
  const config = await initVault(vault!, { profile, cacheMb: nonNegativeInt(values['cache-mb'], '--cache-mb') });
  process.stdout.write(`sefs: vault ${vault} ready (profile ${config.profile})\n`);
}
