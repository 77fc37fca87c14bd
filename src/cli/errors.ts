/** Turns any error into the one line `sefs: <message>` prints, and the exit code that goes with it. */
import { SefsError } from '../core/errors.js';
import { UsageError } from './args.js';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
};

export function describeError(err: unknown): string {
  let text: string;
  if (err instanceof SefsError || err instanceof UsageError) text = err.message;
  else if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    const e = err as NodeJS.ErrnoException;
    const what = ERRNO_TEXT[e.code!];
    text = what && e.path ? `${e.path}: ${what}` : e.message;
  } else text = err instanceof Error ? err.message : String(err);
  // One line, whatever the message holds.
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** 2 for bad usage (as getopt tools do), 1 for everything else. */
export function exitCodeOf(err: unknown): number {
  return err instanceof UsageError ? 2 : 1;
}
