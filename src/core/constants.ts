/** Constants of the self_encryption format (0.30 to 0.34, SHA3-256 line). */

/** Smallest chunk, in bytes of plaintext. */
export const MIN_CHUNK_SIZE = 1;
/** Largest chunk, in bytes of plaintext (before compression). */
export const MAX_CHUNK_SIZE = 1024 * 1024;
/** Files below this size cannot be self-encrypted (3 chunks of MIN_CHUNK_SIZE). */
export const MIN_ENCRYPTABLE_BYTES = 3 * MIN_CHUNK_SIZE;
/** Length of a SHA3-256 hash: chunk names (dst) and plaintext hashes (src). */
export const HASH_SIZE = 32;
/** AES-128 key and CBC IV sizes. */
export const KEY_SIZE = 16;
export const IV_SIZE = 16;
/** A DataMap with more chunks than this is shrunk to a child level. */
export const MAX_ROOT_CHUNKS = 3;
