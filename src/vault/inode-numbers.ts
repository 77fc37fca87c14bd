/**
 * Inode numbers of regular files and special nodes, stored in their entries (node-info.ts): a commit
 * replaces a file's metadata file by rename, so the host inode number of a file changes at every commit and
 * cannot be what the mount shows. Directories and symlinks show their meta/ twin's host number, which a
 * rename keeps. Stored numbers come from [INO_BASE, INO_END): host filesystems number their inodes from
 * the bottom (ext4's numbers are below its inode count, far under 2^31), so the two never meet.
 *
 * Crash safety: VAULT/inodes holds the end of the last reserved block of numbers. A block is reserved
 * durably (temp, fsync, rename, fsync) before any number of it is handed out, so a number stored in any
 * entry is below what the file says, and after a crash the rest of a block is skipped, never handed out
 * twice. Reservations come every RESERVE numbers: one fsync per 4,096 creates.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { posixError } from './posix-error.js';

/** FUSE's stat carries 32-bit inode numbers through the binding: the top half of that range is ours. */
export const INO_BASE = 2 ** 31;
export const INO_END = 2 ** 32;
const RESERVE = 4096;

export class InodeNumbers {
  private next = 0;
  private end = 0;
  private reserving: Promise<void> | undefined;

  constructor(private readonly file: string) {}

  /** A number never handed out before in this vault; ENOSPC once the range is used up. */
  async allocate(): Promise<number> {
    while (this.next >= this.end) {
      this.reserving ??= this.reserve().finally(() => (this.reserving = undefined));
      await this.reserving;
    }
    return this.next++;
  }

  private async reserve(): Promise<void> {
    const start = Math.max(INO_BASE, this.end, await this.stored());
    const end = Math.min(INO_END, start + RESERVE);
    if (start >= end) throw posixError('ENOSPC', 'inode numbers of this vault are used up');
    await writeFileAtomic(this.file, Buffer.from(`${end}\n`), 0o600);
    this.next = start;
    this.end = end;
  }

  private async stored(): Promise<number> {
    try {
      const n = Number((await readFile(this.file, 'utf8')).trim());
      if (!Number.isSafeInteger(n) || n < 0) throw posixError('EIO', `${this.file} is damaged`);
      return n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }
}
