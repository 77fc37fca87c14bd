/**
 * Turning errors into the negative errno values FUSE replies with. Damage in the vault (missing or corrupt
 * chunks, unreadable metadata) is EIO on that operation, with a log line naming the file and the chunk.
 */
import { constants } from 'node:os';
import { SefsError } from '../core/errors.js';

export const E = constants.errno;

export class FsError extends Error {
  constructor(
    readonly errno: number,
    message = '',
  ) {
    super(message);
  }
}

export const fsError = (errno: number, message = ''): FsError => new FsError(errno, message);

export type Logger = (line: string) => void;

export function toErrno(err: unknown, op: string, path: string, log: Logger): number {
  if (err instanceof FsError) return -err.errno;
  if (err instanceof SefsError) {
    const chunk = (err as { chunkName?: string }).chunkName;
    log(`${op} ${path}: ${err.code}${chunk ? ` chunk ${chunk}` : ''}: ${err.message}`);
    return -E.EIO;
  }
  const errno = (err as NodeJS.ErrnoException).errno;
  if (typeof errno === 'number' && errno < 0) return errno;
  if (typeof errno === 'number' && errno > 0) return -errno;
  log(`${op} ${path}: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
  return -E.EIO;
}
