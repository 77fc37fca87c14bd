/**
 * Copy bytes into or out of shared memory (the mount's chunk slab and its written blocks) at memcpy's speed:
 * V8 copies from or into a SharedArrayBuffer with relaxed atomic loads and stores, about a third as fast, and
 * the mount copies every byte it serves or is given this way on its one event-loop thread
 * (native-notes/benchmarking.md, seventh session).
 */
import { native } from './native.js';

/** Below this many bytes the call into the addon costs more than V8's own copy. */
const NATIVE_COPY_MIN = 4096;

/** source[from, to) into target at `at`, as Buffer.copy; the number of bytes copied. */
export function copyBytes(source: Buffer, target: Buffer, at: number, from: number, to: number): number {
  const fits = Math.min(to, source.length, from + target.length - at) - from;
  if (native?.copyBytes && fits >= NATIVE_COPY_MIN) {
    native.copyBytes(target, at, source.subarray(from, from + fits));
    return fits;
  }
  return source.copy(target, at, from, to);
}
