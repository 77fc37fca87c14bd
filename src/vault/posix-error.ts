/**
 * Errors that carry a POSIX errno, shaped as Node's own fs errors are (negative `errno`, `code`), so the
 * mount's edge maps them like any failed syscall. The vault knows POSIX, not FUSE.
 */
import { constants } from 'node:os';

export type ErrnoCode = keyof typeof constants.errno;

export class PosixError extends Error {
  readonly errno: number;
  constructor(
    readonly code: ErrnoCode,
    message = '',
  ) {
    super(message || code);
    this.errno = -constants.errno[code];
  }
}

export const posixError = (code: ErrnoCode, message = ''): PosixError => new PosixError(code, message);

/** A native call's result (0, or a negative errno) as a thrown PosixError naming `what`. */
export function checkErrno(result: number, what: string): void {
  if (result === 0) return;
  const code = (Object.keys(constants.errno) as ErrnoCode[]).find((c) => constants.errno[c] === -result) ?? 'EIO';
  throw posixError(code, `${what}: ${code}`);
}
