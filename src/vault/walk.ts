/**
 * Reading a vault from outside a mount, for fsck, gc and stats: open it (with its codec), walk every node
 * of meta/ by visible path with its decoded entry, count what the entries reference, list the chunk files.
 * Nothing here writes; a vault that is mounted meanwhile may change under the walk (a node removed
 * between listing and reading is skipped).
 *
 * The walk and the listing use synchronous calls: they run in the command's own process (never in a
 * mount's event loop), and on small files in the page cache they cost a fifth of the async calls' round
 * trips through libuv's thread pool (10,000 entries: 0.3 s against 1.3-2.1 s, measured on 2 cores).
 */
import { type Stats, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DiskStore } from '../store/disk-store.js';
import { S3Store } from '../store/s3-store.js';
import type { MetaCodec } from './meta-codec.js';
import { NO_DIR_ID, isHousekeeping, readDirId, sealedNameOf } from './meta-dir.js';
import { MAX_STORED_ENTRY, type MetaEntry, decodeStoredEntry } from './meta-entry.js';
import { UnsafeVaultNode, areaOf, atNodeSync, inDirSync, readBoundedSync } from './safe-fs.js';
import { processAlive } from './process-alive.js';
import { vaultCodec } from './seal.js';
import { openAtPlace, recordIno, recordPlace } from './hard-links.js';
import { type VaultConfig, readPid, readVaultConfig, vaultPaths } from './config.js';

export interface OpenedVault {
  root: string;
  config: VaultConfig;
  paths: ReturnType<typeof vaultPaths>;
  codec: MetaCodec;
  /** The chunk files (an S3 vault's local cache). */
  store: DiskStore;
  /** An S3 vault's bucket. */
  remote?: S3Store;
}

/** Open an existing vault for reading; a sealed one needs its passphrase (checked here). */
export async function openVault(vault: string, passphrase?: Uint8Array): Promise<OpenedVault> {
  const root = resolve(vault);
  const config = await readVaultConfig(root);
  const codec = await vaultCodec(config, passphrase, root);
  const paths = vaultPaths(root);
  const remote = config.store === 's3' ? new S3Store(config.s3!) : undefined;
  return { root, config, paths, codec, store: new DiskStore(paths.chunks, { verify: false, fsync: false }), ...(remote ? { remote } : {}) };
}

/** The pid of the process serving the vault, when one is alive. */
export async function mountedBy(vault: OpenedVault): Promise<number | undefined> {
  const pid = await readPid(vault.root);
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
}

const gone = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');
const reason = (err: unknown): string => (err as Error).message;

/**
 * Run `fn` on directory `dir`'s names and a way to reach each of them through the checked directory
 * (safe-fs.ts: a planted link is never walked through); a directory removed meanwhile (a live mount) is empty.
 */
function* inDir<T>(dir: string, area: string, fn: (names: string[], at: (name: string) => string, self: string) => Iterable<T>): Generator<T> {
  try {
    yield* inDirSync(dir, area, (at, self) => fn(readdirSync(self), at, self));
  } catch (err) {
    if (!gone(err)) throw err;
  }
}

interface DirToWalk {
  disk: string;
  path: string;
  stat: Stats;
  selected: boolean;
  /** A sealed directory's id (meta-dir.ts); undefined when it cannot be read (its names then do not decode). */
  id: Uint8Array | undefined;
}

/** A directory's id, read only (a walk writes nothing); damage is the reason, as a string. */
function dirIdOf(disk: string, area: string, codec: MetaCodec): Uint8Array | string {
  if (!codec.sealed) return NO_DIR_ID;
  try {
    return atNodeSync(disk, area, ['dir'], (self) => readDirId(self, false));
  } catch (err) {
    return reason(err);
  }
}

/**
 * Every node below meta/ (each directory before what it holds), depth first, in name order. Files and
 * symlinks are read and decoded through the codec; damage is reported on the node, never thrown.
 */
export function* walkMeta(metaDir: string, codec: MetaCodec, options: WalkOptions = {}): Generator<VaultNode> {
  const select = options.select ?? (() => true);
  const area = areaOf(metaDir);
  const top = lstatSync(metaDir);
  if (!top.isDirectory()) throw new UnsafeVaultNode(metaDir, 'is not a directory');
  const rootId = dirIdOf(area, area, codec);
  // From meta/'s real path: a node's path may be too long for the kernel, and safe-fs walks those from there.
  const stack: DirToWalk[] = [{ disk: area, path: '', stat: top, selected: !options.select, id: typeof rootId === 'string' ? undefined : rootId }];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const subdirs: DirToWalk[] = [];
    yield* inDir(dir.disk, area, function* (names, at, self) {
      for (const stored of names.sort()) {
        if (codec.sealed && isHousekeeping(stored)) continue;
        const read = readNode(dir, self, stored, at(stored), area, codec, select);
        if (!read) continue;
        const { node, selected } = read;
        if (node.kind === 'dir') {
          const id = dirIdOf(node.disk, area, codec);
          if (typeof id === 'string') node.error = node.error ? `${node.error}; ${id}` : id;
          subdirs.push({ disk: node.disk, path: node.path, stat: node.stat, selected, id: typeof id === 'string' ? undefined : id });
        } else if (!selected) continue;
        yield node;
      }
    });
    stack.push(...subdirs.reverse());
  }
}

/** `self`: the directory through its descriptor; `via`: the node's path through it. */
function readNode(
  dir: DirToWalk,
  self: string,
  stored: string,
  via: string,
  area: string,
  codec: MetaCodec,
  select: NonNullable<WalkOptions['select']>,
): { node: VaultNode; selected: boolean } | undefined {
  const disk = join(dir.disk, stored);
  const sealedName = codec.sealed ? sealedNameOf(self, stored) : stored;
  const name = sealedName === undefined || dir.id === undefined ? undefined : codec.decodeName(sealedName, dir.id);
  const node: VaultNode = { kind: 'other', path: `${dir.path}/${name ?? `?${stored}`}`, disk, stat: undefined as unknown as Stats };
  const errors: string[] = name === undefined ? [sealedName === undefined ? 'long name has no valid side file' : 'stored name does not decode in this directory (damaged, or moved here from another directory)'] : [];
  // Entries and targets are bound to their place: with an unreadable name they cannot be opened either.
  const place = { dir: dir.id ?? NO_DIR_ID, name: name ?? basename(disk) };
  let selected = dir.selected;
  try {
    node.stat = lstatSync(via);
    selected ||= select(node.stat, dir.stat);
    if (node.stat.isDirectory()) node.kind = 'dir';
    else if (node.stat.isFile()) {
      node.kind = 'file';
      if (selected) {
        // Without moving its atime: it is the visible file's, and a walk at every mount would set it to now.
        const bytes = readBoundedSync(via, area, MAX_STORED_ENTRY, { noAtime: true });
        try {
          node.entry = decodeStoredEntry(bytes, openAtPlace(codec, place));
        } catch (err) {
          errors.push(`metadata entry: ${reason(err)}`);
        }
      }
    } else if (node.stat.isSymbolicLink()) {
      node.kind = 'symlink';
      if (selected) {
        const target = readlinkSync(via);
        try {
          node.target = codec.openLink(target, place).target;
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

/**
 * Every hard-link record in links/ beside meta/ (hard-links.ts), as file nodes named "links/<hex>" holding the
 * content their stubs' names share; damage is reported on the node.
 */
export function* walkRecords(metaDir: string, codec: MetaCodec): Generator<VaultNode & { ino: number }> {
  const linksDir = join(dirname(metaDir), 'links');
  const area = areaOf(linksDir);
  yield* inDir(linksDir, area, function* (names, at) {
    for (const name of names.sort()) {
      const ino = recordIno(name);
      if (ino === undefined) continue;
      const node: VaultNode & { ino: number } = { kind: 'file', path: `links/${name}`, disk: join(linksDir, name), stat: undefined as unknown as Stats, ino };
      try {
        node.stat = lstatSync(at(name));
        const bytes = readBoundedSync(at(name), area, MAX_STORED_ENTRY, { noAtime: true });
        node.entry = decodeStoredEntry(bytes, { openEntry: (b) => codec.openEntry(b, recordPlace(ino)) });
      } catch (err) {
        if (gone(err)) continue;
        node.error = `hard-link record: ${reason(err)}`;
      }
      yield node;
    }
  });
}

/** The hard-link record a node of meta/ is a stub for. */
export const stubOf = (node: VaultNode): number | undefined => node.entry?.node?.link;

/** What the entries of a vault hold and reference. */
export interface VaultCensus {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of the files' sizes. */
  logicalBytes: number;
  /** Bytes of files stored in their entries (inline under 3 bytes, or packed chunks: meta-entry.ts). */
  inlineBytes: number;
  /** Every chunk any entry names: hex name -> plaintext size. */
  referenced: Map<string, number>;
  /** Nodes whose name, entry or target cannot be read. */
  damaged: VaultNode[];
}

/** Walk meta/ and count; `into` adds the references to an existing map (gc's rounds). */
export function census(vault: OpenedVault, options: WalkOptions = {}, into = new Map<string, number>()): VaultCensus {
  const c: VaultCensus = { files: 0, directories: 0, symlinks: 0, logicalBytes: 0, inlineBytes: 0, referenced: into, damaged: [] };
  const count = (entry: MetaEntry): void => {
    c.logicalBytes += entry.size;
    if (entry.kind === 'inline' || entry.packed) c.inlineBytes += entry.size;
    else for (const chunk of entry.dataMap.chunks) c.referenced.set(chunk.dstHash.toString('hex'), chunk.srcSize);
  };
  for (const node of walkMeta(vault.paths.meta, vault.codec, options)) {
    if (node.error) c.damaged.push(node);
    if (node.kind === 'dir') c.directories++;
    else if (node.kind === 'symlink') c.symlinks++;
    else if (node.kind === 'file') {
      c.files++;
      if (node.entry) count(node.entry);
    }
  }
  // Records count whole, whatever names them: a record is kept (and its chunks with it) until a mount removes it.
  for (const record of walkRecords(vault.paths.meta, vault.codec)) {
    if (record.error) c.damaged.push(record);
    else if (record.entry) count(record.entry);
  }
  return c;
}

export interface ChunkFile {
  hex: string;
  /** Stored bytes. */
  size: number;
  mtimeMs: number;
  /** Permission bits (an S3 vault's cache marks uploaded chunks read-only: cached-store.ts). */
  mode: number;
}

const CHUNK_NAME = /^[0-9a-f]{64}$/;

/** Every complete chunk file under chunks/ab/cd/ (not the temp files of puts in flight), with its size and mtime. */
export function* chunkFiles(store: DiskStore): Generator<ChunkFile> {
  const { area } = store;
  const names = (dir: string): string[] => [...inDir(dir, area, (names) => names)];
  for (const a of names(store.root)) {
    for (const b of names(join(store.root, a))) {
      yield* inDir(join(store.root, a, b), area, function* (hexes, at) {
        for (const hex of hexes) {
          if (!CHUNK_NAME.test(hex)) continue;
          try {
            const st = lstatSync(at(hex));
            yield { hex, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 };
          } catch (err) {
            if (!gone(err)) throw err; // else removed meanwhile (another gc)
          }
        }
      });
    }
  }
}

export interface VaultChunk extends ChunkFile {
  /** A chunk file in chunks/ (an S3 vault's cache). */
  local: boolean;
  /** An object in an S3 vault's bucket. */
  inBucket: boolean;
}

/**
 * Every chunk of the vault: its chunk files, and for an S3 vault the bucket's objects as well (one record per
 * chunk; the latest time of its copies, so a chunk written again lately counts as young).
 */
export async function* vaultChunks(vault: OpenedVault): AsyncGenerator<VaultChunk> {
  if (!vault.remote) {
    for (const f of chunkFiles(vault.store)) yield { ...f, local: true, inBucket: false };
    return;
  }
  const local = new Map<string, ChunkFile>();
  for (const f of chunkFiles(vault.store)) local.set(f.hex, f);
  for await (const o of vault.remote.objects()) {
    const f = local.get(o.hex);
    local.delete(o.hex);
    yield { hex: o.hex, size: o.size, mtimeMs: Math.max(o.mtimeMs, f?.mtimeMs ?? 0), mode: f?.mode ?? 0o400, local: f !== undefined, inBucket: true };
  }
  for (const f of local.values()) yield { ...f, local: true, inBucket: false };
}
