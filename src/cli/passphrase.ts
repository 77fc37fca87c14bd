/**
 * Where a sealed vault's passphrase comes from: a file, a file descriptor, or a prompt without echo on a terminal.
 * Each source is read once (a `<(...)` file or a pipe cannot be read twice): the mount reads it in the foreground
 * and hands the bytes to its daemon through a pipe.
 */
import { fstatSync, readFileSync } from 'node:fs';
import { SealError } from '../vault/seal.js';
import { type OptionTable, UsageError, intOption } from './args.js';

export const passphraseOptions = {
  'passphrase-file': { type: 'string', help: 'read the passphrase from a file (its bytes, without a trailing newline)', complete: 'file' },
  'passphrase-fd': { type: 'string', help: 'read the passphrase from an open file descriptor until end of file', complete: 'none' },
} as const satisfies OptionTable;

export const passphraseUsage = `  --passphrase-file F  the passphrase of a sealed vault: the file's bytes, without a trailing newline
  --passphrase-fd N    the same, read from file descriptor N (e.g. 3<secret or a pipe)
                       (a sealed vault without either asks for it on a terminal)`;

export interface PassphraseValues {
  'passphrase-file'?: string;
  'passphrase-fd'?: string;
}

/** Whether a passphrase source was given on the command line. */
export const hasPassphraseSource = (v: PassphraseValues): boolean => v['passphrase-file'] !== undefined || v['passphrase-fd'] !== undefined;

/**
 * The passphrase bytes from the source given. With none: when `ask` is set (the vault is sealed, or init seals
 * one) it is asked for on the terminal (twice when `ask.confirm`); without a terminal that is an error naming the
 * options; when `ask` is unset, undefined.
 */
export async function readPassphrase(v: PassphraseValues, ask?: { vault: string; confirm?: boolean }): Promise<Uint8Array | undefined> {
  const file = v['passphrase-file'];
  const fdText = v['passphrase-fd'];
  if (file !== undefined && fdText !== undefined) throw new UsageError('give the passphrase once: --passphrase-file or --passphrase-fd, not both');
  if (file !== undefined) return passphraseIn(file, `passphrase file ${file}`);
  if (fdText !== undefined) return passphraseIn(intOption(fdText, '--passphrase-fd', 0, 65535)!, `--passphrase-fd ${fdText}`);
  if (!ask) return undefined;
  if (!process.stdin.isTTY) {
    throw new SealError(`${ask.vault} ${ask.confirm ? 'is to be sealed' : 'is sealed'}: give its passphrase with --passphrase-file F or --passphrase-fd N (or run on a terminal to be asked)`);
  }
  const first = await prompt(`Passphrase for ${ask.vault}: `);
  if (first.length === 0) throw new UsageError('the passphrase is empty');
  if (ask.confirm && !first.equals(await prompt('Again, to confirm: '))) throw new UsageError('the two passphrases differ');
  return first;
}

/** The passphrase a file or descriptor holds, read once to its end: its bytes without one trailing newline. */
function passphraseIn(source: string | number, what: string): Buffer {
  let bytes: Buffer;
  try {
    if (typeof source === 'number') fstatSync(source); // EBADF for a descriptor not open (a read says EINVAL)
    bytes = readFileSync(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SealError(`cannot read ${what}: ${code === 'EBADF' ? 'the descriptor is not open' : (code ?? (err as Error).message)}`);
  }
  const end = bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? bytes.length - 2 : bytes.length - 1) : bytes.length;
  if (end < bytes.length) bytes.fill(0, end); // only the passphrase itself stays, to be zero-filled after use
  if (end === 0) throw new SealError(`${what} is empty`);
  return bytes.subarray(0, end);
}

/** One line from the terminal with echo off (raw mode): backspace edits, Ctrl-C or Ctrl-D on an empty line aborts. */
function prompt(question: string): Promise<Buffer> {
  const stdin = process.stdin;
  // Echo off before the question shows: what is typed as soon as it appears must not be echoed.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.resume();
  const bytes: number[] = [];
  return new Promise<Buffer>((resolve, reject) => {
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(Buffer.from(bytes));
    };
    const onData = (chunk: Buffer) => {
      for (const b of chunk) {
        if (b === 0x0d || b === 0x0a) return finish();
        if (b === 0x03 || (b === 0x04 && bytes.length === 0)) return finish(new UsageError('no passphrase given'));
        if (b === 0x7f || b === 0x08) {
          // Remove one character: its UTF-8 continuation bytes, then its lead byte.
          while (bytes.length && (bytes.at(-1)! & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else bytes.push(b);
      }
    };
    stdin.on('data', onData);
  });
}
