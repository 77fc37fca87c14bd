/**
 * The native addon against what it replaces, on 1 MiB chunks: SHA3-256 of 1, 2, 4 and 8 chunks through
 * sha3Many (four-way kernel) and through OpenSSL one by one, AES-128-CBC encryption of four chunks at once
 * and through OpenSSL one by one, and the pad XOR native and in JavaScript.
 *   npx tsx scripts/bench-native.ts [--rounds N]
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { xorInto, xorIntoPortable } from '../src/core/chunk.js';
import { sha3 } from '../src/core/hash.js';
import { native } from '../src/core/native.js';
import { sha3Backend, sha3Many } from '../src/core/sha3-many.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 30;
const MiB = 1 << 20;
const chunks = Array.from({ length: 8 }, () => randomBytes(MiB));

/** MB/s of `fn` processing `bytes` per call, best of three timed runs of `rounds` calls. */
function rate(bytes: number, fn: () => void): number {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    for (let i = 0; i < rounds; i++) fn();
    best = Math.min(best, performance.now() - start);
  }
  return (bytes * rounds) / 1e6 / (best / 1000);
}

console.log(`kernel: ${sha3Backend}; 1 MiB chunks, best of 3 x ${rounds} rounds, one thread`);
console.log('| chunks at once | OpenSSL one by one (MB/s) | sha3Many (MB/s) | speed-up |');
console.log('|---|---|---|---|');
for (const n of [1, 2, 4, 8]) {
  const list = chunks.slice(0, n);
  const openssl = rate(n * MiB, () => list.forEach((c) => sha3(c)));
  const many = rate(n * MiB, () => sha3Many(list));
  console.log(`| ${n} | ${openssl.toFixed(0)} | ${many.toFixed(0)} | ${(many / openssl).toFixed(2)}x |`);
}
const keys = chunks.slice(0, 4).map(() => randomBytes(16));
const aesOpenssl = rate(4 * MiB, () => chunks.slice(0, 4).forEach((c, i) => createCipheriv('aes-128-cbc', keys[i]!, keys[i]!).update(c)));
const aesMany = native?.aesCbcEncryptMany;
const aesNative = aesMany ? rate(4 * MiB, () => aesMany(chunks.slice(0, 4), keys, keys)) : NaN;
console.log(`\nAES-128-CBC encryption of 4 chunks: OpenSSL one by one ${aesOpenssl.toFixed(0)} MB/s, four streams ${aesNative.toFixed(0)} MB/s`);
const pad = randomBytes(64);
const target = Buffer.alloc(MiB);
const js = rate(MiB, () => xorIntoPortable(target, 0, chunks[0]!, pad));
const nat = rate(MiB, () => xorInto(target, 0, chunks[0]!, pad));
console.log(`pad XOR of 1 MiB: JavaScript ${js.toFixed(0)} MB/s, native ${nat.toFixed(0)} MB/s`);
