/** sefs encrypt FILE --store DIR [--datamap OUT] [--json] [--profile compat|fast|selective] */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isProfile, PROFILES } from '../../core/compression.js';
import { dataMapSize, dataMapToJson } from '../../core/data-map.js';
import { writeDataMapFile } from '../../lib/data-map-file.js';
import { encryptFileMaps } from '../../lib/file.js';
import { type OptionTable, type Parsed, UsageError, required } from '../args.js';
import { progressLine } from '../progress.js';
import { storeForWriting } from '../store.js';

export const summary = 'self-encrypt a file into a chunk store and write its DataMap';

export const usage = `usage: sefs encrypt FILE --store DIR [--datamap OUT] [--json] [--profile compat|fast|selective]

Self-encrypts FILE, streaming, into the chunk store DIR (created if missing) and writes
its DataMap, the key to the content, in the reference crate's form (shrunk as it shrinks it).

  --store DIR      chunk store directory (chunks under DIR/ab/cd/<hash>), or s3://BUCKET[/PREFIX]
                   (endpoint and keys from the AWS SDK settings: see sefs init)
  --datamap OUT    where to write the DataMap (default: FILE.datamap)
  --json           print the file's root DataMap as JSON:
                   {file_size, child, chunks: [{index, dst, src, size}]}, hashes in hex
  --profile P      compat (default; the same chunk names as the reference crate), fast (compresses
                   whatever it can) or selective (compresses only what shrinks to a third or less)`;

export const options = {
  store: { type: 'string', help: 'chunk store directory (created if missing)', complete: 'dir' },
  datamap: { type: 'string', help: 'where to write the DataMap (default FILE.datamap)', complete: 'file' },
  json: { type: 'boolean', help: 'print the root DataMap as JSON' },
  profile: { type: 'string', help: 'compression profile', complete: PROFILES },
} as const satisfies OptionTable;
export const operands = [{ name: 'FILE', complete: 'file' }] as const;

export async function run({ values, operands: [file] }: Parsed<typeof options>): Promise<number> {
  const storeDir = required(values.store, '--store');
  const profile = values.profile ?? 'compat';
  if (!isProfile(profile)) throw new UsageError(`--profile must be one of ${PROFILES.join(', ')}, got '${profile}'`);
  const out = values.datamap ?? `${file}.datamap`;
  if (resolve(out) === resolve(file!)) throw new UsageError('--datamap would overwrite FILE');
  if (!(await stat(file!)).isFile()) throw new Error(`${file}: not a regular file`);

  const store = await storeForWriting(storeDir);
  const progress = progressLine(`encrypting ${file}`);
  let maps;
  try {
    maps = await encryptFileMaps(file!, store, { profile, onProgress: progress.update });
  } finally {
    progress.end();
  }
  await writeDataMapFile(out, maps.dataMap);

  // The JSON shows the file's own (root) map even when the file holds a shrunk one.
  const root = maps.root;
  if (values.json) process.stdout.write(JSON.stringify(dataMapToJson(root, dataMapSize(root)), null, 2) + '\n');
  else process.stdout.write(`${out}: DataMap of ${file} (${dataMapSize(root)} bytes, ${root.chunks.length} chunks)\n`);
  return 0;
}
