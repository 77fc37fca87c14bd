#!/usr/bin/env node
/** The `sefs` command: finds the subcommand in the registry and runs it; errors end as one line and a non-zero exit. */
import './threadpool.js';
import { readFileSync } from 'node:fs';
import { describeError, exitCodeOf } from './errors.js';
import { commands } from './registry.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: sefs <command> [options]', '', 'commands:', ...lines, '', "Run 'sefs <command> --help' for a command's options."].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(help() + '\n');
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(version() + '\n');
    return 0;
  }
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
    return (await command.run(rest)) ?? 0;
  } catch (err) {
    process.stderr.write(`sefs: ${describeError(err)}\n`);
    if (process.env.SEFS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}

// exitCode rather than exit(): stdout may still be draining into a pipe.
process.exitCode = await main(process.argv.slice(2));
