/**
 * A read-only mount: the kernel is told `ro` (so most writes never arrive), and the daemon refuses every
 * operation that would change the vault with EROFS itself, whatever reaches it (a kernel that ignores the flag,
 * a remount, an open for writing).
 */
import { constants } from 'node:fs';
import { E } from './errno.js';
import { type FuseOps, opensForReading } from './fuse-binding.js';

/** The operations that change the tree, its files or their attributes. */
const CHANGING = ['chmod', 'chown', 'utimens', 'mkdir', 'rmdir', 'unlink', 'rename', 'symlink', 'mknod', 'link', 'create', 'write', 'truncate', 'ftruncate', 'fallocate', 'setxattr', 'removexattr'];

type Cb = (code: number, value?: unknown) => void;

export function readOnlyOps(ops: FuseOps): FuseOps {
  const refuse = (...args: unknown[]) => (args.at(-1) as Cb)(-E.EROFS);
  const out: FuseOps = { ...ops };
  for (const name of CHANGING) if (name in ops) out[name] = refuse;
  const open = ops.open;
  if (open) {
    out.open = (path: string, flags: number, cb: Cb) => {
      if (!opensForReading(flags) || flags & constants.O_TRUNC) return cb(-E.EROFS);
      open(path, flags, cb);
    };
  }
  return out;
}
