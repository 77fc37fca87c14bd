/**
 * The replayer of the power-loss test: from a snapshot of the vault taken before the workload and the log of
 * every file operation the daemon made on it (oplog.ts), the on-disk state a power loss at a chosen point
 * could leave, under a crash model (native-notes/power-loss.md).
 *
 * Files, directories and symlinks are inodes; the namespace is a map per directory inode. One pass over the
 * log resolves every operation's paths against the namespace as it really was (the "real" tree), so that an
 * operation is known by the inodes it touched. A crash state for cut `c` (the operations with seq < c
 * happened, later ones did not) then starts from the snapshot and applies, in order, the operations that
 * are durable at the cut plus the volatile ones the variant keeps:
 *   - a write or truncate is durable when an fsync/fdatasync of its inode started after it and returned
 *     before the cut;
 *   - a namespace operation (create, mkdir, symlink, link, unlink, rmdir, rename) is durable, in the `posix`
 *     model, when an fsync of its directory (for a rename: the destination's) started after it and returned
 *     before the cut; in the `journal` model (ext4 data=ordered-like) when any fsync did.
 * The same inode numbers come back in the log (every open carries one), so a log that does not match the
 * model (an operation the shim missed) is an error, not a silent wrong replay.
 */
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { OP, type OpRecord, describe } from './oplog.js';
import { prng } from '../helpers/inputs.js';

export type Kind = 'file' | 'dir' | 'symlink';

export interface SnapshotEntry {
  /** Relative to the root ('' for the root). */
  path: string;
  kind: Kind;
  ino: number;
  content?: Buffer;
  target?: string;
}

/** The vault as it is now (taken before the recorded run, with nothing writing to it). */
export function takeSnapshot(root: string): SnapshotEntry[] {
  const out: SnapshotEntry[] = [];
  const walk = (rel: string): void => {
    const abs = rel ? join(root, rel) : root;
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      out.push({ path: rel, kind: 'dir', ino: st.ino });
      for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
    } else if (st.isSymbolicLink()) out.push({ path: rel, kind: 'symlink', ino: st.ino, target: readlinkSync(abs) });
    else if (st.isFile()) out.push({ path: rel, kind: 'file', ino: st.ino, content: readFileSync(abs) });
  };
  walk('');
  return out;
}

interface Inode {
  id: number;
  kind: Kind;
  ino: number;
  base: Buffer;
  target?: string;
}

export type NsOp =
  | { t: 'add'; dir: number; name: string; inode: number }
  | { t: 'remove'; dir: number; name: string; inode: number }
  /** `swapped`: an exchange (renameat2 RENAME_EXCHANGE): the source name gets the inode the destination had. */
  | { t: 'rename'; srcDir: number; srcName: string; dstDir: number; dstName: string; inode: number; swapped?: number };

/** renameat2's flags the model knows. */
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

/**
 * What `op` leaves under `name` in directory `dir`: the inode it puts there, undefined when it removes the name,
 * null when it does not touch that name.
 */
export function namedBy(op: NsOp, dir: number, name: string): number | undefined | null {
  if (op.t !== 'rename') return op.dir === dir && op.name === name ? (op.t === 'add' ? op.inode : undefined) : null;
  if (op.dstDir === dir && op.dstName === name) return op.inode;
  if (op.srcDir === dir && op.srcName === name) return op.swapped;
  return null;
}

/** One state-changing operation of the log, resolved to inodes. */
export interface Event {
  rec: OpRecord;
  seq: number;
  kind: 'ns' | 'data';
  ns?: NsOp;
  /** data: the inode written or truncated. */
  inode?: number;
  /** The directory whose fsync makes a namespace operation durable (posix model). */
  syncDir?: number;
}

export interface SyncEvent {
  rec: OpRecord;
  inode: number;
  start: number;
  end: number;
}

export type Model = 'posix' | 'journal';
/**
 * What happens to operations that are not durable at the cut:
 *   lost: all dropped; kept: all kept; prefix: kept up to a random point of the log, dropped after it (what a
 *   strictly ordered file system leaves); random: each kept or dropped by a coin (posix only); torn: all kept
 *   but the last volatile write of each file cut to a random prefix of whole 512-byte sectors; zeros: writes dropped but the file sizes
 *   they made kept, the new bytes zero (a file system that persists sizes before data; posix only).
 */
export type Variant = 'lost' | 'kept' | 'prefix' | 'random' | 'torn' | 'zeros';

export const VARIANTS: Variant[] = ['lost', 'kept', 'prefix', 'random', 'torn', 'zeros'];

export interface CrashSpec {
  cut: number;
  model: Model;
  variant: Variant;
  seed: number;
  /**
   * An event kept whatever the variant says (the journal model keeps every namespace operation before it too,
   * as its journal would): "what if exactly this rename reached the disk first?"
   */
  pin?: number;
}

/** How a data operation was kept in a state. */
interface KeptData {
  ev: number;
  /** torn: only this many bytes of the write. */
  length?: number;
  /** zeros: the size effect without the bytes. */
  zeros?: boolean;
}

export type Fate = 'durable' | 'kept' | 'dropped' | 'torn' | 'zeros';

export { prng };

export class History {
  readonly inodes: Inode[] = [];
  readonly events: Event[] = [];
  readonly syncs: SyncEvent[] = [];
  readonly marks: OpRecord[] = [];
  /** The root directory's inode (always 0). */
  readonly rootId = 0;
  private readonly initial = new Map<number, Map<string, number>>();
  /** Where each inode was in the real tree when an operation touched it (for reports). */
  private readonly pathOf = new Map<number, string>();
  /** Highest seq of the log + 1: the cut after everything. */
  readonly end: number;

  constructor(
    readonly root: string,
    snapshot: SnapshotEntry[],
    readonly records: OpRecord[],
  ) {
    const real = new Map<number, Map<string, number>>();
    const byIno = new Map<number, number>();
    const newInode = (kind: Kind, ino: number, base: Buffer = Buffer.alloc(0), target?: string): number => {
      const id = this.inodes.length;
      this.inodes.push({ id, kind, ino, base, target });
      if (kind === 'dir') real.set(id, new Map());
      if (ino) byIno.set(ino, id);
      return id;
    };
    for (const e of snapshot) {
      const id = newInode(e.kind, e.ino, e.content, e.target);
      this.pathOf.set(id, e.path);
      if (e.path === '') {
        if (id !== this.rootId) throw new Error('snapshot must start with its root');
        continue;
      }
      const { dir, name } = this.resolveParent(real, e.path);
      real.get(dir)!.set(name, id);
    }
    for (const [dir, entries] of real) this.initial.set(dir, new Map(entries));

    const rel = (p: string): string => {
      if (p === root) return '';
      if (!p.startsWith(root + '/')) throw new Error(`path outside the recorded root: ${p}`);
      return p.slice(root.length + 1);
    };
    const lookup = (path: string): number | undefined => {
      const { dir, name } = this.resolveParent(real, path);
      return name === '' ? dir : real.get(dir)!.get(name);
    };
    const diverged = (r: OpRecord, why: string): Error => new Error(`the log does not match the model at ${describe(r, root)}: ${why}`);
    const inodeOfFd = (r: OpRecord): number => {
      const id = byIno.get(r.ino);
      if (id === undefined) throw diverged(r, `no known inode ${r.ino}`);
      return id;
    };

    for (const r of records) {
      const push = (e: Omit<Event, 'rec' | 'seq'>): void => {
        this.events.push({ rec: r, seq: r.seq, ...e });
      };
      switch (r.type) {
        case OP.MARK:
          this.marks.push(r);
          break;
        case OP.OPEN: {
          const path = rel(r.path);
          let id = lookup(path);
          if (id === undefined) {
            if (!(r.flags & 0o100)) throw diverged(r, 'opened a missing file without O_CREAT');
            id = newInode('file', r.ino);
            const { dir, name } = this.resolveParent(real, path);
            real.get(dir)!.set(name, id);
            this.pathOf.set(id, path);
            push({ kind: 'ns', ns: { t: 'add', dir, name, inode: id }, syncDir: dir });
          } else {
            const inode = this.inodes[id]!;
            if (inode.ino !== r.ino) throw diverged(r, `path has inode ${inode.ino} in the model, ${r.ino} on disk`);
            if (r.flags & 0o1000 && inode.kind === 'file') push({ kind: 'data', inode: id });
          }
          break;
        }
        case OP.WRITE:
        case OP.TRUNC: {
          const id = r.fd >= 0 ? inodeOfFd(r) : lookup(rel(r.path));
          if (id === undefined) throw diverged(r, 'truncate of a missing path');
          push({ kind: 'data', inode: id });
          break;
        }
        case OP.FSYNC:
          this.syncs.push({ rec: r, inode: inodeOfFd(r), start: r.seq, end: r.seq2 });
          break;
        case OP.MKDIR:
        case OP.SYMLINK: {
          const path = rel(r.type === OP.MKDIR ? r.path : r.path2);
          const { dir, name } = this.resolveParent(real, path);
          if (real.get(dir)!.has(name)) throw diverged(r, 'name exists already');
          const id = r.type === OP.MKDIR ? newInode('dir', r.ino) : newInode('symlink', r.ino, undefined, r.path);
          real.get(dir)!.set(name, id);
          this.pathOf.set(id, path);
          push({ kind: 'ns', ns: { t: 'add', dir, name, inode: id }, syncDir: dir });
          break;
        }
        case OP.LINK: {
          const from = lookup(rel(r.path));
          if (from === undefined) throw diverged(r, 'link of a missing file');
          const { dir, name } = this.resolveParent(real, rel(r.path2));
          real.get(dir)!.set(name, from);
          push({ kind: 'ns', ns: { t: 'add', dir, name, inode: from }, syncDir: dir });
          break;
        }
        case OP.UNLINK:
        case OP.RMDIR: {
          const { dir, name } = this.resolveParent(real, rel(r.path));
          const id = real.get(dir)!.get(name);
          if (id === undefined) throw diverged(r, 'removal of a missing name');
          real.get(dir)!.delete(name);
          push({ kind: 'ns', ns: { t: 'remove', dir, name, inode: id }, syncDir: dir });
          break;
        }
        case OP.RENAME: {
          if (r.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || r.flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) throw diverged(r, `renameat2 flags ${r.flags} are not modelled`);
          const src = this.resolveParent(real, rel(r.path));
          const dst = this.resolveParent(real, rel(r.path2));
          const id = real.get(src.dir)!.get(src.name);
          if (id === undefined) throw diverged(r, 'rename of a missing name');
          let swapped: number | undefined;
          if (r.flags & RENAME_EXCHANGE) {
            swapped = real.get(dst.dir)!.get(dst.name);
            if (swapped === undefined) throw diverged(r, 'exchange with a missing name');
            real.get(src.dir)!.set(src.name, swapped);
            this.pathOf.set(swapped, rel(r.path));
          } else real.get(src.dir)!.delete(src.name);
          real.get(dst.dir)!.set(dst.name, id);
          this.pathOf.set(id, rel(r.path2));
          // Durable with its destination's directory, as a rename (the source side of an exchange is tmp/'s).
          push({ kind: 'ns', ns: { t: 'rename', srcDir: src.dir, srcName: src.name, dstDir: dst.dir, dstName: dst.name, inode: id, swapped }, syncDir: dst.dir });
          break;
        }
        case OP.CLOSE:
          break;
        default:
          throw diverged(r, `unknown record type ${r.type}`);
      }
    }
    const last = records[records.length - 1];
    this.end = last ? Math.max(...records.map((r) => Math.max(r.seq, r.seq2))) + 1 : 1;
  }

  private resolveParent(real: Map<number, Map<string, number>>, path: string): { dir: number; name: string } {
    if (path === '') return { dir: this.rootId, name: '' };
    const parts = path.split('/');
    let dir = this.rootId;
    for (const part of parts.slice(0, -1)) {
      const next = real.get(dir)?.get(part);
      if (next === undefined || this.inodes[next]!.kind !== 'dir') throw new Error(`no directory ${part} on the way to ${path}`);
      dir = next;
    }
    return { dir, name: parts[parts.length - 1]! };
  }

  /** The path an inode had (last seen), for reports. */
  where(id: number): string {
    return '/' + (this.pathOf.get(id) ?? `?inode${id}`);
  }

  /** The renames that put a metadata entry in place (tmp/ -> meta/): a commit's last step, or a create's fresh inode. */
  commitRenames(): number[] {
    const out: number[] = [];
    this.events.forEach((e, i) => {
      if (e.rec.type === OP.RENAME && e.rec.path.startsWith(`${this.root}/tmp/`) && e.rec.path2.startsWith(`${this.root}/meta/`)) out.push(i);
    });
    return out;
  }

  /** Every cut worth a look: just after each sync returns and each rename, and just before each sync starts. */
  interestingCuts(): { cut: number; why: string }[] {
    const out: { cut: number; why: string }[] = [];
    for (const s of this.syncs) {
      out.push({ cut: s.end + 1, why: `after ${describe(s.rec, this.root)}` });
      out.push({ cut: s.start, why: `before ${describe(s.rec, this.root)}` });
    }
    for (const e of this.events) if (e.ns?.t === 'rename') out.push({ cut: e.seq + 1, why: `after ${describe(e.rec, this.root)}` });
    for (const m of this.marks) out.push({ cut: m.seq + 1, why: `after client ${m.path}` });
    return out;
  }

  /** The state a power loss at `spec.cut` leaves under the model and variant. */
  crash(spec: CrashSpec): CrashState {
    const { cut, model, variant } = spec;
    if (model === 'journal' && (variant === 'random' || variant === 'zeros')) throw new Error(`variant ${variant} is not one the journal model allows`);
    const lastSync = new Map<number, number>();
    let lastAny = 0;
    for (const s of this.syncs) {
      if (s.end >= cut) continue;
      lastSync.set(s.inode, Math.max(lastSync.get(s.inode) ?? 0, s.start));
      lastAny = Math.max(lastAny, s.start);
    }
    const rand = prng(spec.seed * 1_000_003 + cut * 16 + VARIANTS.indexOf(variant));
    const firstSeq = this.records[0]?.seq ?? 0;
    const prefixPoint = firstSeq + Math.floor(rand() * Math.max(1, cut - firstSeq));
    const fates: Fate[] = new Array(this.events.length);
    const ns = new Map<number, Map<string, number>>();
    for (const [dir, entries] of this.initial) ns.set(dir, new Map(entries));
    const dirOf = (id: number): Map<string, number> => {
      let m = ns.get(id);
      if (!m) ns.set(id, (m = new Map()));
      return m;
    };
    const kept = new Map<number, KeptData[]>();
    const lastVolatileWrite = new Map<number, number>();
    for (let i = 0; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (e.seq >= cut) break;
      let durable: boolean;
      if (e.kind === 'data') durable = e.seq < (lastSync.get(e.inode!) ?? 0);
      else durable = model === 'journal' ? e.seq < lastAny : e.seq < (lastSync.get(e.syncDir!) ?? 0);
      let fate: Fate;
      if (durable) fate = 'durable';
      else if (spec.pin !== undefined && (i === spec.pin || (model === 'journal' && e.kind === 'ns' && i < spec.pin))) fate = 'kept';
      else if (variant === 'lost') fate = 'dropped';
      else if (variant === 'kept' || variant === 'torn') fate = 'kept';
      else if (variant === 'prefix') fate = e.seq < prefixPoint ? 'kept' : 'dropped';
      else if (variant === 'random') fate = rand() < 0.5 ? 'kept' : 'dropped';
      else fate = e.kind === 'data' ? 'zeros' : 'kept'; // zeros
      fates[i] = fate;
      if (fate === 'dropped') continue;
      if (e.kind === 'data') {
        const list = kept.get(e.inode!) ?? [];
        list.push({ ev: i, zeros: fate === 'zeros' || undefined });
        kept.set(e.inode!, list);
        if (fate === 'kept' && e.rec.type === OP.WRITE) lastVolatileWrite.set(e.inode!, list.length - 1);
        continue;
      }
      const op = e.ns!;
      if (op.t === 'add') dirOf(op.dir).set(op.name, op.inode);
      else if (op.t === 'remove') dirOf(op.dir).delete(op.name);
      else {
        const src = dirOf(op.srcDir);
        if (op.swapped !== undefined) src.set(op.srcName, op.swapped);
        else if (src.get(op.srcName) === op.inode) src.delete(op.srcName);
        dirOf(op.dstDir).set(op.dstName, op.inode);
      }
    }
    if (variant === 'torn') {
      for (const [inode, at] of lastVolatileWrite) {
        const k = kept.get(inode)![at]!;
        const len = this.events[k.ev]!.rec.data!.length;
        // A tear keeps whole 512-byte sectors (a sector is written whole or not at all), never the whole write.
        k.length = Math.floor((rand() * len) / 512) * 512;
        fates[k.ev] = 'torn';
      }
    }
    return new CrashState(this, spec, ns, kept, fates);
  }
}

export class CrashState {
  private readonly contents = new Map<number, Buffer>();

  constructor(
    readonly history: History,
    readonly spec: CrashSpec,
    private readonly ns: Map<number, Map<string, number>>,
    private readonly kept: Map<number, KeptData[]>,
    readonly fates: Fate[],
  ) {}

  /** The inode at a relative path, if the state has one there. */
  lookup(path: string): number | undefined {
    let id = this.history.rootId;
    if (path === '') return id;
    for (const part of path.split('/')) {
      if (this.history.inodes[id]!.kind !== 'dir') return undefined;
      const next = this.ns.get(id)?.get(part);
      if (next === undefined) return undefined;
      id = next;
    }
    return id;
  }

  /** What directory inode `dir` holds under `name` in this state (whether or not the directory is reachable). */
  entryIn(dir: number, name: string): number | undefined {
    return this.ns.get(dir)?.get(name);
  }

  kind(id: number): Kind {
    return this.history.inodes[id]!.kind;
  }

  list(id: number): [string, number][] {
    return [...(this.ns.get(id) ?? new Map<string, number>())].sort(([a], [b]) => (a < b ? -1 : 1));
  }

  /** A file's bytes in this state. */
  read(id: number): Buffer {
    const cached = this.contents.get(id);
    if (cached) return cached;
    const inode = this.history.inodes[id]!;
    const ops = this.kept.get(id) ?? [];
    const events = this.history.events;
    let content: Buffer;
    const only = ops.length === 1 ? events[ops[0]!.ev]!.rec : undefined;
    if (only && only.type === OP.WRITE && only.offset === 0 && inode.base.length === 0 && ops[0]!.length === undefined && !ops[0]!.zeros) {
      content = only.data!; // the common case: a file written whole at once
    } else {
      let buf = Buffer.from(inode.base);
      let size = buf.length;
      const ensure = (n: number): void => {
        if (n <= buf.length) return;
        const bigger = Buffer.alloc(Math.max(n, buf.length * 2));
        buf.copy(bigger, 0, 0, size);
        buf = bigger;
      };
      for (const k of ops) {
        const r = events[k.ev]!.rec;
        if (r.type === OP.OPEN) {
          size = 0; // O_TRUNC
        } else if (r.type === OP.TRUNC) {
          if (r.offset > size) ensure(r.offset);
          if (r.offset > size) buf.fill(0, size, r.offset);
          size = r.offset;
        } else {
          const data = k.length === undefined ? r.data! : r.data!.subarray(0, k.length);
          const end = r.offset + (k.zeros ? r.data!.length : data.length);
          ensure(end);
          if (r.offset > size) buf.fill(0, size, r.offset);
          if (k.zeros) {
            if (end > size) buf.fill(0, Math.max(size, r.offset), end);
          } else data.copy(buf, r.offset);
          size = Math.max(size, end);
        }
      }
      content = buf.subarray(0, size);
    }
    this.contents.set(id, content);
    return content;
  }

  /** What identifies a file's bytes in this state without computing them (for caches). */
  signature(id: number): string {
    const ops = this.kept.get(id) ?? [];
    return `${id}:${ops.map((k) => `${k.ev}${k.length !== undefined ? 't' + k.length : ''}${k.zeros ? 'z' : ''}`).join(',')}`;
  }

  /**
   * Why `path` holds what it holds (or nothing): for each component, the last operation of the log that put a
   * name there (or removed it) before the cut, and its fate in this state.
   */
  explain(path: string): string[] {
    const h = this.history;
    const out: string[] = [];
    const parts = path.split('/');
    let id: number | undefined = h.rootId;
    for (let i = 0; i < parts.length && id !== undefined; i++) {
      const name = parts[i]!;
      const dir: number = id;
      // The operations of the log that named `name` in this directory, in order, up to the cut.
      const touching: number[] = [];
      h.events.forEach((e, j) => {
        if (e.seq >= this.spec.cut || e.kind !== 'ns') return;
        const op = e.ns!;
        if (namedBy(op, dir, name) !== null) touching.push(j);
      });
      id = this.ns.get(dir)?.get(name);
      const shown = touching.slice(-3).map((j) => `${describe(h.events[j]!.rec, h.root)} [${this.fateText(j)}]`);
      if (shown.length) out.push(`${parts.slice(0, i + 1).join('/')}: ${shown.join('; ')}`);
      else if (id === undefined) out.push(`${parts.slice(0, i + 1).join('/')}: never created before the cut`);
    }
    if (id !== undefined && this.kind(id) === 'file') {
      const ops = h.events.map((e, j) => ({ e, j })).filter(({ e }) => e.kind === 'data' && e.inode === id && e.seq < this.spec.cut);
      const lost = ops.filter(({ j }) => this.fates[j] !== 'durable' && this.fates[j] !== 'kept');
      if (lost.length) out.push(`${path}: ${lost.length} of ${ops.length} writes not in this state (${lost.slice(-2).map(({ e, j }) => `${describe(e.rec, h.root)} [${this.fateText(j)}]`).join('; ')})`);
    }
    return out;
  }

  /** A fate, with why a volatile operation was volatile (the fsync that would have made it durable). */
  fateText(j: number): string {
    const fate = this.fates[j];
    if (fate === 'durable' || fate === undefined) return fate ?? 'after the cut';
    const e = this.history.events[j]!;
    const needs = e.kind === 'data' ? `fsync of ${this.history.where(e.inode!)}` : this.spec.model === 'journal' ? 'any fsync' : `fsync of dir ${this.history.where(e.syncDir!)}`;
    return `${fate}: no ${needs} completed after it`;
  }

  /** Every file, directory and symlink reachable from the root, by relative path (for writing it out). */
  *walk(): Generator<{ path: string; id: number }> {
    const seen = new Set<number>();
    const stack: { path: string; id: number }[] = [{ path: '', id: this.history.rootId }];
    while (stack.length) {
      const node = stack.pop()!;
      yield node;
      if (this.kind(node.id) !== 'dir' || seen.has(node.id)) continue;
      seen.add(node.id);
      for (const [name, child] of this.list(node.id).reverse()) stack.push({ path: node.path ? `${node.path}/${name}` : name, id: child });
    }
  }

  symlinkTarget(id: number): string {
    return this.history.inodes[id]!.target ?? '';
  }
}
