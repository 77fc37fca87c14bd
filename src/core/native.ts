/**
 * The native addon of the hot loops (src/core/native, built by scripts/build-native.mjs): four-way SHA3-256,
 * the pad XOR and four-stream AES-128-CBC encryption, with SIMD and AES-NI; exact file times (file-times.ts) and renameat2's exchange (spare-entries.ts) and no-replace (fresh-entries.ts). Optional: without it (not built, or SEFS_NATIVE=0) the same results come from
 * OpenSSL and JavaScript, more slowly.
 */
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

export interface NativeAddon {
  sha3Many(list: Uint8Array[]): Buffer;
  xorPad(target: Uint8Array, at: number, source: Uint8Array, pad: Uint8Array): void;
  /** Where `bytes` starts in memory, modulo `align` (a power of two; absent in an addon built before it). */
  addressMod?(bytes: Uint8Array, align: number): number;
  /** memmove of `source` into `target` at `at` (absent in an addon built before it). */
  copyBytes?(target: Uint8Array, at: number, source: Uint8Array): void;
  /** AES-128-CBC encryption in place, four streams at a time; only on CPUs with AES-NI. */
  aesCbcEncryptMany?(buffers: Uint8Array[], keys: Uint8Array[], ivs: Uint8Array[]): void;
  /**
   * AES-128-CBC decryption in place of whole blocks (no padding removed), unmasked first with `pad` (64 bytes,
   * repeated from the start) in the same pass when given; only on CPUs with AES-NI.
   */
  aesCbcDecrypt?(buffer: Uint8Array, key: Uint8Array, iv: Uint8Array, pad?: Uint8Array): void;
  /** One-shot brotli decoding into `output`: bytes written, or -1 (invalid, or larger than `output`). Absent where Node's brotli is not found. */
  brotliDecodeInto?(input: Uint8Array, output: Uint8Array): number;
  /**
   * One-shot brotli encoding with node:zlib's defaults (window 22, generic mode, size hint the input's length)
   * into `output` (at least maxBrotliSize(input.length) bytes): bytes written, or -1. Absent where Node's brotli is not found.
   */
  brotliEncodeInto?(input: Uint8Array, output: Uint8Array, quality: number): number;
  /** The kernel picked for this CPU: 'avx512vl', 'avx2' or 'generic'. */
  kernel: string;
  /** utimensat(2) with times in ns (bigint); 0 or a negative errno. */
  setTimes(path: string, atimeNs: bigint, mtimeNs: bigint, noFollow: boolean): number;
  /** futimens(2) with times in ns (bigint); 0 or a negative errno. */
  setFdTimes(fd: number, atimeNs: bigint, mtimeNs: bigint): number;
  /** futimens(fd, NULL): all three times the kernel's now; 0 or a negative errno (absent in an older build). */
  setFdTimesNow?(fd: number): number;
  /** renameat2(2) with RENAME_EXCHANGE: 0 or a negative errno (absent in an addon built before it). */
  exchange?(a: string, b: string): number;
  /** renameat2(2) with RENAME_NOREPLACE: 0 or a negative errno (absent in an addon built before it). */
  noReplace?(a: string, b: string): number;
  /** ext4's FS_TOPDIR_FL (chattr +T) on a directory: 0 or a negative errno (absent in an older build). */
  markTopDir?(path: string): number;
  /** `count` (1-256) empty files prefix<first>... made 0600 in directory `dirFd` in one thread-pool job: descriptors or negative errnos. */
  makeFresh?(dirFd: number, prefix: string, first: number, count: number): Promise<number[]>;
  /**
   * One thread-pool job: open `path` (O_RDONLY|O_NONBLOCK|O_NOFOLLOW, O_NOATIME when asked and allowed), fstat,
   * read back its real path, pread [start, min(end, size)) unless it is not a regular file or is over `max`
   * bytes, close (absent in an older build). Into `target` when given, else a new buffer (`bytes`).
   */
  readFile?(path: string, noAtime: boolean, start: number, end: number, max: number, target?: Uint8Array, direct?: boolean): Promise<NativeRead>;
  /**
   * readFile of several whole files (each at most `max` bytes) in one thread-pool job: one result per path, in
   * order. Past `budget` bytes in all (the first file aside) a file is stat'ed but not read (`skipped`), for the
   * caller to read alone (absent in an older build).
   */
  readFiles?(paths: string[], noAtime: boolean, max: number, budget: number): Promise<NativeRead[]>;
  /** unlinkat(dirFd, name, 0) of each name (1-4096, no slashes) in one thread-pool job: 0 or a negative errno each (absent in an older build). */
  removeNames?(dirFd: number, names: string[]): Promise<number[]>;
  /**
   * Write `bytes` as the whole content of the new empty file `fd`, past the page cache (O_DIRECT); synchronous.
   * bytes.length once written, 0 when it cannot (nothing written: write as usual), or a negative errno.
   */
  writeDirect?(fd: number, bytes: Uint8Array): number;
}

/** What readFile found: `errno` (negative) and `syscall` when a call failed; `mode` and `size` once fstat ran. */
export interface NativeRead {
  errno: number;
  syscall?: 'open' | 'fstat' | 'read' | 'malloc';
  mode: number;
  size: number;
  real?: string;
  length: number;
  bytes?: Buffer;
  /** readFiles: over its budget, not read. */
  skipped?: boolean;
}

/** Whether the addon is in use, and why not (sefs --version prints it). */
export let nativeStatus = 'not built';

function load(): NativeAddon | undefined {
  if (process.env.SEFS_NATIVE === '0') {
    nativeStatus = 'off (SEFS_NATIVE=0)';
    return undefined;
  }
  try {
    // This module sits two levels below the package root, as src/core/*.ts and as dist/core/*.js.
    const addon = createRequire(import.meta.url)('../../dist/native/sha3x4.node') as NativeAddon;
    nativeStatus = `in use (kernel ${addon.kernel}${addon.aesCbcEncryptMany ? ', AES-NI' : ''})`;
    return addon;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    // Built but unloadable (another architecture, a missing library): say so once, never silently slower.
    nativeStatus = `failed to load: ${(err as Error).message.split('\n')[0]}`;
    if (isMainThread) process.stderr.write(`sefs: native addon ${nativeStatus}; hashing with OpenSSL instead\n`);
    return undefined;
  }
}

export const native: NativeAddon | undefined = load();
