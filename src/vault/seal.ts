/**
 * Sealed metadata (vault format 2): a MetaCodec that encrypts what meta/ holds, so that meta/ and chunks/
 * together can be kept on storage nobody trusts. Keys: seal-keys.ts (a random master key wrapped by the
 * passphrase, settings authenticated). Every sealed thing is bound to its place:
 *   - names: AES-SIV (deterministic: a lookup must find the stored name from the visible one) with the id of
 *     their directory as associated data (meta-dir.ts), so equal names in two directories differ and a node
 *     moved to another directory has no readable name there; base64url; long ones stored by hash (meta-dir.ts).
 *   - entries (size + DataMap or inline bytes): XChaCha20-Poly1305 with a random 24-byte nonce per write,
 *     associated data = directory id + visible name, stored as u8 version | nonce | ciphertext + tag.
 *     Two entries swapped, or one moved to another name or directory, do not open: EIO, and fsck names them.
 *   - symlink targets: AES-SIV with the directory id and the link's name as associated data.
 * What this hides and what it does not: native-notes/threat-model.md.
 */
import { aessiv } from '@noble/ciphers/aes.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from 'node:crypto';
import { type Dirent, closeSync, constants as fsc, fstatSync, openSync, readSync, readdirSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidDataMap } from '../core/errors.js';
import { DEFAULT_SCRYPT, type ScryptCost } from './kdf.js';
import { type LinkNode, type MetaCodec, type Place, plainCodec } from './meta-codec.js';
import { DIR_ID_FILE, DIR_ID_BYTES } from './meta-dir.js';
import {
  SealError,
  type SealParams,
  type SubKeys,
  WrongPassphrase,
  newMasterKey,
  parseSealParams,
  settingsAuthentic,
  settingsMac,
  subKeys,
  unwrapMasterKey,
  wrapMasterKey,
} from './seal-keys.js';
import { type VaultConfig, readVaultConfig, vaultPaths, writeVaultConfig } from './config.js';

export { SealError, WrongPassphrase };
export { DEFAULT_SCRYPT };

const ENTRY_VERSION = 2;
const NONCE = 24;
const TAG = 16;
const NAME_AD = Buffer.from('sefs name v2');
const LINK_AD = Buffer.from('sefs link v2');
const ENTRY_AD = Buffer.from('sefs entry v2');
/**
 * A sealed symlink's text is its target, then NUL and its inode number: no target holds a NUL, and a sefs
 * that predates the number hands the kernel a C string that ends at the NUL, the right target.
 */
const LINK_INO_MARK = '\0';
/** Sealed names and targets are base64url of an AES-SIV output (16-byte tag + text). */
const SEALED_RE = /^[A-Za-z0-9_-]{22,}$/;
const CACHE_MAX = 50_000;
/** How every unsealed entry starts (meta-entry.ts); a sealed one starts with its version byte. */
const UNSEALED_MAGIC = Buffer.from('SEFS');

/** A bounded memo: name sealing is deterministic, and every path lookup seals every component. */
function memo<V>(): { get(k: string, make: () => V): V } {
  const map = new Map<string, V>();
  return {
    get(k, make) {
      let v = map.get(k);
      if (v === undefined) {
        v = make();
        if (map.size >= CACHE_MAX) map.clear();
        map.set(k, v);
      }
      return v;
    },
  };
}

const dirKey = (dir: Uint8Array, text: string): string => `${Buffer.from(dir).toString('hex')}/${text}`;

class SealedCodec implements MetaCodec {
  readonly sealed = true;
  private readonly encoded = memo<string>();
  private readonly decoded = memo<string | null>();

  constructor(private readonly keys: Pick<SubKeys, 'entry' | 'name'>) {}

  encodeName(name: string, dir: Uint8Array): string {
    return this.encoded.get(dirKey(dir, name), () => this.sivEncode(name, NAME_AD, dir));
  }

  decodeName(sealed: string, dir: Uint8Array): string | undefined {
    return this.decoded.get(dirKey(dir, sealed), () => this.sivDecode(sealed, NAME_AD, dir) ?? null) ?? undefined;
  }

  sealEntry(bytes: Buffer, place: Place): Buffer {
    const nonce = randomBytes(NONCE);
    const sealed = xchacha20poly1305(this.keys.entry, nonce, entryAd(place)).encrypt(bytes);
    return Buffer.concat([Buffer.from([ENTRY_VERSION]), nonce, sealed]);
  }

  openEntry(bytes: Buffer, place: Place): Buffer {
    if (bytes.length < 1 + NONCE + TAG || bytes[0] !== ENTRY_VERSION) throw new InvalidDataMap('not a sealed metadata entry of this format');
    try {
      const plain = xchacha20poly1305(this.keys.entry, bytes.subarray(1, 1 + NONCE), entryAd(place)).decrypt(bytes.subarray(1 + NONCE));
      return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    } catch {
      throw new InvalidDataMap('sealed metadata entry does not authenticate here (damaged, from another vault, or moved from another name or directory)');
    }
  }

  sealLink(target: string, place: Place, ino?: number): string {
    const text = ino === undefined ? target : `${target}${LINK_INO_MARK}${ino}`;
    return this.sivEncode(text, LINK_AD, place.dir, Buffer.from(place.name, 'utf8'));
  }

  openLink(stored: string, place: Place): LinkNode {
    const text = this.sivDecode(stored, LINK_AD, place.dir, Buffer.from(place.name, 'utf8'));
    if (text === undefined) throw new InvalidDataMap('sealed symlink target does not authenticate here (damaged, or moved from another name or directory)');
    const mark = text.indexOf(LINK_INO_MARK);
    if (mark < 0) return { target: text };
    const ino = Number(text.slice(mark + 1));
    if (!Number.isSafeInteger(ino)) throw new InvalidDataMap('sealed symlink carries a damaged inode number');
    return { target: text.slice(0, mark), ino };
  }

  private sivEncode(text: string, ...ad: Uint8Array[]): string {
    return Buffer.from(aessiv(this.keys.name, ...ad).encrypt(Buffer.from(text, 'utf8'))).toString('base64url');
  }

  private sivDecode(stored: string, ...ad: Uint8Array[]): string | undefined {
    if (!SEALED_RE.test(stored)) return undefined;
    try {
      return Buffer.from(aessiv(this.keys.name, ...ad).decrypt(Buffer.from(stored, 'base64url'))).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

const entryAd = (place: Place): Buffer => Buffer.concat([ENTRY_AD, place.dir, Buffer.from(place.name, 'utf8')]);

/** A codec straight from a master key (tests; the vault's own comes from openSeal). */
export function codecForMaster(master: Uint8Array): MetaCodec {
  return new SealedCodec(subKeys(master));
}

/** What a new sealed vault needs: its seal section, how to sign its settings, and its codec. */
export interface NewSeal {
  params: SealParams;
  /** The settings MAC of a complete sefs.json. */
  sign(config: object): string;
  codec: MetaCodec;
}

/** A new sealed vault's keys: a random master key wrapped by the passphrase. */
export async function createSeal(passphrase: Uint8Array, cost: Partial<ScryptCost> = {}): Promise<NewSeal> {
  const { params, master } = await newMasterKey(passphrase, { ...DEFAULT_SCRYPT, ...cost });
  const keys = subKeys(master);
  master.fill(0);
  return { params, sign: (config) => settingsMac(keys.settings, config), codec: new SealedCodec(keys) };
}

/** Format 1 sealed vaults derived their keys straight from the passphrase and bound nothing to its place. */
function refuseOldSeal(config: VaultConfig, vault: string): void {
  if (config.format < 2) {
    throw new SealError(`${vault} is a sealed vault of format ${config.format}, which this sefs no longer opens: mount it with the sefs that made it and copy its files into a new vault (sefs init --passphrase-file)`);
  }
}

/** The master key of a sealed vault whose settings authenticate; the caller zero-fills it. */
async function unlock(config: VaultConfig, passphrase: Uint8Array, vault: string): Promise<Buffer> {
  refuseOldSeal(config, vault);
  const params = parseSealParams(config.seal);
  const master = await unwrapMasterKey(params, passphrase);
  if (!settingsAuthentic(subKeys(master).settings, config)) {
    master.fill(0);
    throw new SealError(`the settings in ${vault}/sefs.json were altered (they do not authenticate): refusing to use them`);
  }
  return master;
}

/** The codec of a sealed vault: passphrase and settings checked before anything is read or written. */
export async function openSeal(config: VaultConfig, passphrase: Uint8Array, vault: string): Promise<MetaCodec> {
  const master = await unlock(config, passphrase, vault);
  const codec = codecForMaster(master);
  master.fill(0);
  return codec;
}

/**
 * The first bytes of every file directly in meta/ and the ids of its directories: a vault that was sealed
 * has them however sefs.json was rewritten (an entry sealed starts with its version byte, an unsealed one with
 * "SEFS"; an unsealed vault has no directory ids). Bounded: the root and the directories in it.
 */
function sealedTrace(metaDir: string): string | undefined {
  let nodes: Dirent[];
  try {
    nodes = readdirSync(metaDir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  /**
   * The first bytes of a regular file (never through a symlink), without moving its atime: an entry file's
   * atime is the visible file's (O_NOATIME needs the owner or CAP_FOWNER; without, the vault is ours anyway).
   */
  const firstBytes = (file: string, n: number): Buffer | undefined => {
    const flags = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;
    let fd: number;
    try {
      fd = openSync(file, flags | fsc.O_NOATIME);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
      try {
        fd = openSync(file, flags);
      } catch {
        return undefined;
      }
    }
    try {
      if (!fstatSync(fd).isFile()) return undefined;
      const buf = Buffer.alloc(n + 1);
      return buf.subarray(0, readSync(fd, buf, 0, n + 1, 0));
    } finally {
      closeSync(fd);
    }
  };
  const isDirId = (file: string) => firstBytes(file, DIR_ID_BYTES)?.length === DIR_ID_BYTES;
  if (isDirId(join(metaDir, DIR_ID_FILE))) return `${DIR_ID_FILE} (a sealed directory id)`;
  for (const node of nodes.slice(0, 1000)) {
    const path = join(metaDir, node.name);
    if (node.isDirectory() && isDirId(join(path, DIR_ID_FILE))) return `${node.name}/${DIR_ID_FILE} (a sealed directory id)`;
    const head = node.isFile() ? firstBytes(path, 4) : undefined;
    if (head && head.length > 0 && head[0] !== 0 && !head.subarray(0, 4).equals(UNSEALED_MAGIC)) return `${node.name} (a sealed entry)`;
  }
  return undefined;
}

/**
 * Refuse to serve or read meta/ unsealed when it holds sealed metadata: an attacker who deletes the seal
 * section of sefs.json must not get new names and DataMaps written in the clear.
 */
export function assertNotSealed(metaDir: string, vault: string): void {
  const trace = sealedTrace(metaDir);
  if (trace) {
    throw new SealError(`${vault}/meta holds sealed metadata (${trace}) but sefs.json has no seal: sefs.json was altered or replaced; refusing to use the vault unsealed`);
  }
}

/**
 * The codec a vault is served or read with: plain for an unsealed vault, sealed (passphrase and settings
 * checked) for a sealed one. A sealed vault without a passphrase, or a passphrase for an unsealed vault, is
 * an error. The passphrase's bytes are zero-filled once used.
 */
export async function vaultCodec(config: VaultConfig, passphrase: Uint8Array | undefined, vault: string): Promise<MetaCodec> {
  try {
    if (!config.seal) {
      assertNotSealed(vaultPaths(vault).meta, vault);
      if (passphrase) throw new SealError(`vault ${vault} is not sealed: drop --passphrase-file`);
      return plainCodec;
    }
    if (!passphrase) throw new SealError(`vault ${vault} is sealed: give its passphrase with --passphrase-file F`);
    return await openSeal(config, passphrase, vault);
  } finally {
    passphrase?.fill(0);
  }
}

/**
 * sefs passwd: wrap the same master key under a new passphrase (new salt, optionally a new cost) and sign
 * the settings again; sefs.json is replaced atomically and durably, and nothing else is touched. Both
 * passphrases are zero-filled once used.
 */
export async function changePassphrase(vault: string, oldPassphrase: Uint8Array, newPassphrase: Uint8Array, cost?: ScryptCost): Promise<void> {
  try {
    const config = await readVaultConfig(vault);
    if (!config.seal) throw new SealError(`vault ${vault} is not sealed: it has no passphrase to change`);
    const master = await unlock(config, oldPassphrase, vault);
    try {
      const old = parseSealParams(config.seal);
      const params = await wrapMasterKey(master, newPassphrase, cost ?? { logN: old.logN, r: old.r, p: old.p });
      const next: VaultConfig = { ...config, seal: params as unknown as Record<string, unknown>, mac: undefined };
      next.mac = settingsMac(subKeys(master).settings, next);
      await writeVaultConfig(vault, next);
    } finally {
      master.fill(0);
    }
  } finally {
    oldPassphrase.fill(0);
    newPassphrase.fill(0);
  }
}
