/** sefs gc VAULT [--grace-minutes N] [--dry-run] [--json] [--passphrase-file F] */
import { DEFAULT_GRACE_MS, GcRefused, type GcReport, collectGarbage } from '../../vault/gc.js';
import { GC_SIGNAL, awaitGcAnswer, writeGcRequest } from '../../vault/gc-request.js';
import { processAlive } from '../../vault/process-alive.js';
import { mountedBy } from '../../vault/walk.js';
import { type OptionTable, type Parsed, UsageError } from '../args.js';
import { passphraseOptions, passphraseUsage } from '../passphrase.js';
import { formatBytes, openVaultFor, printJson } from '../vault.js';

export const summary = 'remove chunks no file names any more; report bytes freed';
export const usage = `usage: sefs gc VAULT [--grace-minutes N] [--dry-run] [--json] [--passphrase-file F | --passphrase-fd N]

Marks every chunk a metadata entry of VAULT names and removes the other chunk files, except those
written less than the grace period ago. A mount reclaims space by itself; for a mounted vault gc asks
the mount to sweep the whole store (it alone knows the chunks of writes not yet committed, so no grace
period applies). If an entry cannot be read, nothing is removed.
  --grace-minutes N  keep unreferenced chunks younger than this (default ${DEFAULT_GRACE_MS / 60_000}; decimals allowed)
  --dry-run          remove nothing, report what would be removed
  --json             print the report as JSON
${passphraseUsage}
`;

export const options = {
  'grace-minutes': { type: 'string', help: 'keep unreferenced chunks younger than this' },
  'dry-run': { type: 'boolean', help: 'remove nothing, report what would be removed' },
  json: { type: 'boolean', help: 'print the report as JSON' },
  ...passphraseOptions,
} as const satisfies OptionTable;
export const operands = [{ name: 'VAULT', complete: 'dir' }] as const;

/** A week: more is surely a typo of another unit. */
const MAX_GRACE_MINUTES = 7 * 24 * 60;

export async function run({ values, operands: [path] }: Parsed<typeof options>): Promise<void> {
  const grace = values['grace-minutes'];
  if (grace !== undefined && (!/^\d+(\.\d+)?$/.test(grace) || Number(grace) > MAX_GRACE_MINUTES)) {
    throw new UsageError(`--grace-minutes must be a number from 0 to ${MAX_GRACE_MINUTES}, got '${grace}'`);
  }
  const vault = await openVaultFor(path!, values);
  const mounted = await mountedBy(vault);
  // The mount knows its writes in flight, so it sweeps with no grace period: a grace asked for cannot apply.
  if (mounted && grace !== undefined && Number(grace) > 0) throw new UsageError(`--grace-minutes does not apply to a mounted vault (the mount, pid ${mounted}, sweeps what nothing holds)`);
  const r = mounted
    ? await askTheMount(vault.root, mounted, values['dry-run'] === true)
    : await collectGarbage(vault, { graceMs: grace === undefined ? undefined : Number(grace) * 60_000, dryRun: values['dry-run'] });

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
      `kept ${r.referenced} referenced and ${r.youngChunks} ${mounted ? 'held by open files' : `younger than ${r.graceMs / 60_000} min`} (${formatBytes(r.youngBytes)}); ` +
      `${r.seconds.toFixed(1)} s${mounted ? `, while mounted by pid ${mounted}` : ''}\n`,
  );
}

/** A mounted vault: the daemon sweeps (vault/gc-request.ts); its answer in collectGarbage's report shape. */
async function askTheMount(root: string, pid: number, dryRun: boolean): Promise<GcReport> {
  const request = await writeGcRequest(root, dryRun);
  process.kill(pid, GC_SIGNAL);
  const answer = await awaitGcAnswer(root, request.id, 10 * 60_000, () => processAlive(pid));
  if (answer.error || !answer.report) throw new GcRefused(answer.error ?? 'the mount sent no report');
  const r = answer.report;
  return {
    dryRun,
    graceMs: 0,
    chunks: r.chunks,
    referenced: r.referenced,
    sweptChunks: r.swept,
    freedBytes: r.freedBytes,
    youngChunks: r.held,
    youngBytes: r.heldBytes,
    passes: 1,
    seconds: r.seconds,
  };
}
