/**
 * How metadata is written to disk. The plain codec stores names and contents as they are (meta/ is 0700);
 * a sealed vault swaps in a codec that encrypts entry contents, names and symlink targets.
 */
export interface MetaCodec {
  readonly sealed: boolean;
  /** One path component as stored in meta/. */
  encodeName(name: string): string;
  /** Back from a stored name; undefined for names that are not ours (they are hidden). */
  decodeName(stored: string): string | undefined;
  sealEntry(bytes: Buffer): Buffer;
  openEntry(bytes: Buffer): Buffer;
  sealLink(target: string): string;
  openLink(stored: string): string;
}

export const plainCodec: MetaCodec = {
  sealed: false,
  encodeName: (name) => name,
  decodeName: (stored) => stored,
  sealEntry: (bytes) => bytes,
  openEntry: (bytes) => bytes,
  sealLink: (target) => target,
  openLink: (stored) => stored,
};
