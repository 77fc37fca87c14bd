/**
 * Reading a vault from outside a mount, for fsck, gc and stats: open it (with its codec), walk every node
 * of meta/ by visible path with its decoded entry, count what the entries reference, list the chunk files.
 * Nothing here writes; a vault that is mounted meanwhile may change under the walk (a node removed
 * between listing and reading is skipped).
 */
import type { Stats } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DiskStore } from '../store/disk-store.js';
import type { MetaCodec } from './meta-codec.js';
import { type MetaEntry, decodeEntry } from './meta-entry.js';
import { processAlive } from './process-alive.js';
import { vaultCodec } from './seal.js';
import { type VaultConfig, readVaultConfig, vaultPaths } from './vault-config.js';

export interface OpenedVault {
  root: string;
  config: VaultConfig;
  paths: ReturnType<typeof vaultPaths>;
  codec: MetaCodec;
  store: DiskStore;
}

/** Open an existing vault for reading; a sealed one needs its passphrase (checked here). */
export async function openVault(vault: string, passphrase?: Uint8Array): Promise<OpenedVault> {
  const root = resolve(vault);
  const config = await readVaultConfig(root);
  const codec = vaultCodec(config, passphrase, root);
  const paths = vaultPaths(root);
  return { root, config, paths, codec, store: new DiskStore(paths.chunks, { verify: false, fsync: false }) };
}

/** The pid of the process serving the vault, when one is alive. */
export async function mountedBy(vault: OpenedVault): Promise<number | undefined> {
  const pid = Number((await readFile(vault.paths.pid, 'utf8').catch(() => '')).trim());
  return pid > 0 && processAlive(pid) ? pid : undefined;
}

export interface VaultNode {
  kind: 'dir' | 'file' | 'symlink' | 'other';
  /** Visible path ("/a/b"); a component whose stored name does not decode shows as "?<stored name>". */
  path: string;
  /** Where it is in meta/. */
  disk: string;
  stat: Stats;
  /** A regular file's decoded entry. */
  entry?: MetaEntry;
  /** A symlink's decoded target. */
  target?: string;
  /** Why the node's name, entry or target cannot be read (the vault is damaged there). */
  error?: string;
}

export interface WalkOptions {
  /**
   * Whether to read (and yield) a file or symlink, given its lstat and its directory's; a selected directory
   * selects everything below it (directories are always walked and yielded). Default: everything.
   */
  select?: (stat: Stats, parent: Stats) => boolean;
  /** Nodes read at once (default 32). */
  concurrency?: number;
}

const gone = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');
const reason = (err: unknown): string => (err as Error).message;

/**
 * Every node below meta/ (directories first, then what they hold), depth first. Files and symlinks are
 * read and decoded through the codec; damage is reported on the node, never thrown.
 */
export async function* walkMeta(metaDir: string, codec: MetaCodec, options: WalkOptions = {}): AsyncGenerator<VaultNode> {
  const select = options.select ?? (() => true);
  const width = options.concurrency ?? 32;
  const stack: { disk: string; path: string; stat: Stats; selected: boolean }[] = [
    { disk: metaDir, path: '', stat: await lstat(metaDir), selected: !options.select },
  ];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = (await readdir(dir.disk)).sort();
    } catch (err) {
      if (gone(err)) continue;
      throw err;
    }
    const subdirs: typeof stack = [];
    for (let i = 0; i < names.length; i += width) {
      const read = await Promise.all(names.slice(i, i + width).map((stored) => readNode(dir, stored, codec, select)));
      for (const { node, selected } of read.filter((r) => r !== undefined)) {
        if (node.kind === 'dir') subdirs.push({ disk: node.disk, path: node.path, stat: node.stat, selected });
        else if (!selected) continue;
        yield node;
      }
    }
    stack.push(...subdirs.reverse());
  }
}

async function readNode(
  dir: { disk: string; path: string; stat: Stats; selected: boolean },
  stored: string,
  codec: MetaCodec,
  select: NonNullable<WalkOptions['select']>,
): Promise<{ node: VaultNode; selected: boolean } | undefined> {
  const disk = join(dir.disk, stored);
  const name = codec.decodeName(stored);
  const node: VaultNode = { kind: 'other', path: `${dir.path}/${name ?? `?${stored}`}`, disk, stat: undefined as unknown as Stats };
  const errors: string[] = name === undefined ? ['stored name does not decode'] : [];
  let selected = dir.selected;
  try {
    node.stat = await lstat(disk);
    selected ||= select(node.stat, dir.stat);
    if (node.stat.isDirectory()) node.kind = 'dir';
    else if (node.stat.isFile()) {
      node.kind = 'file';
      if (selected) {
        const bytes = await readFile(disk);
        try {
          node.entry = decodeEntry(codec.openEntry(bytes));
        } catch (err) {
          errors.push(`metadata entry: ${reason(err)}`);
        }
      }
    } else if (node.stat.isSymbolicLink()) {
      node.kind = 'symlink';
      if (selected) {
        const stored = await readlink(disk);
        try {
          node.target = codec.openLink(stored);
        } catch (err) {
          errors.push(`symlink target: ${reason(err)}`);
        }
      }
    }
  } catch (err) {
    if (gone(err)) return undefined; // removed while we walked (a live mount)
    errors.push(reason(err));
  }
  if (errors.length) node.error = errors.join('; ');
  return { node, selected };
}

/** What the entries of a vault hold and reference. */
export interface VaultCensus {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of the files' sizes. */
  logicalBytes: number;
  /** Bytes of files stored inline in their entries (under 3 bytes each). */
  inlineBytes: number;
  /** Every chunk any entry names: hex name -> plaintext size. */
  referenced: Map<string, number>;
  /** Nodes whose name, entry or target cannot be read. */
  damaged: VaultNode[];
}

/** Walk meta/ and count; `into` adds the references to an existing map (gc's rounds). */
export async function census(vault: OpenedVault, options: WalkOptions = {}, into = new Map<string, number>()): Promise<VaultCensus> {
  const c: VaultCensus = { files: 0, directories: 0, symlinks: 0, logicalBytes: 0, inlineBytes: 0, referenced: into, damaged: [] };
  for await (const node of walkMeta(vault.paths.meta, vault.codec, options)) {
    if (node.error) c.damaged.push(node);
    if (node.kind === 'dir') c.directories++;
    else if (node.kind === 'symlink') c.symlinks++;
    else if (node.kind === 'file') {
      c.files++;
      const entry = node.entry;
      if (!entry) continue;
      c.logicalBytes += entry.size;
      if (entry.kind === 'inline') c.inlineBytes += entry.size;
      else for (const chunk of entry.dataMap.chunks) c.referenced.set(chunk.dstHash.toString('hex'), chunk.srcSize);
    }
  }
  return c;
}

export interface ChunkFile {
  hex: string;
  /** Stored bytes. */
  size: number;
  mtimeMs: number;
}

/** Every complete chunk file (temp files of puts in flight are not listed), with its size and mtime. */
export async function* chunkFiles(store: DiskStore, concurrency = 64): AsyncGenerator<ChunkFile> {
  let batch: string[] = [];
  const statAll = async (hexes: string[]) =>
    (
      await Promise.all(
        hexes.map((hex) =>
          lstat(store.pathOf(hex)).then(
            (st): ChunkFile => ({ hex, size: st.size, mtimeMs: st.mtimeMs }),
            (err) => {
              if (gone(err)) return undefined; // removed meanwhile (another gc)
              throw err;
            },
          ),
        ),
      )
    ).filter((f): f is ChunkFile => f !== undefined);
  for await (const name of store.names()) {
    batch.push(name.toString('hex'));
    if (batch.length >= concurrency) {
      yield* await statAll(batch);
      batch = [];
    }
  }
  yield* await statAll(batch);
}
