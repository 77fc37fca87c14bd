/**
 * Sealed metadata: a MetaCodec that encrypts what meta/ holds, so that meta/ and chunks/ together can be
 * kept on storage nobody trusts.
 *   - key: scrypt (memory-hard) of the passphrase with a random salt; parameters, salt and a key check value
 *     live in sefs.json under `seal`. The check value makes a wrong passphrase one clear error before
 *     anything is read or written. Two keys are derived from it with HKDF-SHA256.
 *   - entries (size + DataMap or inline bytes): XChaCha20-Poly1305 with a random 24-byte nonce per write,
 *     stored as u8 version | nonce | ciphertext + tag.
 *   - names and symlink targets: AES-SIV (deterministic: a lookup must find the stored name from the visible
 *     one), encoded base64url; names whose stored form exceeds 255 bytes are refused with ENAMETOOLONG.
 * What this hides and what it does not: native-notes/threat-model.md.
 */
import { aessiv } from '@noble/ciphers/aes.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { InvalidDataMap, SefsError } from '../core/errors.js';
import { posixError } from './posix-error.js';
import { type MetaCodec, plainCodec } from './meta-codec.js';
import { NAME_MAX } from './names.js';
import { type VaultConfig, readVaultConfig, vaultPaths } from './config.js';

/** What sefs.json keeps under `seal`. */
export interface SealParams {
  version: 1;
  kdf: 'scrypt';
  /** scrypt N = 2^logN (memory 128 * r * N bytes). */
  logN: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** hex: HKDF(key, "sefs key check"), to tell a wrong passphrase before use. */
  check: string;
  entries: 'xchacha20-poly1305';
  names: 'aes-siv-base64url';
}

/** 128 MiB of memory, about a second on one core. */
export const DEFAULT_LOG_N = 17;
/** Bounds on the stored parameters: a hostile sefs.json must not make us allocate gigabytes. */
const LOG_N_RANGE = [10, 22] as const;
const ENTRY_VERSION = 1;
const NONCE = 24;
const TAG = 16;
const NAME_AAD = Buffer.from('sefs name');
const LINK_AAD = Buffer.from('sefs link');
const ENTRY_AAD = Buffer.from('sefs entry v1');
/** Stored names and targets are base64url of an AES-SIV output (16-byte tag + text). */
const STORED_RE = /^[A-Za-z0-9_-]{22,}$/;
const CACHE_MAX = 50_000;

export class WrongPassphrase extends SefsError {
  constructor() {
    super('WrongPassphrase', 'wrong passphrase for this vault (nothing was read or written)');
  }
}

export class SealError extends SefsError {
  constructor(message: string) {
    super('SealError', message);
  }
}

interface Keys {
  entry: Uint8Array;
  /** AES-SIV with two AES-256 keys. */
  name: Uint8Array;
  check: Buffer;
}

function deriveKeys(passphrase: Uint8Array, params: SealParams): Keys {
  const salt = Buffer.from(params.salt, 'base64');
  const N = 2 ** params.logN;
  const master = scrypt(passphrase, salt, { N, r: params.r, p: params.p, dkLen: 32, maxmem: 128 * params.r * N * params.p + 1024 * 1024 });
  const derive = (info: string, length: number) => hkdf(sha256, master, salt, Buffer.from(info), length);
  const keys = { entry: derive('sefs entry key', 32), name: derive('sefs name key', 64), check: Buffer.from(derive('sefs key check', 16)) };
  master.fill(0);
  return keys;
}

function checkParams(raw: Record<string, unknown>): SealParams {
  const p = raw as Partial<SealParams>;
  const int = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  if (
    p.version !== 1 ||
    p.kdf !== 'scrypt' ||
    !int(p.logN, LOG_N_RANGE[0], LOG_N_RANGE[1]) ||
    !int(p.r, 1, 32) ||
    !int(p.p, 1, 16) ||
    typeof p.salt !== 'string' ||
    Buffer.from(p.salt, 'base64').length < 16 ||
    typeof p.check !== 'string' ||
    !/^[0-9a-f]{32}$/.test(p.check) ||
    p.entries !== 'xchacha20-poly1305' ||
    p.names !== 'aes-siv-base64url'
  ) {
    throw new SealError('the seal parameters in sefs.json are missing or not supported');
  }
  return p as SealParams;
}

/** A bounded memo: name encryption is deterministic, and every path lookup encodes every component. */
function memo<K, V>(): { get(k: K, make: () => V): V } {
  const map = new Map<K, V>();
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

class SealedCodec implements MetaCodec {
  readonly sealed = true;
  private readonly encoded = memo<string, string>();
  private readonly decoded = memo<string, string | null>();

  constructor(private readonly keys: Keys) {}

  encodeName(name: string): string {
    const stored = this.encoded.get(name, () => this.sivEncode(name, NAME_AAD));
    if (stored.length > NAME_MAX) throw posixError('ENAMETOOLONG', `name of ${Buffer.byteLength(name)} bytes is too long for a sealed vault`);
    return stored;
  }

  decodeName(stored: string): string | undefined {
    return this.decoded.get(stored, () => this.sivDecode(stored, NAME_AAD) ?? null) ?? undefined;
  }

  sealEntry(bytes: Buffer): Buffer {
    const nonce = randomBytes(NONCE);
    const sealed = xchacha20poly1305(this.keys.entry, nonce, ENTRY_AAD).encrypt(bytes);
    return Buffer.concat([Buffer.from([ENTRY_VERSION]), nonce, sealed]);
  }

  openEntry(bytes: Buffer): Buffer {
    if (bytes.length < 1 + NONCE + TAG || bytes[0] !== ENTRY_VERSION) throw new InvalidDataMap('not a sealed metadata entry');
    try {
      const plain = xchacha20poly1305(this.keys.entry, bytes.subarray(1, 1 + NONCE), ENTRY_AAD).decrypt(bytes.subarray(1 + NONCE));
      return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    } catch {
      throw new InvalidDataMap('sealed metadata entry does not authenticate (damaged, or from another vault)');
    }
  }

  sealLink(target: string): string {
    return this.sivEncode(target, LINK_AAD);
  }

  openLink(stored: string): string {
    const target = this.sivDecode(stored, LINK_AAD);
    if (target === undefined) throw new InvalidDataMap('sealed symlink target does not authenticate');
    return target;
  }

  private sivEncode(text: string, aad: Uint8Array): string {
    return Buffer.from(aessiv(this.keys.name, aad).encrypt(Buffer.from(text, 'utf8'))).toString('base64url');
  }

  private sivDecode(stored: string, aad: Uint8Array): string | undefined {
    if (!STORED_RE.test(stored)) return undefined;
    try {
      return Buffer.from(aessiv(this.keys.name, aad).decrypt(Buffer.from(stored, 'base64url'))).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

/** New seal parameters for a passphrase (random salt), and the codec they give. */
export function createSeal(passphrase: Uint8Array, options: { logN?: number } = {}): { params: SealParams; codec: MetaCodec } {
  const logN = options.logN ?? DEFAULT_LOG_N;
  if (!Number.isInteger(logN) || logN < LOG_N_RANGE[0] || logN > LOG_N_RANGE[1]) {
    throw new SealError(`scrypt cost 2^${logN} is out of range (2^${LOG_N_RANGE[0]} to 2^${LOG_N_RANGE[1]})`);
  }
  const base = { version: 1, kdf: 'scrypt', logN, r: 8, p: 1, salt: randomBytes(32).toString('base64'), check: '' } as const;
  const params: SealParams = { ...base, entries: 'xchacha20-poly1305', names: 'aes-siv-base64url' };
  const keys = deriveKeys(passphrase, params);
  params.check = keys.check.toString('hex');
  return { params, codec: new SealedCodec(keys) };
}

/** The codec of a sealed vault; WrongPassphrase when the key check value does not match. */
export function openSeal(raw: Record<string, unknown>, passphrase: Uint8Array): MetaCodec {
  const params = checkParams(raw);
  const keys = deriveKeys(passphrase, params);
  if (!timingSafeEqual(keys.check, Buffer.from(params.check, 'hex'))) throw new WrongPassphrase();
  return new SealedCodec(keys);
}

/**
 * The codec a vault is served or read with: plain for an unsealed vault, sealed (passphrase checked) for a
 * sealed one. A sealed vault without a passphrase, or a passphrase for an unsealed vault, is an error.
 */
export function vaultCodec(config: VaultConfig, passphrase: Uint8Array | undefined, vault: string): MetaCodec {
  if (!config.seal) {
    if (passphrase) throw new SealError(`vault ${vault} is not sealed: drop --passphrase-file`);
    return plainCodec;
  }
  if (!passphrase) throw new SealError(`vault ${vault} is sealed: give its passphrase with --passphrase-file F`);
  return openSeal(config.seal, passphrase);
}

/** The passphrase in a file: its bytes without one trailing newline. */
export async function readPassphraseFile(path: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new SealError(`cannot read passphrase file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const end = bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? bytes.length - 2 : bytes.length - 1) : bytes.length;
  const passphrase = bytes.subarray(0, end);
  if (passphrase.length === 0) throw new SealError(`passphrase file ${path} is empty`);
  return passphrase;
}

/**
 * The codec to mount VAULT with, passphrase checked before anything is written. A vault that does not
 * exist yet is created unsealed by the mount; a sealed one is created by sefs init --passphrase-file.
 */
export async function mountCodec(vault: string, passphraseFile: string | undefined): Promise<MetaCodec> {
  const passphrase = passphraseFile === undefined ? undefined : await readPassphraseFile(passphraseFile);
  const exists = await access(vaultPaths(vault).config).then(() => true, () => false);
  if (!exists && !passphrase) return plainCodec;
  if (!exists) throw new SealError(`${vault} is not a vault yet: create it sealed with sefs init ${vault} --passphrase-file ${passphraseFile}`);
  return vaultCodec(await readVaultConfig(vault), passphrase, vault);
}
