/**
 * Vaults for the fsck/gc/stats and seal tests and scripts/trust-bench.ts.
 *
 * VaultBuilder builds a vault without a mount, fast: each file is self-encrypted in one piece (src/core), its chunks put in
 * the vault's DiskStore and its entry written where MetaTree puts it, through the vault's codec. No fsync:
 * for tests and benchmarks, not for data anyone keeps.
 * `sefs` runs the built CLI without blocking the event loop; `mountCli`/`unmountCli` serve a vault through it.
 */
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { encryptBytes } from '../../src/core/encrypt.js';
import { MIN_ENCRYPTABLE_BYTES } from '../../src/core/constants.js';
import type { MetaCodec } from '../../src/vault/meta-codec.js';
import type { MetaEntry } from '../../src/vault/meta-entry.js';
import { MetaTree } from '../../src/vault/meta-tree.js';
import { InodeNumbers } from '../../src/vault/inode-numbers.js';
import { vaultPaths } from '../../src/vault/config.js';
import { DiskStore } from '../../src/store/disk-store.js';
import { CLI } from './build.js';
import { isMounted } from '../../src/fs/stale-mount.js';

/** A file's content, or a symlink's target. */
export type Node = Buffer | { symlink: string };

export class VaultBuilder {
  readonly meta: MetaTree;
  private readonly inodes: InodeNumbers;
  readonly store: DiskStore;
  private readonly dirs = new Set<string>();

  constructor(root: string, codec: MetaCodec) {
    const paths = vaultPaths(root);
    this.meta = new MetaTree(paths.meta, paths.tmp, codec);
    this.inodes = new InodeNumbers(paths.inodes);
    this.store = new DiskStore(paths.chunks, { fsync: false });
  }

  /** Write a file (or symlink) at a visible path such as "/a/b.txt"; parent directories are made. Returns its chunk names. */
  async add(path: string, node: Node): Promise<string[]> {
    await this.dir(dirname(path));
    if (!Buffer.isBuffer(node)) {
      await this.meta.makeSymlink(node.symlink, path, undefined, () => this.inodes.allocate());
      return [];
    }
    let entry: MetaEntry;
    if (node.length < MIN_ENCRYPTABLE_BYTES) entry = { kind: 'inline', size: node.length, data: node };
    else {
      const { dataMap, chunks } = encryptBytes(node, 'fast');
      for (const c of chunks) await this.store.put(c.name, c.content);
      entry = { kind: 'map', size: node.length, dataMap };
    }
    const staged = await this.meta.stageEntry(entry, { mode: 0o100644 }, false, path);
    await staged.placeAt(path);
    return entry.kind === 'map' ? entry.dataMap.chunks.map((c) => c.dstHash.toString('hex')) : [];
  }

  /** An empty directory (and its parents), made as the mount makes it (a sealed one gets its id). */
  async dir(path: string): Promise<void> {
    if (path === '/' || path === '' || this.dirs.has(path)) return;
    await this.dir(dirname(path));
    await this.meta.makeDir(path, 0o755).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    this.dirs.add(path);
  }

  async addAll(files: Record<string, Node>): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const [path, node] of Object.entries(files)) out[path] = await this.add(path, node);
    return out;
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built `sefs` (call ensureBuiltCli() once first). */
export function sefs(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `sefs mount VAULT MNT ...` as a daemon; fails the test unless it mounted. */
export async function mountCli(vault: string, mnt: string, ...extra: string[]): Promise<void> {
  const r = await sefs('mount', vault, mnt, ...extra);
  if (r.code !== 0 || !(await isMounted(mnt))) throw new Error(`sefs mount failed (${r.code}): ${r.stderr}${r.stdout}`);
}

/** `sefs umount MNT`, then fusermount -uz if it is still mounted (after a failure); never throws. */
export async function unmountCli(mnt: string): Promise<void> {
  await sefs('umount', mnt);
  if (await isMounted(mnt)) await new Promise((r) => execFile('fusermount', ['-uz', mnt], r));
}
