/**
 * fallocate(2) on an open file, as far as the Sequencer can express it (native-notes/hard-links.md has the
 * table): a sefs file has no preallocated blocks, and a run of zeros is stored as a hole (a chunk of zeros
 * costs no store space), so
 *   mode 0                        extends the size to offset + length (the new bytes are a hole);
 *   KEEP_SIZE                     changes nothing (there is nothing to reserve);
 *   PUNCH_HOLE | KEEP_SIZE        writes zeros over the range inside the file (they become holes);
 *   ZERO_RANGE [| KEEP_SIZE]      zeros over the range, growing the file unless KEEP_SIZE;
 *   anything else (COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE, PUNCH_HOLE alone) is EOPNOTSUPP.
 * Space is never short at allocation time (nothing is reserved): a later write can still fail with ENOSPC.
 */
import { E, fsError } from './errno.js';
import type { FsContext } from './context.js';
import { BLOCK } from './file-content.js';

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

const ZEROS = Buffer.alloc(BLOCK);

export async function allocate(ctx: FsContext, fh: number, mode: number, offset: number, length: number): Promise<void> {
  const file = ctx.files.handle(fh);
  if (!file) throw fsError(E.EBADF);
  if (offset < 0 || length <= 0) throw fsError(E.EINVAL);
  const seq = file.seq;
  const end = offset + length;
  const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
  const kind = mode & ~FALLOC_FL_KEEP_SIZE;
  if (kind === 0) {
    if (!keepSize && end > seq.size) await seq.truncate(end);
  } else if (kind === FALLOC_FL_PUNCH_HOLE && keepSize) {
    await writeZeros(seq, offset, Math.min(end, seq.size));
  } else if (kind === FALLOC_FL_ZERO_RANGE) {
    await writeZeros(seq, offset, Math.min(end, seq.size));
    if (!keepSize && end > seq.size) await seq.truncate(end);
  } else throw fsError(E.EOPNOTSUPP);
  if (seq.isDirty) await ctx.writeback.enqueue(file);
}

/** Zeros over [from, to), a block at a time (the Sequencer stores whole blocks of zeros as holes). */
async function writeZeros(seq: { write(offset: number, data: Buffer): Promise<void> }, from: number, to: number): Promise<void> {
  for (let at = from; at < to; ) {
    const next = Math.min(to, (Math.floor(at / BLOCK) + 1) * BLOCK);
    await seq.write(at, ZEROS.subarray(0, next - at));
    at = next;
  }
}
