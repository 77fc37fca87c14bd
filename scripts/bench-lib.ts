/**
 * Library throughput: parallelEncrypt and parallelDecrypt of random and text-like input, both profiles,
 * 1 and 2 worker threads, into a memory store (so the numbers are the crypto's, not a disk's).
 *   npx tsx scripts/bench-lib.ts [--mib N]      (default 256 MiB per input)
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { PROFILES, type Profile } from '../src/core/compression.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { WorkerPool, parallelDecrypt, parallelEncrypt } from '../src/lib/index.js';
import { seededBytes, textLike } from '../test/helpers/inputs.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' } } });
const size = Number(values.mib) * 1024 * 1024;
const inputs: [string, Buffer][] = [
  ['random', seededBytes(size, 1)],
  ['text-like', textLike(size, 2)],
];

interface Row {
  data: string;
  profile: Profile;
  threads: number;
  encrypt: number;
  decrypt: number;
  /** MB per CPU-second of the whole process (all threads): what the work costs, whatever else shares the machine. */
  encryptCpu: number;
  decryptCpu: number;
  stored: number;
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;
const rows: Row[] = [];
for (const [data, input] of inputs) {
  for (const profile of PROFILES) {
    for (const threads of [1, 2]) {
      const pool = new WorkerPool(threads);
      await Promise.all(Array.from({ length: threads }, () => pool.hash(Buffer.alloc(1)))); // workers started
      const store = new MemoryStore();
      let t = performance.now();
      let cpu = process.cpuUsage();
      const dataMap = await parallelEncrypt(input, store, { pool, profile });
      const enc = performance.now() - t;
      const encCpu = cpuMs(process.cpuUsage(cpu));
      t = performance.now();
      cpu = process.cpuUsage();
      const back = await parallelDecrypt(dataMap, store, { pool });
      const dec = performance.now() - t;
      const decCpu = cpuMs(process.cpuUsage(cpu));
      await pool.close();
      if (!back.equals(input)) throw new Error(`${data}/${profile}/${threads}: decrypted bytes differ`);
      let stored = 0;
      for (const c of store.chunks.values()) stored += c.length;
      const row = {
        data,
        profile,
        threads,
        encrypt: mbps(size, enc),
        decrypt: mbps(size, dec),
        encryptCpu: mbps(size, encCpu),
        decryptCpu: mbps(size, decCpu),
        stored: stored / size,
      };
      rows.push(row);
      process.stderr.write(`${data} ${profile} ${threads}: encrypt ${row.encrypt.toFixed(0)} MB/s, decrypt ${row.decrypt.toFixed(0)} MB/s (load ${loadavg()[0]!.toFixed(1)})\n`);
    }
  }
}

const [load1] = loadavg();
console.log(`\nsefs library, ${size / 1024 / 1024} MiB per input, ${availableParallelism()} cores, load average ${load1!.toFixed(1)} at the end`);
console.log('(MB/s = 10^6 bytes of plaintext per second of wall time; per CPU-s = per second of CPU used by all threads)\n');
console.log('| data      | profile | threads | encrypt MB/s | decrypt MB/s | encrypt MB/CPU-s | decrypt MB/CPU-s | stored/input |');
console.log('|-----------|---------|---------|--------------|--------------|------------------|------------------|--------------|');
for (const r of rows) {
  console.log(
    `| ${r.data.padEnd(9)} | ${r.profile.padEnd(7)} | ${String(r.threads).padStart(7)} | ${r.encrypt.toFixed(0).padStart(12)} | ${r.decrypt.toFixed(0).padStart(12)} | ${r.encryptCpu.toFixed(0).padStart(16)} | ${r.decryptCpu.toFixed(0).padStart(16)} | ${r.stored.toFixed(3).padStart(12)} |`,
  );
}
