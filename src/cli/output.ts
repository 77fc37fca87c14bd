/** Writing bulk data to stdout with back-pressure (a reader that goes away ends us quietly: main.ts). */
import { once } from 'node:events';

export async function writeStdout(data: Uint8Array): Promise<void> {
  if (!process.stdout.write(data)) await once(process.stdout, 'drain');
}
