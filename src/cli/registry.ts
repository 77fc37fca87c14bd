/**
 * The `sefs` subcommands, by name, in the order `sefs --help` lists them.
 * To add one: write src/cli/commands/<name>.ts exporting `summary`, `usage` and `run` (see command.ts),
 * then add one import line and one entry below.
 */
import type { Command } from './command.js';
import * as cat from './commands/cat.js';
import * as completion from './commands/completion.js';
import * as decrypt from './commands/decrypt.js';
import * as encrypt from './commands/encrypt.js';
import * as fsck from './commands/fsck.js';
import * as gc from './commands/gc.js';
import * as init from './commands/init.js';
import * as mount from './commands/mount.js';
import * as passwd from './commands/passwd.js';
import * as stats from './commands/stats.js';
import * as umount from './commands/umount.js';

export const commands: Readonly<Record<string, Command>> = {
  init,
  mount,
  umount,
  fsck,
  gc,
  stats,
  passwd,
  encrypt,
  decrypt,
  cat,
  completion,
};
