/** Writing bulk data to stdout with back-pressure; a reader that goes away (`| head`) ends us quietly, as cat. */
import { once } from 'node:events';

let guarded = false;

export async function writeStdout(data: Uint8Array): Promise<void> {
  if (!guarded) {
    guarded = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      process.stderr.write(`sefs: cannot write to stdout: ${err.message}\n`);
      process.exit(1);
    });
  }
  if (!process.stdout.write(data)) await once(process.stdout, 'drain');
}
