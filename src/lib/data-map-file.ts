/**
 * DataMap files as the CLI reads and writes them: the reference bincode serialisation, shrunk as the reference
 * shrinks it, so files made by the reference crate work here and ours work there.
 */
import { readFile } from 'node:fs/promises';
import { type DataMap, deserializeDataMap, serializeDataMap } from '../core/data-map.js';
import { writeFileAtomic } from './atomic-file.js';

/** Parse a DataMap file; malformed content is an InvalidDataMap, a missing file the usual ENOENT. */
export async function readDataMapFile(path: string): Promise<DataMap> {
  return deserializeDataMap(await readFile(path));
}

/** Write a DataMap file atomically. It is the key to the content: created 0600. */
export async function writeDataMapFile(path: string, map: DataMap): Promise<void> {
  await writeFileAtomic(path, serializeDataMap(map), 0o600);
}
