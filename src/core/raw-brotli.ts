/**
 * A brotli stream that stores bytes uncompressed (RFC 7932, section 9.2: ISUNCOMPRESSED meta-blocks).
 * The `selective` profile writes every chunk that does not compress to a third this way, `fast` incompressible
 * ones: any brotli decoder (the reference crate's included) reads it, and writing it costs one copy.
 * Why by hand: node:zlib and brotli-wasm only offer "compress", which spends time trying first.
 */

/** Window bits announced in the stream header; the decoder needs no window for stored data. */
const WINDOW_BITS = 22;
/** Largest meta-block: MLEN is at most 2^24. */
const MAX_META_BLOCK = 1 << 24;

class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private used = 0;
  write(value: number, bits: number): void {
    for (let i = 0; i < bits; i++) {
      this.acc |= ((value >>> i) & 1) << this.used;
      if (++this.used === 8) this.flushByte();
    }
  }
  /** Pad to the next byte boundary with zero bits. */
  align(): void {
    if (this.used > 0) this.flushByte();
  }
  take(): number[] {
    this.align();
    const out = this.bytes;
    this.bytes = [];
    return out;
  }
  private flushByte(): void {
    this.bytes.push(this.acc);
    this.acc = 0;
    this.used = 0;
  }
}

function metaBlockHeader(w: BitWriter, length: number): void {
  const m = length - 1;
  const nibbles = m < 1 << 16 ? 4 : m < 1 << 20 ? 5 : 6; // the fewest nibbles: a spare zero nibble is invalid
  w.write(0, 1); // ISLAST = 0 (an uncompressed meta-block can never be the last one)
  w.write(nibbles - 4, 2); // MNIBBLES
  w.write(m, nibbles * 4); // MLEN - 1
  w.write(1, 1); // ISUNCOMPRESSED
  w.align();
}

/** A brotli stream in parts, and where the plaintext starts in it when it is stored whole in one meta-block. */
export interface BrotliParts {
  parts: Uint8Array[];
  /** Stream offset of plaintext byte 0, when plaintext byte p is stream byte plainAt + p (core/pieces.ts). */
  plainAt?: number;
}

/**
 * The pieces of a valid brotli stream of uncompressed meta-blocks holding `data`: headers, views of `data`
 * (not copies) and the closing bits. Feeding them to the cipher one by one saves copying the chunk.
 */
export function storeAsBrotli(data: Uint8Array): BrotliParts {
  const parts: Uint8Array[] = [];
  const w = new BitWriter();
  w.write(1, 1); // WBITS: 1 then 3 bits n, window = 17 + n
  w.write(WINDOW_BITS - 17, 3);
  for (let off = 0; off < data.length; off += MAX_META_BLOCK) {
    const end = Math.min(data.length, off + MAX_META_BLOCK);
    metaBlockHeader(w, end - off);
    parts.push(Uint8Array.from(w.take()), data.subarray(off, end));
  }
  w.write(1, 1); // ISLAST
  w.write(1, 1); // ISLASTEMPTY
  parts.push(Uint8Array.from(w.take()));
  return parts.length === 3 ? { parts, plainAt: parts[0]!.length } : { parts };
}

/** Reads a byte array bit by bit, least significant bit first, as brotli streams are written. */
class BitReader {
  private bit = 0;
  constructor(private readonly data: Uint8Array) {}
  /** `bits` bits as a number, or -1 past the end. */
  read(bits: number): number {
    let value = 0;
    for (let i = 0; i < bits; i++, this.bit++) {
      const byte = this.data[this.bit >>> 3];
      if (byte === undefined) return -1;
      value += ((byte >>> (this.bit & 7)) & 1) * 2 ** i;
    }
    return value;
  }
  /** Skip to the next byte boundary; false when the skipped bits are not zero (an invalid stream). */
  align(): boolean {
    while (this.bit & 7) if (this.read(1) !== 0) return false;
    return true;
  }
  get byteOffset(): number {
    return this.bit >>> 3;
  }
  skipBytes(n: number): void {
    this.bit += 8 * n;
  }
}

/**
 * The content of a brotli stream made only of uncompressed meta-blocks (what storeAsBrotliParts writes, and
 * what brotli encoders write for incompressible data), found by reading the headers only: a view of `stream`
 * when there is one meta-block. Anything else (compressed or metadata blocks, invalid or trailing bits) gives
 * undefined, and the caller runs a real decoder, which also reports invalid streams.
 */
export function readStoredBrotli(stream: Uint8Array): Uint8Array | undefined {
  const r = new BitReader(stream);
  // WBITS: 0 (16); 1 + 3 bits n > 0 (17 + n); 1 + 000 + 3 bits (8 + m, or 17 for m = 0; m = 1 is invalid).
  if (r.read(1) === 1 && r.read(3) === 0 && r.read(3) === 1) return undefined;
  const pieces: Uint8Array[] = [];
  for (;;) {
    const isLast = r.read(1);
    if (isLast === 1) {
      // Only an empty last meta-block (ISLASTEMPTY), the padding to the byte and no byte after it.
      if (r.read(1) !== 1 || !r.align() || r.byteOffset !== stream.length) return undefined;
      break;
    }
    const nibbles = r.read(2);
    if (isLast !== 0 || nibbles < 0 || nibbles === 3) return undefined; // past the end, or a metadata block
    const count = nibbles + 4;
    const lengthMinusOne = r.read(count * 4);
    if (lengthMinusOne < 0 || (count > 4 && lengthMinusOne < 2 ** ((count - 1) * 4))) return undefined; // a spare zero nibble is invalid
    if (r.read(1) !== 1 || !r.align()) return undefined; // compressed
    const start = r.byteOffset;
    const end = start + lengthMinusOne + 1;
    if (end > stream.length) return undefined;
    pieces.push(stream.subarray(start, end));
    r.skipBytes(end - start);
  }
  if (pieces.length === 1) return pieces[0];
  return Buffer.concat(pieces);
}
