/**
 * What every `sefs` subcommand module exports. A module namespace (`import * as x from './commands/x.js'`)
 * satisfies it, so adding a command is one import and one entry in registry.ts.
 */
import type { OperandSpec, OptionTable, Parsed } from './args.js';

export interface Command {
  /** One line for the command list of `sefs --help`. */
  readonly summary: string;
  /** Full usage text, printed by `sefs <command> --help`. */
  readonly usage: string;
  /** Its options: main.ts parses with this table and `sefs completion` generates from it. */
  readonly options: OptionTable;
  /** Its operands, in order. */
  readonly operands: readonly OperandSpec[];
  /** Runs with the parsed arguments; resolves to the exit code (0 when it returns nothing). */
  run(parsed: Parsed<any>): Promise<number | void>;
}
