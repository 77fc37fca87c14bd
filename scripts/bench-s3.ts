/**
 * The S3 case of `npm run bench -- --only s3` (scripts/bench.ts calls runS3Bench): a vault with its chunks in
 * the bucket of the project's Ceph radosgw (scripts/s3-server.sh start), against the raw throughput of the
 * same client (@aws-sdk/client-s3 through S3Store) talking to the same server in the same run:
 *   - raw PUT and GET of 1 MiB objects, 16 in flight (as many as the mount's uploads);
 *   - a sequential write through the mount: dd conv=fsync (durable in the local cache), and until every
 *     chunk is in the bucket (sefs umount waits for the upload queue);
 *   - a cold sequential read (local cache emptied, page cache dropped): every chunk comes from the bucket;
 *   - cold 4 KiB random reads (same cold start): each fetches and decrypts its covering chunk.
 * The local cache (--disk-cache-mb) is a quarter of the file, so the write measures sustained uploads.
 * Each case also reports its CPU time per MiB (the client or the daemon, and the server's radosgw + OSD): on 2
 * cores both sides are CPU-bound, and the ratio of CPU per MiB is what the ratio of throughputs follows.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha3 } from '../src/core/hash.js';
import { S3Store } from '../src/store/s3-store.js';
import { cpuMsOf, followCpu, pidsNamed } from './cpu-time.js';

const MiB = 1024 * 1024;
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const CLI = path.join(REPO, 'dist', 'cli', 'main.js');
const BUCKET = 'sefs-bench';
const CONCURRENCY = 16;

/** CPU ms per MiB moved: the sefs side (the raw client, or the mount's daemon) and the server's. */
export interface CpuPerMiB {
  sefs: number;
  server: number;
}

export interface S3BenchResult {
  rawPutMBps: number;
  rawGetMBps: number;
  writeFsyncMBps: number;
  writeToBucketMBps: number;
  coldReadMBps: number;
  randRead4kP50Ms: number;
  randRead4kMeanMs: number;
  writeVsRawPut: number;
  readVsRawGet: number;
  cpu: { rawPut: CpuPerMiB; rawGet: CpuPerMiB; write: CpuPerMiB; read: CpuPerMiB };
}

const sh = (cmd: string, args: string[], env?: NodeJS.ProcessEnv): string => execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * MiB });
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const dropCaches = (): void => {
  sh('sync', []);
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    // not root: only the remount makes it cold
  }
};

async function inParallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const serverPids = (): number[] => pidsNamed('radosgw', 'ceph-osd');

/** Run `fn`, measuring this process's CPU time and the server's, per MiB of `mib`. */
async function cpuOfClient(mib: number, fn: () => Promise<void>): Promise<CpuPerMiB> {
  const server = serverPids();
  const s0 = cpuMsOf(server);
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return { sefs: (c.user + c.system) / 1000 / mib, server: (cpuMsOf(server) - s0) / mib };
}

/** Raw client throughput: 1 MiB objects (a chunk's size), put then got back. */
async function raw(prefix: string, count: number): Promise<{ put: number; get: number; putCpu: CpuPerMiB; getCpu: CpuPerMiB }> {
  const store = new S3Store({ bucket: BUCKET, prefix: `${prefix}/` });
  await store.ensureBucket();
  const objects = Array.from({ length: count }, () => {
    const content = randomBytes(MiB);
    return { name: Buffer.from(sha3(content)), content };
  });
  let t = performance.now();
  const putCpu = await cpuOfClient(count, () => inParallel(objects, CONCURRENCY, (o) => store.put(o.name, o.content)));
  const put = mbps(count * MiB, performance.now() - t);
  t = performance.now();
  const getCpu = await cpuOfClient(count, () => inParallel(objects, CONCURRENCY, async (o) => void (await store.get(o.name))));
  const get = mbps(count * MiB, performance.now() - t);
  await store.deleteMany(objects.map((o) => o.name.toString('hex')));
  return { put, get, putCpu, getCpu };
}

export async function runS3Bench(scratch: string, sizeMb: number, reads: number, log: (m: string) => void): Promise<S3BenchResult> {
  try {
    for (const m of sh('bash', [path.join(REPO, 'scripts/s3-server.sh'), 'env']).matchAll(/^export (AWS_[A-Z_]+)=(.*)$/gm)) process.env[m[1]!] = m[2]!;
  } catch (err) {
    throw new Error(`the S3 case needs the server of scripts/s3-server.sh (bash scripts/s3-server.sh start): ${(err as { stderr?: string }).stderr ?? err}`);
  }
  const root = path.join(scratch, 's3');
  const vault = path.join(root, 'vault');
  const mnt = path.join(root, 'mnt');
  const src = path.join(root, 'src.bin');
  fs.mkdirSync(root, { recursive: true });
  const size = sizeMb * MiB;
  const fd = fs.openSync(src, 'w');
  for (let done = 0; done < size; done += 8 * MiB) fs.writeSync(fd, randomBytes(Math.min(8 * MiB, size - done)));
  fs.closeSync(fd);
  const prefix = `bench-${Date.now().toString(36)}`;

  log(`s3: raw client, ${Math.min(sizeMb, 256)} x 1 MiB, ${CONCURRENCY} in flight`);
  const r = await raw(`${prefix}-raw`, Math.min(sizeMb, 256));
  const cacheMb = String(Math.max(16, Math.floor(sizeMb / 4)));
  sh(process.execPath, [CLI, 'init', vault, '--chunks', `s3://${BUCKET}/${prefix}`]);
  /** Mount; returns the daemon's pid (sefs mount names it). */
  const mount = (): number => Number(/daemon pid (\d+)/.exec(sh(process.execPath, [CLI, 'mount', vault, mnt, '--disk-cache-mb', cacheMb]))?.[1] ?? 0);
  const umount = (): void => void sh(process.execPath, [CLI, 'umount', mnt]);
  // Asynchronous, so that followCpu keeps reading the daemon's counters until it exits.
  const umountAsync = async (): Promise<void> => void (await promisify(execFile)(process.execPath, [CLI, 'umount', mnt]));
  /** Follow the daemon and the server from now until `done` settles (the daemon ends at its umount). */
  const cpuOfMount = async (daemon: number, done: () => Promise<void>): Promise<CpuPerMiB> => {
    const server = serverPids();
    const s0 = cpuMsOf(server);
    const d = followCpu(daemon);
    const d0 = d.ms();
    await done();
    d.stop();
    return { sefs: (d.ms() - d0) / sizeMb, server: (cpuMsOf(server) - s0) / sizeMb };
  };
  const emptyCache = (): void => {
    fs.rmSync(path.join(vault, 'chunks'), { recursive: true, force: true });
    fs.mkdirSync(path.join(vault, 'chunks'), { mode: 0o700 });
  };
  try {
    let daemon = mount();
    sh('bash', ['-c', 'cat "$0" >/dev/null', src]); // the source in the page cache
    log(`s3: sequential write of ${sizeMb} MiB through the mount (--disk-cache-mb ${cacheMb})`);
    let t = performance.now();
    let fsyncMs = 0;
    const writeCpu = await cpuOfMount(daemon, async () => {
      sh('dd', [`if=${src}`, `of=${path.join(mnt, 'f.bin')}`, 'bs=1M', 'conv=fsync', 'status=none']);
      fsyncMs = performance.now() - t;
      await umountAsync(); // waits for the upload queue
    });
    const bucketMs = performance.now() - t;

    emptyCache();
    daemon = mount();
    dropCaches();
    log('s3: cold sequential read (every chunk from the bucket)');
    t = performance.now();
    let readMs = 0;
    const readCpu = await cpuOfMount(daemon, async () => {
      sh('dd', [`if=${path.join(mnt, 'f.bin')}`, 'of=/dev/null', 'bs=1M', 'status=none']);
      readMs = performance.now() - t;
      await umountAsync();
    });

    emptyCache();
    mount();
    dropCaches();
    log(`s3: ${reads} cold 4 KiB random reads`);
    const lat: number[] = [];
    const file = fs.openSync(path.join(mnt, 'f.bin'), 'r');
    const buf = Buffer.alloc(4096);
    for (let i = 0; i < reads; i++) {
      const at = Math.floor(Math.random() * (size / 4096 - 1)) * 4096;
      const s = performance.now();
      fs.readSync(file, buf, 0, 4096, at);
      lat.push(performance.now() - s);
    }
    fs.closeSync(file);
    umount();
    lat.sort((a, b) => a - b);
    const out: S3BenchResult = {
      rawPutMBps: r.put,
      rawGetMBps: r.get,
      writeFsyncMBps: mbps(size, fsyncMs),
      writeToBucketMBps: mbps(size, bucketMs),
      coldReadMBps: mbps(size, readMs),
      randRead4kP50Ms: lat[Math.floor(lat.length / 2)]!,
      randRead4kMeanMs: lat.reduce((a, b) => a + b, 0) / lat.length,
      writeVsRawPut: 0,
      readVsRawGet: 0,
      cpu: { rawPut: r.putCpu, rawGet: r.getCpu, write: writeCpu, read: readCpu },
    };
    out.writeVsRawPut = out.writeToBucketMBps / out.rawPutMBps;
    out.readVsRawGet = out.coldReadMBps / out.rawGetMBps;
    return out;
  } finally {
    try {
      umount();
    } catch {
      // not mounted
    }
    const store = new S3Store({ bucket: BUCKET, prefix: `${prefix}/` });
    const hexes: string[] = [];
    for await (const o of store.objects()) hexes.push(o.hex);
    await store.deleteMany(hexes).catch(() => {});
  }
}

export function s3Table(r: S3BenchResult): string {
  const f = (v: number) => v.toFixed(1);
  return [
    '| S3 (Ceph radosgw, same client, same run) | MB/s or ms |',
    '|---|---|',
    `| raw PUT 1 MiB x${CONCURRENCY} | ${f(r.rawPutMBps)} |`,
    `| raw GET 1 MiB x${CONCURRENCY} | ${f(r.rawGetMBps)} |`,
    `| write through mount, dd conv=fsync (in local cache) | ${f(r.writeFsyncMBps)} |`,
    `| write through mount, until all in bucket (umount) | ${f(r.writeToBucketMBps)} (${(100 * r.writeVsRawPut).toFixed(0)}% of raw PUT) |`,
    `| cold sequential read (all from bucket) | ${f(r.coldReadMBps)} (${(100 * r.readVsRawGet).toFixed(0)}% of raw GET) |`,
    `| cold 4 KiB random read, p50 / mean ms | ${f(r.randRead4kP50Ms)} / ${f(r.randRead4kMeanMs)} |`,
    '',
    '| CPU ms per MiB (sefs side + server) | raw | mount | raw/mount |',
    '|---|---|---|---|',
    cpuRow('PUT / write', r.cpu.rawPut, r.cpu.write),
    cpuRow('GET / cold read', r.cpu.rawGet, r.cpu.read),
  ].join('\n');
}

/** One line of CPU per MiB: raw client + server against daemon + server, and their ratio (what a CPU-bound run's throughput ratio follows). */
function cpuRow(what: string, raw: CpuPerMiB, mount: CpuPerMiB): string {
  const f = (c: CpuPerMiB) => `${c.sefs.toFixed(1)} + ${c.server.toFixed(1)}`;
  return `| ${what} | ${f(raw)} | ${f(mount)} | ${(100 * (raw.sefs + raw.server) / (mount.sefs + mount.server)).toFixed(0)}% |`;
}
