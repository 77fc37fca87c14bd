/**
 * The compression profile of a vault, through the mount: `selective` (the default) stores text raw and
 * compresses only what shrinks to a third, `fast` compresses text. Either way the files read back exact after a
 * remount, small packed files included (a compressed one is decoded at its open).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEntry } from '../../src/vault/meta-entry.js';
import { textLike } from '../helpers/inputs.js';
import { KiB, MiB, TestMount, disposeAll, fuseSuite, writeFileSynced as writeFile } from './helpers.js';

fuseSuite();
afterAll(() => disposeAll());

/** Log lines: compress to about a tenth. */
function logLines(size: number): Buffer {
  let text = '';
  for (let i = 0; text.length < size; i++) text += `2026-12-03T17:${String(i % 60).padStart(2, '0')}:00Z INFO request ${i} served in ${i % 97} ms\n`;
  return Buffer.from(text).subarray(0, size);
}

const files = {
  'big.txt': textLike(3 * MiB + 5, 1),
  'log.txt': logLines(3 * MiB + 7),
  'small.txt': textLike(20 * KiB, 2),
  'tiny.txt': textLike(700, 3),
};

async function writeAndReadBack(profile: 'selective' | 'fast') {
  const m = await TestMount.create(`profile-${profile}`, { initArgs: ['--profile', profile] });
  expect(JSON.parse(await readFile(join(m.vault, 'sefs.json'), 'utf8')).profile).toBe(profile);
  const stored: Record<string, number> = {};
  for (const [name, data] of Object.entries(files)) {
    const before = await m.chunkBytes();
    await writeFile(m.at(name), data);
    stored[name] = (await m.chunkBytes()) - before;
  }
  await m.remount();
  for (const [name, data] of Object.entries(files)) expect((await readFile(m.at(name))).equals(data), name).toBe(true);
  // Packed small files: their chunks are inside the entry.
  const packed = async (name: string) => {
    const entry = decodeEntry(await readFile(join(m.vault, 'meta', name)));
    if (entry.kind !== 'map' || !entry.packed) throw new Error(`${name} is not packed`);
    return entry.packed.reduce((sum, c) => sum + c.length, 0);
  };
  return { stored, small: await packed('small.txt'), tiny: await packed('tiny.txt') };
}

describe('compression profiles through the mount', () => {
  it('selective: text stored raw, logs compressed to a third or less; all read back exact', async () => {
    const { stored, small, tiny } = await writeAndReadBack('selective');
    expect(stored['big.txt']).toBeGreaterThanOrEqual(files['big.txt'].length);
    expect(stored['log.txt']).toBeLessThanOrEqual(files['log.txt'].length / 3);
    expect(small).toBeGreaterThanOrEqual(files['small.txt'].length);
    expect(tiny).toBeGreaterThanOrEqual(files['tiny.txt'].length);
  });

  it('fast: text compressed, packed small files too; all read back exact', async () => {
    const { stored, small, tiny } = await writeAndReadBack('fast');
    expect(stored['big.txt']).toBeLessThan(files['big.txt'].length * 0.6);
    expect(stored['log.txt']).toBeLessThanOrEqual(files['log.txt'].length / 3);
    expect(small).toBeLessThan(files['small.txt'].length * 0.7);
    expect(tiny).toBeLessThan(files['tiny.txt'].length);
  });
});
