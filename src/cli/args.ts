/**
 * The argument table of every command and the one parser that reads it. Each command declares its options and
 * operands once (command.ts); main.ts parses with them and `sefs completion` generates the shell completion
 * from them, so the two cannot drift apart. Bad arguments become a UsageError (exit code 2, one line).
 */
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What the shell completes for an option's value or an operand. */
export type Completion = 'file' | 'dir' | 'none' | readonly string[];

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** One line for completion menus (zsh shows it). */
  readonly help: string;
  /** The value's completion (string options; default 'none'). */
  readonly complete?: Completion;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** An operand: its name in usage lines and what the shell completes for it. */
export interface OperandSpec {
  readonly name: string;
  readonly complete: Completion;
}

type Values<T extends OptionTable> = {
  [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : T[K]['multiple'] extends true ? string[] : string;
};

export interface Parsed<T extends OptionTable = OptionTable> {
  values: Values<T>;
  operands: string[];
}

/**
 * Parse `args` of command `name` against its table. A string option followed by a negative number takes it as its
 * value (parseArgs would call it ambiguous), so that the range check can say what is allowed.
 */
export function parseCommand<T extends OptionTable>(name: string, args: string[], options: T, operands: readonly OperandSpec[]): Parsed<T> {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const key = a.startsWith('--') ? a.slice(2) : undefined;
    if (key && options[key]?.type === 'string' && /^-\d/.test(args[i + 1] ?? '')) joined.push(`${a}=${args[++i]}`);
    else joined.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: joined, options: options as Record<string, OptionSpec>, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(parseErrorText(name, err as Error & { code?: string }));
  }
  const pos = parsed.positionals;
  const names = operands.map((o) => o.name);
  if (pos.length < names.length) throw new UsageError(`missing ${names.slice(pos.length).join(' ')}`);
  if (pos.length > names.length) throw new UsageError(`unexpected argument '${pos[names.length]}'`);
  return { values: parsed.values as Values<T>, operands: pos };
}

/** parseArgs's messages are long and quote unevenly: say it in one short line. */
function parseErrorText(command: string, err: Error & { code?: string }): string {
  const flag = /'(-[^' ]+)/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${flag}' for sefs ${command} (see 'sefs ${command} --help')`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message) ? `${flag} needs a value` : `${flag} takes no value`;
    default:
      return err.message;
  }
}

/** A required option's value. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** An integer option in [min, max] (the range is in the message), or `fallback` when absent. */
export function intOption(value: string | undefined, flag: string, min: number, max: number, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** A byte offset or length: 0 to 2^53 - 1. */
export const byteCount = (value: string | undefined, flag: string, fallback?: number): number | undefined =>
  intOption(value, flag, 0, Number.MAX_SAFE_INTEGER, fallback);

/** Worker threads: 1 to 256 (default: one per core). */
export const threadCount = (value: string | undefined): number | undefined => intOption(value, '--threads', 1, 256);

/** A cache size in MiB: 1 MiB to 1 TiB. */
export const cacheMb = (value: string | undefined, flag = '--cache-mb'): number | undefined => intOption(value, flag, 1, 1024 * 1024);
