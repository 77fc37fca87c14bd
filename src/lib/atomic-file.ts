/**
 * Replace a file atomically and durably: write a temp file beside it, fsync, rename over the target, fsync
 * the directory. A reader sees the old file or the complete new one, never a part, even after a crash.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDir } from '../vault/safe-fs.js';

/** An error about the temp file, told about `path`: the temp name is ours, the caller never gave it. */
function aboutTarget(err: unknown, temp: string, path: string): unknown {
  const e = err as NodeJS.ErrnoException & { dest?: string };
  if (e?.path === temp) e.path = path;
  if (e?.dest === temp) e.dest = path;
  if (typeof e?.message === 'string') e.message = e.message.split(temp).join(path);
  return err;
}

/** Run `write` on a fresh temp file next to `path`, then move it into place; on failure the temp file is removed. */
export async function withTempFile<T>(path: string, write: (fh: FileHandle) => Promise<T>, mode = 0o666): Promise<T> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await open(temp, 'wx', mode).catch((err: unknown) => {
    throw aboutTarget(err, temp, path);
  });
  let closed = false;
  try {
    const result = await write(fh);
    await fh.sync();
    await fh.close();
    closed = true;
    await rename(temp, path);
    await fsyncDir(dir);
    return result;
  } catch (err) {
    if (!closed) await fh.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw aboutTarget(err, temp, path);
  }
}

export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o666): Promise<void> {
  await withTempFile(path, (fh) => fh.writeFile(data), mode);
}
