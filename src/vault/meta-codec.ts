/**
 * How metadata is written to disk. The plain codec stores names and contents as they are (meta/ is 0700);
 * a sealed vault swaps in a codec that encrypts entry contents, names and symlink targets, each bound to its
 * place: the id of the directory it is in (meta-dir.ts) and, for entries and targets, its visible name.
 */
export interface Place {
  /** Id of the directory holding the node (empty in an unsealed vault). */
  dir: Uint8Array;
  /** The node's visible name. */
  name: string;
}

export interface MetaCodec {
  readonly sealed: boolean;
  /** One path component in directory `dir`, sealed (a sealed name may exceed 255 bytes: meta-dir.ts stores it). */
  encodeName(name: string, dir: Uint8Array): string;
  /** Back from a sealed name; undefined for names that are not ours in that directory (they are hidden). */
  decodeName(sealed: string, dir: Uint8Array): string | undefined;
  sealEntry(bytes: Buffer, place: Place): Buffer;
  openEntry(bytes: Buffer, place: Place): Buffer;
  /** A symlink target sealed for its place; a sealed vault also keeps `ino` in it (a sealed rename makes a new host symlink). */
  sealLink(target: string, place: Place, ino?: number): string;
  openLink(stored: string, place: Place): LinkNode;
}

/** What a stored symlink holds: its target, and in a sealed vault the inode number it shows (none before sefs 0.6). */
export interface LinkNode {
  target: string;
  ino?: number;
}

export const plainCodec: MetaCodec = {
  sealed: false,
  encodeName: (name) => name,
  decodeName: (stored) => stored,
  sealEntry: (bytes) => bytes,
  openEntry: (bytes) => bytes,
  sealLink: (target) => target,
  openLink: (stored) => ({ target: stored }),
};
