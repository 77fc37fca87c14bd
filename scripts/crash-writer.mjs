// Crash-test writer: keeps changing files in a mount with fsync, journaling (outside the mount, fsynced)
// every state a file may legitimately be in after a crash: before each operation the states it may
// leave behind, after it the state it did leave. Run by scripts/crash-test.mjs, killed at random.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { open, rename, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const [mnt, journalPath, filesArg] = process.argv.slice(2);
const FILES = Number(filesArg ?? 4);
const sha = (b) => createHash('sha256').update(b).digest('hex');
const journal = openSync(journalPath, 'a');
const note = (entry) => {
  writeSync(journal, JSON.stringify(entry) + '\n');
  fsyncSync(journal);
};

/** Sizes around the interesting borders: tiny (inline), small (3 chunks), over 3 MiB (block chunks). */
function randomSize() {
  const pick = randomInt(4);
  if (pick === 0) return randomInt(5);
  if (pick === 1) return randomInt(64 * 1024);
  if (pick === 2) return 3 * 1024 * 1024 - 2 + randomInt(4);
  return randomInt(5 * 1024 * 1024);
}

async function writeAll(path, data, flags) {
  const fh = await open(path, flags);
  await fh.writeFile(data);
  await fh.sync();
  await fh.close();
}

async function step(i) {
  const name = `f${randomInt(FILES)}`;
  const path = join(mnt, name);
  const old = await readFile(path);
  const op = randomInt(5);
  let next;
  let states;
  if (op === 0) {
    // Editor-style: temp file, fsync, rename over.
    next = randomBytes(randomSize());
    states = [sha(next)];
    note({ file: name, may: states });
    await writeAll(path + '.tmp', next, 'w');
    await rename(path + '.tmp', path);
  } else if (op === 1) {
    // In place with O_TRUNC: the truncation is its own state.
    next = randomBytes(randomSize());
    states = [sha(Buffer.alloc(0)), sha(next)];
    note({ file: name, may: states });
    await writeAll(path, next, 'w');
  } else if (op === 2) {
    const extra = randomBytes(randomInt(2 * 1024 * 1024));
    next = Buffer.concat([old, extra]);
    states = [sha(next)];
    note({ file: name, may: states });
    await writeAll(path, extra, 'a');
  } else if (op === 3) {
    const size = randomInt(old.length + 1);
    next = old.subarray(0, size);
    states = [sha(next)];
    note({ file: name, may: states });
    const fh = await open(path, 'r+');
    await fh.truncate(size);
    await fh.sync();
    await fh.close();
  } else {
    const at = randomInt(old.length + 1);
    const patch = randomBytes(randomInt(256 * 1024) + 1);
    next = Buffer.alloc(Math.max(old.length, at + patch.length));
    old.copy(next);
    patch.copy(next, at);
    states = [sha(next)];
    note({ file: name, may: states });
    const fh = await open(path, 'r+');
    await fh.write(patch, 0, patch.length, at);
    await fh.sync();
    await fh.close();
  }
  note({ file: name, done: sha(next), step: i });
}

// First run: create the files (durably) so every file has a known state. Until its first fsync returns, a new
// file may be missing or empty after a crash, as on ext4 (README, Safety): `creating` says so.
// A creation the last crash cut short (no `done` yet) is made again.
const created = new Set(
  readFileSync(journalPath, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        const e = JSON.parse(l);
        return e.done ? [e.file] : [];
      } catch {
        return []; // empty, or cut by a kill
      }
    }),
);
for (let f = 0; f < FILES; f++) {
  if (created.has(`f${f}`)) continue;
  const data = randomBytes(randomSize());
  note({ file: `f${f}`, may: [sha(Buffer.alloc(0)), sha(data)], creating: true });
  await writeAll(join(mnt, `f${f}`), data, 'w');
  note({ file: `f${f}`, done: sha(data) });
}
appendFileSync(journalPath, '');
for (let i = 0; ; i++) await step(i);
