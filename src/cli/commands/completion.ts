/** sefs completion bash|zsh: print the shell completion script (generated from the argument tables). */
import { type Parsed, UsageError } from '../args.js';
import { bashCompletion, zshCompletion } from '../completion.js';
import { commands } from '../registry.js';

export const summary = 'print the bash or zsh completion script';
export const usage = `usage: sefs completion bash|zsh

Prints a completion script for the shell:
  bash:  sefs completion bash > /etc/bash_completion.d/sefs     (or: source <(sefs completion bash))
  zsh:   sefs completion zsh > "\${fpath[1]}/_sefs"              (or: source <(sefs completion zsh))
`;

export const options = {} as const;
export const operands = [{ name: 'SHELL', complete: ['bash', 'zsh'] }] as const;

export async function run({ operands: [shell] }: Parsed<typeof options>): Promise<void> {
  if (shell === 'bash') process.stdout.write(bashCompletion(commands));
  else if (shell === 'zsh') process.stdout.write(zshCompletion(commands));
  else throw new UsageError(`no completion for shell '${shell}': bash or zsh`);
}
