/**
 * Loads fuse-native (CommonJS) and names the parts of its API we use. The dependency is patched at install
 * time (scripts/patch-fuse-native.mjs, native-notes/fuse-native-patch.md); an unpatched one would mount and
 * then silently lose file times (its utimens drops mtime) and our kernel options (it has no `extraOptions`),
 * so it is refused.
 */
import { constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SefsError } from '../core/errors.js';

export type FuseOps = Record<string, (...args: any[]) => void>;

/**
 * The process whose request an op answers (libfuse's fuse_get_context, patch level 2 and later): the callback of every
 * op but init carries it as `cb.context`. umask is the caller's, for information: the kernel has already
 * applied it to the mode an op receives.
 */
export interface FuseCaller {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  /**
   * Patch level 4: the kernel drops the attributes it holds for every name of inode `ino` (the mount uses
   * use_ino), so the next stat of each asks the daemon. The binding knows only names it saw with nlink > 1
   * (files with several names). Returns how many kernel nodes were told; 0 when not mounted.
   */
  invalidateIno(ino: number): number;
  /**
   * Patch level 6: the binding answers getattrs (lookups, stats) from attributes JS gave moments before (a
   * readdir's stats, a change's answer, a getattr's answer), for up to 1 s, and drops them on every request
   * that changes the paths they belong to. dropAttrs(path) is for a change JS makes on its own.
   */
  dropAttrs(path: string): void;
  /** How many getattrs the binding answered, and how many reached JS (and what it holds now). */
  attrStats(): AttrCacheStats;
  /**
   * Patch level 7: reads the binding answers itself from a shared buffer (the chunk cache's slab), per handle
   * and file range, until dropped (fs/slab-reads.ts has the rules).
   */
  readSlab(view: Uint8Array): void;
  readExtent(fh: number, start: number, length: number, at: number, slot: number, toEof: boolean): boolean;
  readData(fh: number, start: number, bytes: Buffer, toEof: boolean): boolean;
  dropReads(fh: number): void;
  dropSlot(slot: number): void;
  /** How many reads the binding answered, and how many reached JS. */
  readStats(): SlabReadStats;
  /**
   * Patch level 9: writes held in the binding (fs/held-writes.ts has the rules). holdWrites(fh, endMax) before
   * answering the create of fh (writes ending past endMax go to JS); heldRuns() is how many handles hold bytes now; takeWrites() empties every run
   * ([fh, offset, bytes, mtimeMs] each); endWrites(fh) stops holding and returns fh's run, or null.
   */
  holdWrites(fh: number, endMax: number): void;
  heldRuns(): number;
  takeWrites(): unknown[];
  endWrites(fh: number): unknown;
  /**
   * Patch level 12: chmod, chown and utimens of a file whose create the binding answered, while its handle holds
   * writes, answered in the binding; takeChanges() returns them in order ([kind, path, a, b] each: HeldChange in
   * ops-attr.ts), and heldRuns() counts them too.
   */
  takeChanges(): unknown[];
  /** How many writes of holding handles the binding kept, how many it passed to JS, and the changes it answered. */
  writeStats(): WriteStats;
  /**
   * Patch level 10: every name directory `path` holds, listed in this same turn of the JS thread (fs/dir-names.ts
   * has the rule); the binding then answers lookups of other names there ENOENT itself. True if recorded.
   */
  knowDir(path: string, names: string[]): boolean;
  /**
   * Patch level 11: creates answered in the binding (fs/held-creates.ts has the rules). createsStart(metaFd,
   * endMax) answers them beneath O_PATH descriptor metaFd (-1: stop; false if not answered); giveCreates hands
   * prepared inodes ([dirFd, name, fd, ino, fh] each; the taken ones' fds become the binding's) and returns how
   * many it took; createsMade() is how many were answered and not taken; takeCreates() returns them in order
   * ([fh, path, ino] each).
   */
  createsStart(metaFd: number, endMax: number): boolean;
  giveCreates(items: [number, string, number, number, number][]): number;
  createsMade(): number;
  takeCreates(): [number, string, number][];
  createStats(): { ready: number; made: number; passed: number; dropped: number };
  /** Hold creates before their rename (true) or let them go on (false): around a replacement that keeps its directory's times. */
  createsPause(on: boolean): void;
}

export interface SlabReadStats {
  hits: number;
  misses: number;
}

export interface AttrCacheStats {
  hits: number;
  misses: number;
  entries: number;
  /** Lookups answered ENOENT by the binding from the names of directories made through the mount. */
  absent: number;
  /** Such directories it knows now. */
  dirs: number;
  /** Directories whose names JS gave (knowDir), since the mount. */
  given: number;
}

export interface FuseClass {
  new (mnt: string, ops: FuseOps, opts: Record<string, unknown>): FuseInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
  isConfigured(cb: (err: Error | null, yes: boolean) => void): void;
  /** Set by the patched index.js (`Fuse.sefsPatchLevel = SEFS_PATCH_LEVEL`); absent upstream. */
  sefsPatchLevel?: number;
}

/** The access-mode bits of open(2)'s flags (node's constants lack O_ACCMODE). */
const O_ACCMODE = 3;

/** Whether open(2) `flags` (as an open request carries them) open for reading only. */
export const opensForReading = (flags: number): boolean => (flags & O_ACCMODE) === fsConstants.O_RDONLY;

/** The patch level our code is written against: PATCH_LEVEL of scripts/patch-fuse-native.mjs. */
export const FUSE_PATCH_LEVEL = 13;

/** What the binding did with writes and changes of files it holds (patch levels 9 and 12). */
export interface WriteStats {
  held: number;
  passed: number;
  changed: number;
}

// The script's absolute path: in an installed package there is no checkout to cd into.
const PATCH_SCRIPT = fileURLToPath(new URL('../../scripts/patch-fuse-native.mjs', import.meta.url));
const FIX = `run \`node ${PATCH_SCRIPT}\` (it patches and rebuilds fuse-native; see native-notes/fuse-native-patch.md)`;

export class FuseBindingError extends SefsError {
  constructor(message: string) {
    super('FuseBindingError', message);
  }
}

let cached: FuseClass | undefined;

/**
 * The patched fuse-native, or a FuseBindingError saying how to fix the install. `pkg` is what to require (a
 * package directory in tests). The patched index.js itself refuses an unpatched addon when it loads; the level
 * it exports tells a patched index.js from the upstream one.
 */
export function loadFuse(pkg = 'fuse-native'): FuseClass {
  if (pkg === 'fuse-native' && cached) return cached;
  const req = createRequire(import.meta.url);
  let Fuse: FuseClass;
  try {
    Fuse = req(pkg) as FuseClass;
  } catch (err) {
    throw new FuseBindingError(`cannot load fuse-native: ${(err as Error).message}`);
  }
  if (Fuse.sefsPatchLevel !== FUSE_PATCH_LEVEL) {
    const found = Fuse.sefsPatchLevel === undefined ? 'not patched by sefs' : `at sefs patch level ${Fuse.sefsPatchLevel}, not ${FUSE_PATCH_LEVEL}`;
    throw new FuseBindingError(`fuse-native (${req.resolve(pkg)}) is ${found}: mounting would lose file times and kernel options; ${FIX}`);
  }
  if (pkg === 'fuse-native') cached = Fuse;
  return Fuse;
}
