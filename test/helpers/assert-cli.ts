/** Checks the CLI tests share: a refusal is one clear line, and "nothing was written" compares snapshots. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Every path under `root` with its mtime and size: "nothing changed" compares two of these. */
export function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      out.push(`${p} ${st?.mtimeMs} ${st?.size}`);
      if (st?.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

/** A refusal: exit code 1 and one line on stderr, matching `pattern`. */
export function oneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/^sefs: [^\n]+\n$/);
  expect(r.stderr).toMatch(pattern);
}
