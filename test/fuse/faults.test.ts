/**
 * Failures reach the caller as an errno, never as a crash or a hang, and the mount lives on: a real full
 * disk (the vault on a small tmpfs) driven by dd, and injected EIO on the store's writes, fsyncs and renames
 * (store/fault-plan.ts). A file whose commit fails keeps its data, and is committed once the fault clears.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { MiB, TestMount, alive, disposeAll, fuseSuite, seededBytes, sh, sha256, sleep } from './helpers.js';

fuseSuite();
afterAll(() => disposeAll());

/** Run a shell command expected to fail; its combined output. Fails the test if it succeeds or hangs. */
async function fails(script: string, timeoutMs: number): Promise<string> {
  const started = Date.now();
  const out = await sh(`if ( ${script} ) 2>&1; then echo UNEXPECTED-SUCCESS; fi`, { timeoutMs });
  process.stderr.write(`[faults] failed as expected in ${((Date.now() - started) / 1000).toFixed(1)} s: ${out.stdout.trim().split('\n').slice(-2).join(' | ')}\n`);
  expect(out.stdout).not.toContain('UNEXPECTED-SUCCESS');
  return out.stdout;
}

describe('a full disk', () => {
  it('dd into a vault on a 96 MiB filesystem fails with ENOSPC, the mount lives on, and writes work again once space is freed', async () => {
    const m = await TestMount.create('full', { vaultMb: 96 });
    const keeper = seededBytes(4 * MiB, 1);
    await writeFile(m.at('keeper.bin'), keeper);

    const out = await fails(`dd if=/dev/urandom of='${m.at('big.bin')}' bs=1M count=300 conv=fsync`, 180_000);
    expect(out).toMatch(/No space left on device/);
    expect(alive(m.pid)).toBe(true);
    expect(sha256(await readFile(m.at('keeper.bin')))).toBe(sha256(keeper));
    expect((await sh(`ls '${m.mnt}'`)).stdout).toContain('keeper.bin');

    await rm(m.at('big.bin'));
    // The removed file's chunks go by themselves: space comes back without gc.
    let free = 0;
    for (let waited = 0; waited < 30_000; waited += 500) {
      free = (await statfs(m.vault)).bavail * (await statfs(m.vault)).bsize;
      if (free > 60 * MiB) break;
      await sleep(500);
    }
    expect(free).toBeGreaterThan(60 * MiB);
    const again = seededBytes(20 * MiB, 2);
    await writeFile(m.at('again.bin'), again);
    expect(sha256(await readFile(m.at('again.bin')))).toBe(sha256(again));
    await m.remount();
    expect(sha256(await readFile(m.at('keeper.bin')))).toBe(sha256(keeper));
    expect(sha256(await readFile(m.at('again.bin')))).toBe(sha256(again));
    expect(await m.log()).toMatch(/"\/big\.bin": commit failed/);
    await m.dispose();
  });
});

describe('injected store faults', () => {
  for (const op of ['fsync', 'rename', 'write'] as const) {
    it(`EIO on every chunk ${op}: the writer gets EIO, other files are untouched, and the kept data is committed once the fault clears`, async () => {
      const dir = await import('node:os').then((os) => os.tmpdir());
      const plan = `${dir}/sefs-fault-plan-${process.pid}-${op}.json`;
      const m = await TestMount.create(`fault-${op}`, { env: { SEFS_FAULT_PLAN: plan } });
      const keeper = seededBytes(5 * MiB, 3);
      await writeFile(m.at('keeper.bin'), keeper);
      const source = m.host('source.bin');
      const data = seededBytes(12 * MiB, 4);
      await writeFile(source, data);

      await writeFile(plan, JSON.stringify({ op, errno: 'EIO', skip: 0, count: 1_000_000 }));
      const out = await fails(`dd if='${source}' of='${m.at('victim.bin')}' bs=1M conv=fsync`, 120_000);
      expect(out).toMatch(/Input\/output error/);
      expect(alive(m.pid)).toBe(true);
      expect(sha256(await readFile(m.at('keeper.bin')))).toBe(sha256(keeper));

      // The last close (release, after dd exits) fails too and keeps the changes: wait for it before clearing.
      let log = '';
      for (let waited = 0; waited < 20_000 && !/victim\.bin: commit failed, changes kept/.test(log); waited += 200) {
        await sleep(200);
        log = await m.log();
      }
      await rm(plan);
      // The file's commit is retried in the background: what dd wrote arrives whole.
      const written = (await stat(m.at('victim.bin'))).size;
      expect(written).toBeGreaterThan(0);
      for (let waited = 0; waited < 30_000 && !/victim\.bin succeeded on retry/.test(log); waited += 500) {
        await sleep(500);
        log = await m.log();
      }
      expect(log).toMatch(/"\/victim\.bin": commit failed, changes kept/);
      expect(log).toMatch(/"\/victim\.bin" succeeded on retry/);
      await m.remount();
      expect((await stat(m.at('victim.bin'))).size).toBe(written);
      expect(sha256(await readFile(m.at('victim.bin')))).toBe(sha256(data.subarray(0, written)));
      expect(sha256(await readFile(m.at('keeper.bin')))).toBe(sha256(keeper));
      // And new writes work as before.
      await writeFile(m.at('after.bin'), data);
      expect(sha256(await readFile(m.at('after.bin')))).toBe(sha256(data));
      await m.dispose();
    });
  }

  it('a single transient EIO fails one fsync only; the next one succeeds', async () => {
    const plan = `/tmp/sefs-fault-plan-${process.pid}-once.json`;
    const m = await TestMount.create('fault-once', { env: { SEFS_FAULT_PLAN: plan } });
    await writeFile(plan, JSON.stringify({ op: 'fsync', errno: 'EIO', skip: 0, count: 1 }));
    const data = seededBytes(4 * MiB, 5);
    await writeFile(m.host('src.bin'), data);
    await fails(`dd if='${m.host('src.bin')}' of='${m.at('once.bin')}' bs=1M conv=fsync`, 60_000);
    await sh(`dd if='${m.host('src.bin')}' of='${m.at('once.bin')}' bs=1M conv=fsync status=none`);
    expect(sha256(await readFile(m.at('once.bin')))).toBe(sha256(data));
    await rm(plan);
    await m.dispose();
  });
});
