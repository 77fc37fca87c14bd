/**
 * Large files written sequentially with big writes (dd bs=1M): exact read-back in the same mount and
 * after a remount (from the vault); a 200 MiB file written with conv=fsync.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { disposeAll, fuseSuite, MiB, requireTools, run, sh, sha256File, TestMount } from './helpers.js';

fuseSuite();

let m: TestMount;
beforeAll(async () => {
  requireTools('dd', 'head', 'sha256sum');
  m = await TestMount.create('large');
});
beforeEach(() => m.ensureMounted());
afterAll(disposeAll);

/** sha256 of a file by sha256sum (a separate process reading through the mount). */
async function sha256sum(path: string): Promise<string> {
  return (await run('sha256sum', [path])).stdout.split(' ')[0]!;
}

describe('dd bs=1M', () => {
  it('files over 3 MiB written with 1 MiB writes read back exactly', async () => {
    const sizes = [3 * MiB + 1, 4 * MiB, 7 * MiB + 12345, 40 * MiB + 3]; // 40 MiB: more than the 32 MiB kept in memory per file
    const want: Record<string, string> = {};
    for (const size of sizes) {
      const src = m.host(`dd-${size}.bin`);
      await sh(`head -c ${size} /dev/urandom > "${src}"`);
      want[size] = await sha256File(src);
      await run('dd', [`if=${src}`, `of=${m.at(`dd-${size}.bin`)}`, 'bs=1M', 'status=none']);
      expect(await sha256sum(m.at(`dd-${size}.bin`)), `${size} bytes`).toBe(want[size]);
    }
    await m.remount();
    for (const size of sizes) expect(await sha256sum(m.at(`dd-${size}.bin`)), `${size} bytes after remount`).toBe(want[size]);
  });

  it('four dd processes writing four files at once', async () => {
    const names = [0, 1, 2, 3].map((i) => `parallel-${i}.bin`);
    await sh(names.map((n, i) => `head -c ${8 * MiB + i * 4097} /dev/urandom > "${m.host(n)}"`).join('\n'));
    await sh(names.map((n) => `dd if="${m.host(n)}" of="${m.at(n)}" bs=1M status=none &`).join('\n') + '\nwait');
    for (const n of names) expect(await sha256sum(m.at(n)), n).toBe(await sha256sum(m.host(n)));
  });

  it('a 200 MiB file written with dd conv=fsync reads back equal', async () => {
    const src = m.host('big.bin');
    await sh(`head -c ${200 * MiB} /dev/urandom > "${src}"`);
    const want = await sha256sum(src);
    await run('dd', [`if=${src}`, `of=${m.at('big.bin')}`, 'bs=1M', 'conv=fsync', 'status=none']);
    expect(await sha256sum(m.at('big.bin'))).toBe(want);
    await m.remount();
    expect(await sha256sum(m.at('big.bin'))).toBe(want);
    expect((await m.chunkNames()).length).toBeGreaterThanOrEqual(200);
  });
});
