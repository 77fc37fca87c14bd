/** sefs stats VAULT [--json] [--passphrase-file F] */
import { vaultStats } from '../../vault/stats.js';
import { type OptionTable, type Parsed } from '../args.js';
import { passphraseOptions, passphraseUsage } from '../passphrase.js';
import { formatBytes, openVaultFor, printJson } from '../vault.js';

export const summary = 'files, logical and stored bytes, dedup ratio, unreferenced chunks';
export const usage = `usage: sefs stats VAULT [--json] [--passphrase-file F | --passphrase-fd N]

What VAULT holds (files, directories, logical bytes) and what it stores (chunk files), the dedup ratio
(logical bytes over distinct chunk bytes), the bytes of chunks no file names (sefs gc removes them),
and whether its metadata is sealed. A vault with its chunks in S3: the bucket's objects and bytes, the
local cache and the chunks not yet uploaded.
  --json  print the figures as JSON
${passphraseUsage}
`;

export const options = {
  json: { type: 'boolean', help: 'print the figures as JSON' },
  ...passphraseOptions,
} as const satisfies OptionTable;
export const operands = [{ name: 'VAULT', complete: 'dir' }] as const;

export async function run({ values, operands: [path] }: Parsed<typeof options>): Promise<void> {
  const vault = await openVaultFor(path!, values);
  const s = await vaultStats(vault);
  const mode = `0${s.metaMode.toString(8)}`;

  if (values.json) {
    printJson(vault, {
      meta_mode: mode,
      files: s.files,
      directories: s.directories,
      symlinks: s.symlinks,
      logical_bytes: s.logicalBytes,
      unique_bytes: s.uniqueBytes,
      dedup_ratio: Number(s.dedupRatio.toFixed(4)),
      stored_chunks: s.storedChunks,
      stored_bytes: s.storedBytes,
      unreferenced_chunks: s.unreferencedChunks,
      unreferenced_bytes: s.unreferencedBytes,
      missing_chunks: s.missingChunks,
      damaged_entries: s.damagedEntries,
      ...(s.s3
        ? {
            s3: {
              url: s.s3.url,
              bucket_objects: s.s3.bucketObjects,
              bucket_bytes: s.s3.bucketBytes,
              cache_chunks: s.s3.cacheChunks,
              cache_bytes: s.s3.cacheBytes,
              pending_uploads: s.s3.pendingUploads,
              pending_bytes: s.s3.pendingBytes,
            },
          }
        : {}),
    });
    return;
  }
  const metadata = s.sealed
    ? 'sealed (entries XChaCha20-Poly1305, names AES-SIV; passphrase needed)'
    : `UNSEALED: names, sizes and DataMaps (the keys to the content) are plain files in meta/ (mode ${mode}${s.metaMode & 0o077 ? ', readable by others!' : ''})`;
  const lines = [
    ['vault', vault.root],
    ['metadata', metadata],
    ['files', `${s.files} (${s.directories} directories, ${s.symlinks} symlinks)`],
    ['logical', formatBytes(s.logicalBytes)],
    ['distinct', `${formatBytes(s.uniqueBytes)} (dedup ratio ${s.dedupRatio.toFixed(2)})`],
    ['stored', `${formatBytes(s.storedBytes)} in ${s.storedChunks} chunks`],
    ['unreferenced', `${formatBytes(s.unreferencedBytes)} in ${s.unreferencedChunks} chunks (sefs gc removes them once older than its grace period)`],
  ];
  if (s.s3) {
    lines.push(['bucket', `${s.s3.url}: ${formatBytes(s.s3.bucketBytes)} in ${s.s3.bucketObjects} objects`]);
    lines.push(['local cache', `${formatBytes(s.s3.cacheBytes)} in ${s.s3.cacheChunks} chunks, ${s.s3.pendingUploads} not yet uploaded (${formatBytes(s.s3.pendingBytes)})`]);
  }
  if (s.missingChunks || s.damagedEntries) lines.push(['DAMAGE', `${s.missingChunks} missing chunks, ${s.damagedEntries} unreadable entries: run sefs fsck`]);
  for (const [k, v] of lines) process.stdout.write(`${k!.padEnd(13)}${v}\n`);
}
