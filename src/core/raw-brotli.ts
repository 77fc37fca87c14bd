/**
 * A brotli stream that stores bytes uncompressed (RFC 7932, section 9.2: ISUNCOMPRESSED meta-blocks).
 * The `fast` profile writes incompressible chunks this way: any brotli decoder (the reference crate's
 * included) reads it, and writing it costs one copy instead of a compression attempt.
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

/**
 * The pieces of a valid brotli stream of uncompressed meta-blocks holding `data`: headers, views of `data`
 * (not copies) and the closing bits. Feeding them to the cipher one by one saves copying the chunk.
 */
export function storeAsBrotliParts(data: Uint8Array): Uint8Array[] {
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
  return parts;
}
