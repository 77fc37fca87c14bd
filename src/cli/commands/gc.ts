/** sefs gc VAULT [--grace-minutes N] [--dry-run] [--json] [--passphrase-file F] */
import { DEFAULT_GRACE_MS, collectGarbage } from '../../vault/gc.js';
import { mountedBy } from '../../vault/walk.js';
import { UsageError, parseCommandArgs, positionals } from '../args.js';
import { formatBytes, openVaultFor, passphraseOption, passphraseUsage, printJson } from '../vault.js';

export const summary = 'remove chunks no file names any more; report bytes freed';
export const usage = `usage: sefs gc VAULT [--grace-minutes N] [--dry-run] [--json] [--passphrase-file F]

Marks every chunk a metadata entry of VAULT names and removes the other chunk files, except those
written less than the grace period ago (a mount's writes in flight name their chunks only when they
commit). Safe while the vault is mounted. If an entry cannot be read, nothing is removed.
  --grace-minutes N  keep unreferenced chunks younger than this (default ${DEFAULT_GRACE_MS / 60_000}; decimals allowed)
  --dry-run          remove nothing, report what would be removed
  --json             print the report as JSON
${passphraseUsage}
`;

export async function run(args: string[]): Promise<void> {
  const { values, positionals: pos } = parseCommandArgs({
    args,
    options: { 'grace-minutes': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, ...passphraseOption },
  });
  const [path] = positionals(pos, ['VAULT']) as [string];
  const grace = values['grace-minutes'];
  if (grace !== undefined && !/^\d+(\.\d+)?$/.test(grace)) throw new UsageError(`--grace-minutes must be a non-negative number, got '${grace}'`);
  const vault = await openVaultFor(path, values['passphrase-file']);
  const mounted = await mountedBy(vault);
  const r = await collectGarbage(vault, { graceMs: grace === undefined ? undefined : Number(grace) * 60_000, dryRun: values['dry-run'] });

  if (values.json) {
    printJson(vault, {
      mounted: mounted !== undefined,
      dry_run: r.dryRun,
      grace_minutes: r.graceMs / 60_000,
      chunks: r.chunks,
      referenced_chunks: r.referenced,
      swept_chunks: r.sweptChunks,
      freed_bytes: r.freedBytes,
      young_unreferenced_chunks: r.youngChunks,
      young_unreferenced_bytes: r.youngBytes,
      passes: r.passes,
      seconds: r.seconds,
    });
    return;
  }
  const verb = r.dryRun ? 'would remove' : 'removed';
  process.stdout.write(
    `sefs gc: ${verb} ${r.sweptChunks} unreferenced chunks, ${formatBytes(r.freedBytes)} ${r.dryRun ? 'to free' : 'freed'}; ` +
      `kept ${r.referenced} referenced and ${r.youngChunks} younger than ${r.graceMs / 60_000} min (${formatBytes(r.youngBytes)}); ` +
      `${r.seconds.toFixed(1)} s${mounted ? `, while mounted by pid ${mounted}` : ''}\n`,
  );
}
