/** Argument helpers shared by the commands: bad arguments become a UsageError (exit code 2, one line). */
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type ParseConfig = Parameters<typeof parseArgs>[0] & {};

/** node:util parseArgs in strict mode with positionals allowed; its TypeErrors become UsageErrors. */
export function parseCommandArgs<const T extends ParseConfig>(config: T): ReturnType<typeof parseArgs<T & { strict: true; allowPositionals: true }>> {
  try {
    return parseArgs({ ...config, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Exactly `names.length` positionals, named in the error when some are missing or extra. */
export function positionals(values: string[], names: string[]): string[] {
  if (values.length < names.length) throw new UsageError(`missing ${names.slice(values.length).join(' ')}`);
  if (values.length > names.length) throw new UsageError(`unexpected argument '${values[names.length]}'`);
  return values;
}

/** A required option's value. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** A non-negative integer option (byte offsets and lengths), or `fallback` when absent. */
export function nonNegativeInt(value: string | undefined, flag: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`${flag} must be a non-negative integer, got '${value}'`);
  return Number(value);
}
