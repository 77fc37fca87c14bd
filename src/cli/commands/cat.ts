/** sefs cat DATAMAP --store DIR [--offset N] [--length N] */
import { dataMapSize } from '../../core/data-map.js';
import { readDataMapFile } from '../../lib/data-map-file.js';
import { sharedPool } from '../../lib/pool.js';
import { windowFor } from '../../lib/crypto.js';
import { decryptSlices, rootDataMap } from '../../lib/read.js';
import { fetcherOf } from '../../lib/source.js';
import { type OptionTable, type Parsed, byteCount, required } from '../args.js';
import { writeStdout } from '../output.js';
import { storeForReading } from '../store.js';

export const summary = 'write a file, or a byte range of it, to stdout';

export const usage = `usage: sefs cat DATAMAP --store DIR [--offset N] [--length N]

Writes the file DATAMAP describes to stdout, or LENGTH bytes from OFFSET: only the chunks
covering the range are fetched and decrypted. A range running past the end stops at the end.

  --store DIR     chunk store directory, or s3://BUCKET[/PREFIX] (AWS SDK settings: sefs init)
  --offset N      first byte (default 0)
  --length N      number of bytes (default: to the end of the file)`;

export const options = {
  store: { type: 'string', help: 'chunk store directory', complete: 'dir' },
  offset: { type: 'string', help: 'first byte (default 0)' },
  length: { type: 'string', help: 'number of bytes (default: to the end)' },
} as const satisfies OptionTable;
export const operands = [{ name: 'DATAMAP', complete: 'file' }] as const;

export async function run({ values, operands: [mapFile] }: Parsed<typeof options>): Promise<number> {
  const storeDir = required(values.store, '--store');
  const offset = byteCount(values.offset, '--offset', 0)!;
  const length = byteCount(values.length, '--length');
  const dataMap = await readDataMapFile(mapFile!);
  const store = await storeForReading(storeDir);
  const root = await rootDataMap(dataMap, store);
  const size = dataMapSize(root);
  const pool = sharedPool();
  // Streams chunk by chunk, a few ahead, so a whole large file costs a few chunks of memory.
  for await (const slice of decryptSlices(root, fetcherOf(store), offset, length ?? size - offset, { pool, ahead: windowFor(pool) })) {
    await writeStdout(slice);
  }
  return 0;
}
