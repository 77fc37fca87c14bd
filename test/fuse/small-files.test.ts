/**
 * Small files are packed: a file up to PACK_LIMIT keeps its three encrypted chunks inside its metadata
 * entry (one file in the vault instead of four), with the reference algorithm's DataMap and chunk bytes.
 * Growing past the limit moves it to the chunk store; shrinking back packs it again and frees its chunks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decrypt, encrypt } from '../../src/lib/index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { PACK_LIMIT, decodeEntry } from '../../src/vault/meta-entry.js';
import { KiB, TestMount, codeOf, disposeAll, fuseSuite, seededBytes, sleep, writeFileSynced as writeFile } from './helpers.js';

fuseSuite();

let m: TestMount;
beforeAll(async () => {
  m = await TestMount.create('small');
});
afterAll(() => disposeAll());

const entryOf = async (name: string) => decodeEntry(await readFile(join(m.vault, 'meta', name)));

/** Wait until the chunk store holds exactly `n` chunks (reclamation runs a moment after a change). */
async function chunksBecome(n: number, ms = 20_000): Promise<number> {
  let now = (await m.chunkNames()).length;
  for (let waited = 0; now !== n && waited < ms; waited += 250) {
    await sleep(250);
    now = (await m.chunkNames()).length;
  }
  return now;
}

describe('packed small files', () => {
  it('store no chunk file, read back exact after a remount, and carry the reference chunks', async () => {
    const sizes = [3, 100, 2 * KiB, 64 * KiB, PACK_LIMIT];
    const data = sizes.map((size, i) => seededBytes(size, 40 + i));
    for (const [i, d] of data.entries()) await writeFile(m.at(`s${i}`), d);
    await m.remount();
    expect(await m.chunkNames()).toEqual([]);
    for (const [i, d] of data.entries()) expect((await readFile(m.at(`s${i}`))).equals(d), `size ${sizes[i]}`).toBe(true);
    // The DataMap and chunk bytes are the reference algorithm's: the library makes the same ones.
    const entry = await entryOf('s2');
    expect(entry.kind === 'map' && entry.packed?.length).toBe(3);
    const reference = encrypt(data[2]!, { profile: 'selective' }); // the vault's default profile
    if (entry.kind !== 'map') throw new Error('not a map entry');
    expect(entry.dataMap.chunks.map((c) => c.dstHash.toString('hex'))).toEqual(reference.dataMap.chunks.map((c) => c.dstHash.toString('hex')));
    const packed = new MemoryStore();
    for (const [i, c] of entry.dataMap.chunks.entries()) await packed.put(c.dstHash, entry.packed![i]!);
    expect((await decrypt(entry.dataMap, packed)).equals(data[2]!)).toBe(true);
  });

  it('grow past the limit into the chunk store and shrink back, freeing the chunks', async () => {
    const f = m.at('grows');
    const small = seededBytes(10 * KiB, 7);
    await writeFile(f, small);
    expect(await chunksBecome(0)).toBe(0);
    const big = seededBytes(PACK_LIMIT + 1, 8);
    await writeFile(f, big);
    const grown = await entryOf('grows');
    expect(grown.kind === 'map' && grown.packed === undefined).toBe(true);
    expect(await chunksBecome(3)).toBe(3);
    expect((await readFile(f)).equals(big)).toBe(true);
    await writeFile(f, small);
    expect(await chunksBecome(0)).toBe(0);
    await m.remount();
    expect((await readFile(f)).equals(small)).toBe(true);
    expect((await stat(f)).size).toBe(small.length);
  });

  it("a listing's read-ahead of its entries never shows a stale size or content", async () => {
    // Many entries, so the read-ahead a readdir starts is still running when a rewrite's commit lands.
    await mkdir(m.at('listed'));
    for (let i = 0; i < 300; i++) await writeFile(m.at('listed', `f${i}`), seededBytes(100 + (i % 50), i));
    await m.remount();
    const order = await readdir(m.at('listed'));
    const last = order[order.length - 1]!; // read ahead last, after the rewrite below has landed
    for (let round = 0; round < 5; round++) {
      const data = seededBytes(1000 + round * 37, 100 + round);
      const listed = readdir(m.at('listed'));
      await writeFile(m.at('listed', last), data);
      expect((await listed).length).toBe(300);
      await sleep(1100); // past the kernel's attribute cache: the stat asks the daemon
      expect((await stat(m.at('listed', last))).size, `round ${round}`).toBe(data.length);
      expect((await readFile(m.at('listed', last))).equals(data), `round ${round}`).toBe(true);
    }
  });

  it("a directory read in its listing's order has its next files decrypted ahead, and a file changed since reads as changed", async () => {
    const walked = await TestMount.create('siblings', { env: { SEFS_TRACE_OPS: '1' } });
    await mkdir(walked.at('d'));
    const content = new Map<string, Buffer>();
    for (let i = 0; i < 100; i++) {
      const data = seededBytes(100 + ((i * 97) % 3000), 500 + i);
      content.set(`f${i}`, data);
      await writeFile(walked.at('d', `f${i}`), data);
    }
    await walked.remount();
    const order = await readdir(walked.at('d'));
    expect(order.length).toBe(100);
    // Changed after the listing whose cached entries the read-ahead uses: ahead of the reader, and right after
    // the first file it opens.
    for (const name of [order[1]!, order[60]!]) {
      const data = seededBytes(2000, 900 + name.length);
      content.set(name, data);
      await writeFile(walked.at('d', name), data);
    }
    for (const name of order) expect((await readFile(walked.at('d', name))).equals(content.get(name)!), name).toBe(true);
    await walked.unmount();
    // The second mount's line (the log also holds the first mount's).
    const line = [...(await walked.log()).matchAll(/sibling reads: (\d+) small files decrypted ahead of their open, (\d+) of them opened after/g)].at(-1);
    expect(line, 'the op trace counts the files decrypted ahead').toBeDefined();
    expect(Number(line![1])).toBeGreaterThanOrEqual(90);
    expect(Number(line![2])).toBeGreaterThanOrEqual(90);
  });

  it('a damaged packed chunk is EIO on read, never wrong bytes, and the log names the file', async () => {
    const f = m.at('damaged');
    await writeFile(f, seededBytes(20 * KiB, 9));
    await m.unmount();
    const entryFile = join(m.vault, 'meta', 'damaged');
    const bytes = await readFile(entryFile);
    bytes[bytes.length - 100] ^= 1; // inside the last packed chunk (the entry's checksum follows it)
    await writeFile(entryFile, bytes);
    await m.mount();
    expect(await codeOf(readFile(f))).toBe('EIO');
    expect(await m.log()).toMatch(/damaged/);
    // Other files are unaffected.
    expect((await readdir(m.mnt)).includes('s0')).toBe(true);
    expect((await readFile(m.at('s0'))).length).toBe(3);
  });
});
