/** sefs fsck VAULT [--deep] [--json] [--passphrase-file F] [--threads N] */
import { type FsckReport, fsck } from '../../vault/fsck.js';
import { mountedBy } from '../../vault/walk.js';
import { type OptionTable, type Parsed, threadCount } from '../args.js';
import { passphraseOptions, passphraseUsage } from '../passphrase.js';
import { progressLine } from '../progress.js';
import { formatBytes, openVaultFor, printJson } from '../vault.js';

export const summary = 'check every metadata entry and the chunks it names; report damaged files';
export const usage = `usage: sefs fsck VAULT [--deep] [--json] [--passphrase-file F | --passphrase-fd N] [--threads N]

Checks that every metadata entry of VAULT decodes and that every chunk it names exists and hashes to
its name. Damaged files are listed by their path in the mount, with the chunks at fault. Reads only:
the vault may be mounted meanwhile. Exit status: 0 when nothing is damaged, 1 otherwise.
  --deep       also decrypt every chunk (on worker threads) and check it against the DataMap
  --json       print the report as JSON
  --threads N  worker threads, 1 to 256 (default: one per core)
${passphraseUsage}
`;

export const options = {
  deep: { type: 'boolean', help: 'also decrypt every chunk and check it' },
  json: { type: 'boolean', help: 'print the report as JSON' },
  threads: { type: 'string', help: 'worker threads (1 to 256; default one per core)' },
  ...passphraseOptions,
} as const satisfies OptionTable;
export const operands = [{ name: 'VAULT', complete: 'dir' }] as const;

export async function run({ values, operands: [path] }: Parsed<typeof options>): Promise<number> {
  const threads = threadCount(values.threads);
  const vault = await openVaultFor(path!, values);
  const mounted = await mountedBy(vault);
  const progress = progressLine(values.deep ? 'fsck --deep' : 'fsck');
  let report: FsckReport;
  try {
    report = await fsck(vault, { deep: values.deep, threads, onProgress: progress.update });
  } finally {
    progress.end();
  }

  if (values.json) {
    printJson(vault, {
      mounted: mounted !== undefined,
      deep: report.deep,
      ok: report.damaged.length === 0,
      files: report.files,
      directories: report.directories,
      symlinks: report.symlinks,
      chunks: report.chunks,
      chunk_bytes: report.chunkBytes,
      seconds: report.seconds,
      damaged: report.damaged.map((d) => ({ path: d.path, error: d.entryError ?? null, chunks: d.chunks })),
    });
  } else {
    for (const d of report.damaged) {
      if (d.entryError) process.stdout.write(`DAMAGED ${d.path}: ${d.entryError}\n`);
      else process.stdout.write(`DAMAGED ${d.path}: ${d.chunks.length} bad chunk${d.chunks.length === 1 ? '' : 's'}\n`);
      for (const c of d.chunks) process.stdout.write(`  chunk ${c.index} ${c.chunk}: ${c.problem} (${c.message})\n`);
    }
    const what = `${report.files} files, ${report.directories} directories, ${report.symlinks} symlinks; ${report.chunks} chunks (${formatBytes(report.chunkBytes)})`;
    const verdict = report.damaged.length === 0 ? 'no damage' : `${report.damaged.length} damaged file${report.damaged.length === 1 ? '' : 's'}`;
    const live = mounted ? ` (mounted by pid ${mounted}: files written meanwhile were checked as they were when read)` : '';
    process.stdout.write(`sefs fsck${report.deep ? ' --deep' : ''}: ${what} checked in ${report.seconds.toFixed(1)} s: ${verdict}${live}\n`);
  }
  return report.damaged.length === 0 ? 0 : 1;
}
