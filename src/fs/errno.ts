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

/**
 * A log line as written: control characters (newlines, terminal escapes) escaped JSON-style, so a file name
 * can neither start a line of its own nor steer a terminal showing the log.
 */
export const logLine = (line: string): string =>
  line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** `path`: the file as a log line may name it (MetaTree.logName: quoted, sealed in a sealed vault). */
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
