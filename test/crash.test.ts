/**
 * Crash safety through a real mount: the daemon is SIGKILLed at random moments while a writer rewrites,
 * appends to, truncates, patches and renames files with fsync; after each remount every file must hold its
 * last fsynced state or a state the writer had started, and no temporary file may show. The full 100-round
 * version is `node scripts/crash-test.mjs`.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JS module shared with the script
import { runCrashTest } from '../scripts/crash-test.mjs';

describe('crash safety', () => {
  it('survives 20 SIGKILLs of the mount with every file in its old or new state', async () => {
    expect(existsSync('/dev/fuse'), '/dev/fuse is missing: FUSE is unavailable on this machine').toBe(true);
    const counts = (await runCrashTest({ rounds: 20, log: () => {} })) as {
      rounds: number;
      filesChecked: number;
      failures: string[];
    };
    expect(counts.failures).toEqual([]);
    expect(counts.rounds).toBe(20);
    // Four files a round, fewer in a round whose kill cut the writer's first creations short.
    expect(counts.filesChecked).toBeGreaterThanOrEqual(20 * 3);
  }, 900_000);
});
