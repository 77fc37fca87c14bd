#!/usr/bin/env node
/**
 * The `sefs` command: finds the subcommand in the registry, parses its arguments with its table and runs it.
 * Errors end as one line and a non-zero exit (stack traces with --debug or SEFS_DEBUG=1); a reader that goes
 * away (`sefs fsck V | head -1`) ends it quietly with status 0, as other Unix tools.
 */
import { describeError, exitCodeOf } from './errors.js';
import { commands } from './registry.js';
import { parseCommand } from './args.js';
import { versionText } from './version.js';

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: sefs <command> [options]',
    '       sefs VAULT MOUNTPOINT [-o OPTIONS]   (as mount.fuse runs it: the same as sefs mount; VAULT holds a /)',
    '',
    'commands:',
    ...lines,
    '',
    "Run 'sefs <command> --help' for a command's options; --debug (anywhere) shows stack traces with errors.",
  ].join('\n');
}

// stdout closed by its reader: the output is not wanted any more. Anything else on it is one error line.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    if (stream === process.stdout) process.stderr.write(`sefs: cannot write to stdout: ${err.message}\n`);
    process.exit(1);
  });
}

let debug = process.env.SEFS_DEBUG === '1';

function fail(err: unknown): number {
  process.stderr.write(`sefs: ${describeError(err)}\n`);
  if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return exitCodeOf(err);
}

async function main(argv: string[]): Promise<number> {
  const cut = argv.indexOf('--');
  const head = cut < 0 ? argv : argv.slice(0, cut);
  if (head.includes('--debug')) debug = true;
  const [name, ...rest] = [...head.filter((a) => a !== '--debug'), ...(cut < 0 ? [] : argv.slice(cut))];
  if (name === undefined) {
    process.stderr.write(help() + '\n');
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(versionText());
    return 0;
  }
  // mount.fuse runs `sefs VAULT MNT -o OPTS` for fstab's type fuse.sefs: a path where the command goes is a mount.
  if (!Object.hasOwn(commands, name) && name.includes('/')) return main(['mount', ...argv]);
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(`sefs: unknown command '${name}' (see 'sefs --help')\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage.trimEnd() + '\n');
    return 0;
  }
  try {
    return (await command.run(parseCommand(name, rest, command.options, command.operands))) ?? 0;
  } catch (err) {
    return fail(err);
  }
}

// A stray error outside a command's promise is still one line (and a stack only with --debug).
process.on('uncaughtException', (err) => process.exit(fail(err)));
// exitCode rather than exit(): stdout may still be draining into a pipe.
process.exitCode = await main(process.argv.slice(2));
