/** The built CLI for tests that run it as a user does. `npm test` builds first; a direct `vitest run` may find dist/ stale. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const CLI = join(ROOT, 'dist/cli/main.js');

/** Newest modification time of the files under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Rebuild dist/ when it is missing or older than src/ (tsc emits even when some module has type errors). */
export function ensureBuiltCli(): void {
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < newestSource(join(ROOT, 'src'))) {
    spawnSync('npx', ['tsc', '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'ignore' });
  }
  if (!existsSync(CLI)) throw new Error('dist/cli/main.js is missing: run npm run build');
}
