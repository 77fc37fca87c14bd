/**
 * Errors a user can act on. Each carries a stable `code` so callers (the CLI, the FUSE layer)
 * can map them without parsing messages.
 */
export class SefsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

const hex = (name: Uint8Array): string => Buffer.from(name).toString('hex');

/** The store has no chunk with this name. */
export class ChunkNotFound extends SefsError {
  constructor(readonly chunkName: string) {
    super('ChunkNotFound', `chunk ${chunkName} not found in the store`);
  }
  static of(name: Uint8Array): ChunkNotFound {
    return new ChunkNotFound(hex(name));
  }
}

/**
 * A chunk's bytes (dst), its decrypted plaintext (src) or a piece of its bytes read alone (piece: core/pieces.ts)
 * do not hash to what the DataMap or the entry says.
 */
export class ChunkHashMismatch extends SefsError {
  constructor(
    readonly chunkName: string,
    readonly which: 'dst' | 'src' | 'piece',
    detail = '',
  ) {
    super(
      'ChunkHashMismatch',
      which === 'dst'
        ? `chunk ${chunkName} is corrupt: its bytes do not hash to its name`
        : which === 'src'
          ? `chunk ${chunkName} decrypted to bytes that do not match the DataMap's source hash`
          : `chunk ${chunkName} is corrupt: ${detail}`,
    );
  }
}

/** A chunk could not be decrypted or decompressed (wrong keys or damaged bytes). */
export class ChunkDecryptFailed extends SefsError {
  constructor(
    readonly chunkName: string,
    reason: string,
  ) {
    super('ChunkDecryptFailed', `chunk ${chunkName} could not be decrypted: ${reason}`);
  }
}

/** Serialised DataMap bytes are truncated, malformed or inconsistent. */
export class InvalidDataMap extends SefsError {
  constructor(reason: string) {
    super('InvalidDataMap', `invalid DataMap: ${reason}`);
  }
}

/** Input too small to be self-encrypted (fewer than 3 bytes). */
export class TooSmall extends SefsError {
  constructor(readonly size: number) {
    super('TooSmall', `${size} bytes is too small for self-encryption (at least 3 bytes are needed)`);
  }
}

/** A byte range outside the file was asked for. */
export class OutOfRange extends SefsError {
  constructor(message: string) {
    super('OutOfRange', message);
  }
}
