/** sefs decrypt DATAMAP --store DIR --out FILE */
import { readDataMapFile } from '../../lib/data-map-file.js';
import { decryptToFile } from '../../lib/file.js';
import { type OptionTable, type Parsed, required } from '../args.js';
import { progressLine } from '../progress.js';
import { storeForReading } from '../store.js';

export const summary = 'decrypt a file from its DataMap and chunk store';

export const usage = `usage: sefs decrypt DATAMAP --store DIR --out FILE

Decrypts the file DATAMAP describes from the chunk store DIR into FILE. Every chunk is verified
against its hashes; FILE appears only once it is complete (written to a temp file, then renamed).

  --store DIR    chunk store directory, or s3://BUCKET[/PREFIX] (AWS SDK settings: sefs init)
  --out FILE     where to write the decrypted file (replaced if it exists)`;

export const options = {
  store: { type: 'string', help: 'chunk store directory', complete: 'dir' },
  out: { type: 'string', help: 'where to write the decrypted file', complete: 'file' },
} as const satisfies OptionTable;
export const operands = [{ name: 'DATAMAP', complete: 'file' }] as const;

export async function run({ values, operands: [mapFile] }: Parsed<typeof options>): Promise<number> {
  const storeDir = required(values.store, '--store');
  const out = required(values.out, '--out');
  const dataMap = await readDataMapFile(mapFile!);
  const store = await storeForReading(storeDir);
  const progress = progressLine(`decrypting to ${out}`);
  try {
    await decryptToFile(dataMap, store, out, { onProgress: progress.update });
  } finally {
    progress.end();
  }
  return 0;
}
