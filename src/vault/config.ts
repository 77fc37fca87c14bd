/**
 * VAULT/sefs.json: format version and settings. Created by `sefs init` (or the first mount).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Profile, isProfile } from '../core/compression.js';
import { SefsError } from '../core/errors.js';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { createDirId } from './meta-dir.js';
import { readBounded, vaultArea } from './safe-fs.js';

/**
 * 2: sealed vaults wrap a random master key, authenticate their settings (`mac`) and bind names and entries
 * to their directory (seal.ts). An unsealed vault is the same in formats 1 and 2; a sealed vault of format 1
 * is refused with a clear error (seal.ts).
 */
export const VAULT_FORMAT = 2;
/** The profile of a vault made without --profile (core/compression.ts says why). */
export const DEFAULT_VAULT_PROFILE: Profile = 'selective';
const READABLE_FORMATS = [1, 2];

export interface VaultConfig {
  format: number;
  profile: Profile;
  /** Default size of the decrypted-chunk cache of a mount. */
  cacheMb: number;
  /** Where chunks live: the vault's chunks/ directory, or an S3 bucket with chunks/ as its local cache. */
  store: 'disk' | 's3';
  /** store 's3': the bucket and key prefix (s3-store.ts); endpoint and credentials never come from here. */
  s3?: { bucket: string; prefix: string };
  createdAt: string;
  /** Present in a sealed vault: how the passphrase unwraps the master key (seal-keys.ts). */
  seal?: Record<string, unknown>;
  /** A sealed vault's settings MAC over every other field (seal-keys.ts). */
  mac?: string;
}

export const vaultPaths = (root: string) => ({
  config: join(root, 'sefs.json'),
  chunks: join(root, 'chunks'),
  meta: join(root, 'meta'),
  tmp: join(root, 'tmp'),
  /** Hard-link records (hard-links.ts) and the inode numbers reserved so far (inode-numbers.ts). */
  links: join(root, 'links'),
  inodes: join(root, 'inodes'),
  pid: join(root, 'sefs.pid'),
  log: join(root, 'sefs.log'),
});

export class VaultError extends SefsError {
  constructor(message: string) {
    super('VaultError', message);
  }
}

export async function readVaultConfig(root: string): Promise<VaultConfig> {
  let text: string;
  try {
    text = await readFile(vaultPaths(root).config, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VaultError(`${root} is not a sefs vault (no sefs.json; run sefs init)`);
    throw err;
  }
  let config: VaultConfig;
  try {
    config = JSON.parse(text) as VaultConfig;
  } catch {
    throw new VaultError(`${vaultPaths(root).config} is not valid JSON`);
  }
  if (!READABLE_FORMATS.includes(config.format)) throw new VaultError(`vault format ${config.format} is not supported (this sefs reads ${READABLE_FORMATS.join(' and ')})`);
  if (config.store === 's3' && (typeof config.s3?.bucket !== 'string' || typeof config.s3.prefix !== 'string')) throw new VaultError('sefs.json: store s3 without its bucket');
  if (!isProfile(config.profile)) throw new VaultError(`unknown profile ${String(config.profile)} in sefs.json`);
  return config;
}

export async function writeVaultConfig(root: string, config: VaultConfig): Promise<void> {
  await writeFileAtomic(vaultPaths(root).config, Buffer.from(JSON.stringify(config, null, 2) + '\n'), 0o600);
}

/** The pid in the vault's pid file (0 when there is none or it is unreadable). */
export async function readPid(root: string): Promise<number> {
  // Bounded and never through a link (safe-fs.ts): a planted link to /dev/zero or a FIFO reads as no pid.
  const bytes = await readBounded(vaultPaths(root).pid, vaultArea(root), 64).catch(() => Buffer.alloc(0));
  return Number(bytes.toString('utf8').trim()) || 0;
}

export interface InitOptions {
  profile?: Profile;
  cacheMb?: number;
  /** Chunks in this bucket (`sefs init --chunks s3://...`). */
  s3?: { bucket: string; prefix: string };
  /** A new sealed vault's seal section, and how to sign its settings (seal.ts createSeal). */
  seal?: { params: object; sign(config: object): string };
}

/** Create a vault (idempotent on the directories; refuses to overwrite an existing sefs.json). */
export async function initVault(root: string, options: InitOptions = {}): Promise<VaultConfig> {
  const paths = vaultPaths(root);
  await mkdir(root, { recursive: true, mode: 0o700 });
  try {
    return await readVaultConfig(root);
  } catch (err) {
    if (!(err instanceof VaultError) || !/no sefs.json/.test(err.message)) throw err;
  }
  await mkdir(paths.chunks, { recursive: true, mode: 0o700 });
  await mkdir(paths.meta, { recursive: true, mode: 0o700 });
  await mkdir(paths.tmp, { recursive: true, mode: 0o700 });
  // A sealed vault's meta/ has its directory id from the start: it also marks meta/ as sealed (seal.ts).
  if (options.seal) {
    try {
      createDirId(paths.meta);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const config: VaultConfig = {
    format: VAULT_FORMAT,
    profile: options.profile ?? DEFAULT_VAULT_PROFILE,
    cacheMb: options.cacheMb ?? 128,
    store: options.s3 ? 's3' : 'disk',
    ...(options.s3 ? { s3: options.s3 } : {}),
    createdAt: new Date().toISOString(),
    ...(options.seal ? { seal: options.seal.params as Record<string, unknown> } : {}),
  };
  if (options.seal) config.mac = options.seal.sign(config);
  await writeVaultConfig(root, config);
  return config;
}
