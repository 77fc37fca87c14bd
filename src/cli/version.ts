/** `sefs --version`: the package version, the on-disk format versions it reads and writes, and the native parts in use. */
import { readFileSync } from 'node:fs';
import { nativeStatus } from '../core/native.js';
import { DATA_MAP_VERSION } from '../core/data-map.js';
import { VAULT_FORMAT } from '../vault/config.js';
import { META_FORMAT_VERSION } from '../vault/meta-entry.js';
import { FUSE_PATCH_LEVEL, loadFuse } from '../fs/fuse-binding.js';

function fuseStatus(): string {
  try {
    loadFuse();
    return `fuse-native, sefs patch level ${FUSE_PATCH_LEVEL}`;
  } catch (err) {
    return `unavailable: ${(err as Error).message}`;
  }
}

export function versionText(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return [
    `sefs ${pkg.version}`,
    `formats: vault ${VAULT_FORMAT}, metadata entry ${META_FORMAT_VERSION}, DataMap ${DATA_MAP_VERSION} (self_encryption 0.30-0.34, SHA3-256)`,
    `native addon: ${nativeStatus}`,
    `FUSE binding: ${fuseStatus()}`,
    `node ${process.version} (${process.platform}-${process.arch})`,
  ].join('\n') + '\n';
}
