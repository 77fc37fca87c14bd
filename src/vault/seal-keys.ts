/**
 * The keys of a sealed vault (format 2). A random 32-byte master key does the work; the passphrase only
 * wraps it, so `sefs passwd` rewrites sefs.json and nothing else.
 *   wrapping key = scrypt(passphrase, salt, logN/r/p)           (bounds checked first: kdf.ts)
 *   seal.masterKey = nonce(24) | XChaCha20-Poly1305(wrapping key, nonce, AD "sefs master key v2").seal(master)
 *   entry, name and settings keys = HKDF-SHA256(master, info)
 *   sefs.json `mac` = HMAC-SHA256(settings key, canonical JSON of every other field)
 * The MAC covers the profile, the format, the seal section and everything else that says how data is
 * stored: a changed setting is refused once the passphrase has unwrapped the master key. A changed KDF
 * parameter or salt gives another wrapping key, so it shows as a failed unwrap.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SefsError } from '../core/errors.js';
import { DEFAULT_SCRYPT, type ScryptCost, scryptCostProblem, scryptKey } from './kdf.js';

/** What sefs.json keeps under `seal` (format 2). */
export interface SealParams {
  version: 2;
  kdf: 'scrypt';
  logN: number;
  r: number;
  p: number;
  /** base64, 32 bytes */
  salt: string;
  /** base64: nonce | wrapped master key | tag */
  masterKey: string;
  entries: 'xchacha20-poly1305, bound to directory and name';
  names: 'aes-siv, per-directory id';
}

export class WrongPassphrase extends SefsError {
  constructor() {
    super('WrongPassphrase', 'wrong passphrase for this vault, or its sefs.json seal was altered (nothing was read or written)');
  }
}

export class SealError extends SefsError {
  constructor(message: string) {
    super('SealError', message);
  }
}

const NONCE = 24;
const KEY = 32;
const TAG = 16;
const WRAP_AD = Buffer.from('sefs master key v2');

export interface SubKeys {
  entry: Uint8Array;
  /** AES-SIV takes two AES-256 keys. */
  name: Uint8Array;
  settings: Uint8Array;
}

/** Check a stored seal section before any work: shape, then the KDF's cost. */
export function parseSealParams(raw: unknown): SealParams {
  const p = (raw ?? {}) as Partial<SealParams>;
  const bad = (why: string): never => {
    throw new SealError(`the seal section of sefs.json is not usable: ${why}`);
  };
  if (p.version !== 2 || p.kdf !== 'scrypt') bad('unknown version or KDF');
  const cost = scryptCostProblem(p);
  if (cost) bad(cost);
  if (typeof p.salt !== 'string' || Buffer.from(p.salt, 'base64').length !== 32) bad('salt');
  if (typeof p.masterKey !== 'string' || Buffer.from(p.masterKey, 'base64').length !== NONCE + KEY + TAG) bad('wrapped key');
  if (p.entries !== 'xchacha20-poly1305, bound to directory and name' || p.names !== 'aes-siv, per-directory id') bad('unknown ciphers');
  return p as SealParams;
}

/** Wrap `master` under a new salt for this passphrase. */
export async function wrapMasterKey(master: Uint8Array, passphrase: Uint8Array, cost: ScryptCost = DEFAULT_SCRYPT): Promise<SealParams> {
  const problem = scryptCostProblem(cost);
  if (problem) throw new SealError(problem);
  const salt = randomBytes(32);
  const wrapping = await scryptKey(passphrase, salt, cost);
  try {
    const nonce = randomBytes(NONCE);
    const sealed = xchacha20poly1305(wrapping, nonce, WRAP_AD).encrypt(master);
    return {
      version: 2,
      kdf: 'scrypt',
      ...cost,
      salt: salt.toString('base64'),
      masterKey: Buffer.concat([nonce, sealed]).toString('base64'),
      entries: 'xchacha20-poly1305, bound to directory and name',
      names: 'aes-siv, per-directory id',
    };
  } finally {
    wrapping.fill(0);
  }
}

/** A new random master key, wrapped by the passphrase. */
export async function newMasterKey(passphrase: Uint8Array, cost?: ScryptCost): Promise<{ params: SealParams; master: Buffer }> {
  const master = randomBytes(KEY);
  return { params: await wrapMasterKey(master, passphrase, cost), master };
}

/** The master key; WrongPassphrase when it does not unwrap. The caller zero-fills it when done. */
export async function unwrapMasterKey(params: SealParams, passphrase: Uint8Array): Promise<Buffer> {
  const wrapping = await scryptKey(passphrase, Buffer.from(params.salt, 'base64'), params);
  try {
    const blob = Buffer.from(params.masterKey, 'base64');
    const master = xchacha20poly1305(wrapping, blob.subarray(0, NONCE), WRAP_AD).decrypt(blob.subarray(NONCE));
    return Buffer.from(master.buffer, master.byteOffset, master.byteLength);
  } catch {
    throw new WrongPassphrase();
  } finally {
    wrapping.fill(0);
  }
}

export function subKeys(master: Uint8Array): SubKeys {
  const derive = (info: string, length: number) => hkdf(sha256, master, undefined, Buffer.from(info), length);
  return { entry: derive('sefs v2 entry key', 32), name: derive('sefs v2 name key', 64), settings: derive('sefs v2 settings key', 32) };
}

/** JSON with keys sorted at every level: the bytes the MAC covers do not depend on how the file was written. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The MAC of a vault's settings: every field of sefs.json but `mac` itself. */
export function settingsMac(settingsKey: Uint8Array, config: object): string {
  const { mac: _mac, ...rest } = config as { mac?: unknown };
  return Buffer.from(hmac(sha256, settingsKey, Buffer.from(canonicalJson(rest)))).toString('hex');
}

export function settingsAuthentic(settingsKey: Uint8Array, config: object): boolean {
  const stored = (config as { mac?: unknown }).mac;
  if (typeof stored !== 'string' || !/^[0-9a-f]{64}$/.test(stored)) return false;
  return timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(settingsMac(settingsKey, config), 'hex'));
}
