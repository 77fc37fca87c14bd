/**
 * What every `sefs` subcommand module exports. A module namespace (`import * as x from './commands/x.js'`)
 * satisfies it, so adding a command is one import and one entry in registry.ts.
 */
export interface Command {
  /** One line for the command list of `sefs --help`. */
  readonly summary: string;
  /** Full usage text, printed by `sefs <command> --help`. */
  readonly usage: string;
  /** Runs with the arguments after the command name; resolves to the exit code (0 when it returns nothing). */
  run(args: string[]): Promise<number | void>;
}
