/**
 * The recording side of the power-loss test: builds the LD_PRELOAD shim (oplog.c) with the system C compiler,
 * gives the environment that makes a process record into a log, and parses that log.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const SHIM_SOURCE = join(here, 'oplog.c');

export const OP = {
  OPEN: 1,
  WRITE: 2,
  TRUNC: 3,
  FSYNC: 4,
  RENAME: 5,
  UNLINK: 6,
  MKDIR: 7,
  RMDIR: 8,
  LINK: 9,
  SYMLINK: 10,
  CLOSE: 11,
  MARK: 12,
} as const;
export type OpType = (typeof OP)[keyof typeof OP];
export const OP_NAME: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k.toLowerCase()]));

export interface OpRecord {
  /** Position in the order of the log (sorted by seq). */
  index: number;
  type: OpType;
  /** When the call completed (fsync: when it started; what it covers completed before this). */
  seq: number;
  /** fsync only: when it returned. */
  seq2: number;
  pid: number;
  tid: number;
  fd: number;
  flags: number;
  isDir: boolean;
  ino: number;
  /** write: offset; truncate: the new size. */
  offset: number;
  path: string;
  path2: string;
  data?: Buffer;
}

const HEADER = 4 + 1 + 1 + 2 + 4 + 4 + 8 + 8 + 4 + 4 + 4 + 4 + 8 + 8;

/** Parse a log file; records sorted by the sequence number that orders them. */
export function parseLog(file: string): OpRecord[] {
  const buf = readFileSync(file);
  const out: OpRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + HEADER > buf.length) throw new Error(`${file}: truncated record header at byte ${at}`);
    const total = buf.readUInt32LE(at);
    if (total < HEADER || at + total > buf.length) throw new Error(`${file}: bad record length ${total} at byte ${at}`);
    const type = buf.readUInt8(at + 4) as OpType;
    const isDir = buf.readUInt8(at + 5) !== 0;
    const len1 = buf.readUInt16LE(at + 6);
    const len2 = buf.readUInt32LE(at + 8);
    const dataLen = buf.readUInt32LE(at + 12);
    let p = at + 16;
    const seq = Number(buf.readBigUInt64LE(p));
    const seq2 = Number(buf.readBigUInt64LE(p + 8));
    const pid = buf.readInt32LE(p + 16);
    const tid = buf.readInt32LE(p + 20);
    const fd = buf.readInt32LE(p + 24);
    const flags = buf.readUInt32LE(p + 28);
    const ino = Number(buf.readBigUInt64LE(p + 32));
    const offset = Number(buf.readBigUInt64LE(p + 40));
    p = at + HEADER;
    const path = buf.toString('utf8', p, p + len1);
    p += len1;
    const path2 = buf.toString('utf8', p, p + len2);
    p += len2;
    const data = type === OP.WRITE ? buf.subarray(p, p + dataLen) : undefined;
    out.push({ index: 0, type, seq, seq2, pid, tid, fd, flags, isDir, ino, offset, path, path2, data });
    at += total;
  }
  out.sort((a, b) => a.seq - b.seq);
  out.forEach((r, i) => (r.index = i));
  return out;
}

/** One line per record, for reports and debugging. */
export function describe(r: OpRecord, root = ''): string {
  const rel = (p: string) => (root && p.startsWith(root) ? p.slice(root.length) || '/' : p);
  const who = `${r.pid}/${r.tid}`;
  switch (r.type) {
    case OP.WRITE:
      return `#${r.index} seq ${r.seq} ${who} write ${rel(r.path)} @${r.offset} +${r.data!.length}`;
    case OP.TRUNC:
      return `#${r.index} seq ${r.seq} ${who} truncate ${rel(r.path)} to ${r.offset}`;
    case OP.FSYNC:
      return `#${r.index} seq ${r.seq}..${r.seq2} ${who} ${r.flags ? 'fdatasync' : 'fsync'} ${r.isDir ? 'dir ' : ''}${rel(r.path)}`;
    case OP.RENAME:
    case OP.LINK:
      return `#${r.index} seq ${r.seq} ${who} ${OP_NAME[r.type]} ${rel(r.path)} -> ${rel(r.path2)}`;
    case OP.SYMLINK:
      return `#${r.index} seq ${r.seq} ${who} symlink ${rel(r.path2)} -> ${r.path}`;
    case OP.MARK:
      return `#${r.index} seq ${r.seq} ${who} MARK ${r.path}`;
    case OP.OPEN:
      return `#${r.index} seq ${r.seq} ${who} open ${rel(r.path)} flags 0${r.flags.toString(8)} fd ${r.fd}`;
    case OP.CLOSE:
      return `#${r.index} seq ${r.seq} ${who} close ${rel(r.path)} fd ${r.fd}`;
    default:
      return `#${r.index} seq ${r.seq} ${who} ${OP_NAME[r.type]} ${rel(r.path)}`;
  }
}

/**
 * Compile the shim into `dir` (cc from the PATH); throws, saying what to install, when there is no compiler.
 * Returns the .so path.
 */
export function buildShim(dir: string): string {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
  if (!cc) throw new Error('no C compiler (cc, gcc or clang) on the PATH: the power-loss test compiles its LD_PRELOAD shim; install gcc (scripts/setup.sh does)');
  const out = join(dir, 'oplog.so');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(SHIM_SOURCE).mtimeMs) return out;
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', '-o', out, SHIM_SOURCE, '-ldl'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

export interface Recording {
  /** The log the shim appends to. */
  log: string;
  /** The shared sequence counter. */
  seqFile: string;
  /** Prefix of the marker paths. */
  markPrefix: string;
}

/** A fresh log and counter in `dir`. */
export function newRecording(dir: string): Recording {
  const rec = { log: join(dir, 'oplog.bin'), seqFile: join(dir, 'oplog.seq'), markPrefix: join(dir, 'MARK:') };
  writeFileSync(rec.log, '');
  // Sequence numbers start at 1 (0 means "none").
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64LE(1n);
  writeFileSync(rec.seqFile, seq);
  return rec;
}

/** Environment that makes a process (and its children) record operations under `root`. */
export function shimEnv(shim: string, rec: Recording, root: string): Record<string, string> {
  return {
    LD_PRELOAD: shim,
    OPLOG_ROOT: root,
    OPLOG_FILE: rec.log,
    OPLOG_SEQ: rec.seqFile,
    OPLOG_MARK: rec.markPrefix,
    // libuv may submit file operations through io_uring, where no libc call is made: keep them in libc.
    UV_USE_IO_URING: '0',
  };
}
