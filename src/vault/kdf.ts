/**
 * The passphrase's key derivation: scrypt (node:crypto, native and off the event loop). The parameters come
 * from sefs.json, which an attacker may have rewritten: they are checked against fixed bounds before any
 * work, so a hostile file costs a clear error, not minutes of CPU and gigabytes of memory.
 */
import { scrypt } from 'node:crypto';

export interface ScryptCost {
  /** N = 2^logN. */
  logN: number;
  r: number;
  p: number;
}

/** 128 MiB of memory, about half a second on one core: what `sefs init` uses. */
export const DEFAULT_SCRYPT: ScryptCost = { logN: 17, r: 8, p: 1 };
/** Lowest cost accepted (tests use 2^10 to 2^12; anything lower is not worth a passphrase). */
const MIN_LOG_N = 10;
/** scrypt needs 128 * r * N bytes: at most 256 MiB (twice the default). */
const MAX_MEMORY = 256 * 1024 * 1024;
/** Its time grows with N * r * p: at most twice the default's. */
const MAX_WORK = 2 * 2 ** DEFAULT_SCRYPT.logN * DEFAULT_SCRYPT.r * DEFAULT_SCRYPT.p;

const memoryOf = (c: ScryptCost): number => 128 * c.r * 2 ** c.logN;

/** Why these parameters are refused, or undefined when they are within bounds. */
export function scryptCostProblem(c: Partial<ScryptCost>): string | undefined {
  const int = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  if (!int(c.logN, MIN_LOG_N, 30) || !int(c.r, 1, 64) || !int(c.p, 1, 64)) return 'scrypt parameters are not integers in range';
  const cost = c as ScryptCost;
  if (memoryOf(cost) > MAX_MEMORY) return `scrypt would need ${memoryOf(cost) / 2 ** 20} MiB of memory (at most ${MAX_MEMORY / 2 ** 20})`;
  if (2 ** cost.logN * cost.r * cost.p > MAX_WORK) return `scrypt cost N*r*p = ${2 ** cost.logN * cost.r * cost.p} is over the limit ${MAX_WORK}`;
  return undefined;
}

/** A 32-byte key from the passphrase; the caller zero-fills it when done. Parameters must have been checked. */
export function scryptKey(passphrase: Uint8Array, salt: Uint8Array, c: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const N = 2 ** c.logN;
    scrypt(passphrase, salt, 32, { N, r: c.r, p: c.p, maxmem: memoryOf(c) + 128 * c.r * c.p + 2 ** 20 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}
