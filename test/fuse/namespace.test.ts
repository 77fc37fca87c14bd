/**
 * Namespace durability: fsync of a directory on the mount reaches the daemon, which fsyncs the directory's twin
 * in meta/ (watched with strace: the kernel answers an fsyncdir the daemon does not implement with success
 * itself, so the application's result alone proves nothing); and a new file whose entry lost its bytes in a
 * power loss (a zero-length entry file) reads as the empty file it was, in the mount and in fsck.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, disposeEachTest, fuseSuite, requireTools, run, TestMount } from './helpers.js';

fuseSuite();

disposeEachTest();

let m: TestMount | undefined;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** fsync(2) of each directory through a directory fd, as editors and databases do after a rename. */
const fsyncDirs = (...dirs: string[]) =>
  run('python3', ['-c', 'import os, sys\nfor d in sys.argv[1:]:\n    fd = os.open(d, os.O_RDONLY)\n    os.fsync(fd)\n    os.close(fd)', ...dirs]);

/** The `calls` (fsync by default) of every thread of `pid` (with the path of each fd) while `action` runs. */
async function fsyncsDuring(pid: number, out: string, action: () => Promise<unknown>, calls = 'fsync'): Promise<string> {
  const tracer: ChildProcess = spawn('strace', ['-f', '-y', '-e', `trace=${calls}`, '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((done) => tracer.once('exit', () => done()));
  try {
    // strace says "Process N attached with M threads" once it traces them all.
    await new Promise<void>((attached, failed) => {
      let said = '';
      tracer.stderr!.on('data', (d: Buffer) => {
        said += d.toString();
        if (/attached/.test(said)) attached();
      });
      tracer.once('exit', (code) => failed(new Error(`strace exited (${code}) before attaching: ${said}`)));
    });
    await action();
  } finally {
    tracer.kill('SIGINT');
    await exited;
  }
  return readFile(out, 'utf8');
}

describe('fsync of a directory', () => {
  it('reaches the daemon, which fsyncs the directory in meta/ after mkdir, create, rename and symlink in it', async () => {
    requireTools('strace', 'python3');
    m = await TestMount.create('namespace');
    await mkdir(m.at('d'));
    await writeFile(m.at('d', 'draft'), '');
    await rename(m.at('d', 'draft'), m.at('d', 'final'));
    await run('ln', ['-s', 'final', m.at('d', 'link')]);

    const trace = await fsyncsDuring(m.pid, m.host('strace.out'), () => fsyncDirs(m!.at('d'), m!.mnt));
    expect(trace).toMatch(new RegExp(`fsync\\(\\d+<${escape(m.vault)}/meta/d>\\) += 0`));
    expect(trace).toMatch(new RegExp(`fsync\\(\\d+<${escape(m.vault)}/meta>\\) += 0`));
  });
});

describe('unlink', () => {
  it('takes the entry out of meta/ at once and frees its inode only once its directory is fsynced; nothing stays in tmp/', async () => {
    requireTools('strace');
    m = await TestMount.create('namespace');
    await mkdir(m.at('d'));
    for (let i = 0; i < 40; i++) await writeFile(m.at('d', `f${i}`), `file ${i}\n`);
    await run('sync', []); // the creates' commits are durable: their own fsyncs stay out of the trace
    await new Promise((r) => setTimeout(r, 1500));
    const held = () => readdir(join(m!.vault, 'tmp')).then((names) => names.filter((n) => n.startsWith('gone-')));

    const trace = await fsyncsDuring(
      m.pid,
      m.host('strace.out'),
      async () => {
        await run('rm', ['-r', m!.at('d')]);
        expect(await readdir(m!.mnt)).toEqual([]); // gone at once
        for (let i = 0; i < 50 && (await held()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      },
      'fsync,rename,renameat,renameat2,unlink,unlinkat',
    );
    expect(await held()).toEqual([]);
    const lines = trace.split('\n');
    // Each removed entry: renamed to tmp/gone-X, then (after an fsync of meta/d, or of meta/ once d is removed
    // too) unlinked there; never unlinked before such an fsync.
    // A path ending in it (rename, unlink), or a name in a directory's descriptor (unlinkat of a batch).
    const gone = (l: string, call: RegExp) => (call.test(l) ? /[/"](gone-[0-9a-f]+)"/.exec(l)?.[1] : undefined);
    const renamedAt = new Map<string, number>();
    const freedAt = new Map<string, number>();
    const syncs: number[] = [];
    const dirSync = new RegExp(`fsync\\(\\d+<${escape(m.vault)}/meta(/d)?>`);
    lines.forEach((l, i) => {
      const r = gone(l, /\brename/);
      if (r) renamedAt.set(r, i);
      const u = gone(l, /\bunlink/);
      if (u) freedAt.set(u, i);
      if (dirSync.test(l)) syncs.push(i);
    });
    expect(renamedAt.size, trace).toBe(40);
    expect([...freedAt.keys()].sort(), trace).toEqual([...renamedAt.keys()].sort());
    for (const [name, freed] of freedAt) {
      const renamed = renamedAt.get(name)!;
      expect(renamed, `${name} renamed before it is freed`).toBeLessThan(freed);
      expect(syncs.some((at) => at > renamed && at < freed), `${name}: an fsync of its directory between its rename and its unlink`).toBe(true);
    }

    await m.remount();
    expect(await readdir(m.mnt)).toEqual([]);
  });
});

describe('a new file whose entry lost its bytes', () => {
  it('(a zero-length entry file) is an empty file: it stats, reads, takes writes, and fsck calls it sound', async () => {
    m = await TestMount.create('namespace');
    await writeFile(m.at('created'), '');
    await writeFile(m.at('kept'), 'content\n');
    await m.unmount();
    // What a power loss after the directory's fsync leaves of a create whose entry was never synced.
    await truncate(join(m.vault, 'meta', 'created'), 0);
    await m.mount();

    expect((await stat(m.at('created'))).size).toBe(0);
    expect(await readFile(m.at('created'))).toEqual(Buffer.alloc(0));
    expect(await readFile(m.at('kept'), 'utf8')).toBe('content\n');
    await m.unmount();
    const fsck = await run(process.execPath, [CLI, 'fsck', m.vault]);
    expect(fsck.stdout).toMatch(/no damage/);

    await m.mount();
    await writeFile(m.at('created'), 'now with content\n');
    await m.remount();
    expect(await readFile(m.at('created'), 'utf8')).toBe('now with content\n');
  });
});
