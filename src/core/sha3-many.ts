/**
 * SHA3-256 of several inputs at once. The native addon (src/core/native, built by scripts/build-native.mjs)
 * runs four Keccak states side by side in SIMD registers: four 1 MiB chunks hash in about the time OpenSSL
 * takes for one. Without the addon (not built, or SEFS_NATIVE=0) the same results come from OpenSSL.
 */
import { createRequire } from 'node:module';
import { sha3 } from './hash.js';

interface Sha3Addon {
  sha3Many(list: Uint8Array[]): Buffer;
  kernel: string;
}

function loadAddon(): Sha3Addon | undefined {
  if (process.env.SEFS_NATIVE === '0') return undefined;
  try {
    // This module sits two levels below the package root, as src/core/*.ts and as dist/core/*.js.
    return createRequire(import.meta.url)('../../dist/native/sha3x4.node') as Sha3Addon;
  } catch {
    return undefined;
  }
}

const addon = loadAddon();

/** Which SHA3 code hashes batches here: the addon's kernel ('avx512vl', 'avx2', 'generic') or 'openssl'. */
export const sha3Backend: string = addon?.kernel ?? 'openssl';

/** SHA3-256 of each input, in order. */
export function sha3Many(list: Uint8Array[]): Buffer[] {
  if (!addon || list.length < 2) return list.map(sha3);
  const digests = addon.sha3Many(list);
  return list.map((_, i) => digests.subarray(32 * i, 32 * i + 32));
}
