/**
 * `sefs completion bash|zsh`: the scripts parse in their shell, name every command and every option of the
 * argument tables the CLI parses with, and bash really completes with them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../src/cli/registry.js';
import { CLI, ensureBuiltCli } from './helpers/build.js';

let dir: string;
const script: Record<string, string> = {};

beforeAll(async () => {
  ensureBuiltCli();
  dir = await mkdtemp(join(tmpdir(), 'sefs-completion-'));
  for (const shell of ['bash', 'zsh']) {
    const r = spawnSync(process.execPath, [CLI, 'completion', shell], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    script[shell] = r.stdout;
    await writeFile(join(dir, `sefs.${shell}`), r.stdout);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every command's options as the user types them. */
const flags = (name: string) => Object.entries(commands[name]!.options).map(([o]) => `--${o}`);

describe.each(['bash', 'zsh'])('%s completion', (shell) => {
  it('parses (-n) in its shell', () => {
    const r = spawnSync(shell, ['-n', join(dir, `sefs.${shell}`)], { encoding: 'utf8' });
    expect(r.error, `${shell} is needed (scripts/setup.sh installs it)`).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('names every command and every option of each', () => {
    for (const name of Object.keys(commands)) {
      expect(script[shell]).toMatch(new RegExp(`^\\s+'?${name}[):]`, 'm'));
      for (const flag of flags(name)) expect(script[shell], `${name} ${flag}`).toContain(flag);
    }
  });
});

describe('bash completes with the tables', () => {
  /** What bash's completion function offers for the words typed so far (the last one being completed). */
  function complete(...words: string[]): string[] {
    const line = `sefs ${words.join(' ')}`;
    const r = spawnSync(
      'bash',
      ['-c', `source ${join(dir, 'sefs.bash')}; COMP_WORDS=(sefs ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; COMP_LINE='${line}'; _sefs; printf '%s\\n' "\${COMPREPLY[@]}"`],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter(Boolean).sort();
  }

  it('commands, options, choices of a value', () => {
    expect(complete('')).toEqual([...Object.keys(commands), '--debug', '--help', '--version'].sort());
    expect(complete('mo')).toEqual(['mount']);
    expect(complete('mount', 'v', 'm', '--re')).toEqual(['--read-only']);
    expect(complete('init', 'v', '--profile', '')).toEqual(['compat', 'fast', 'selective']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh']);
    expect(complete('fsck', '--')).toEqual([...flags('fsck'), '--help'].sort());
  });
});
