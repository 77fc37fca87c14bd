/**
 * The checker of the power-loss test: which states each file may be in at a cut (from the client's journal
 * and its marks in the log), what a crash state holds for each file when the vault is opened with the
 * library (metadata entry decoded, chunks fetched by name and decrypted), and the violations.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { decrypt } from '../../src/lib/decrypt.js';
import { decodeStoredEntry } from '../../src/vault/meta-entry.js';
import { recordName } from '../../src/vault/hard-links.js';
import { plainCodec } from '../../src/vault/meta-codec.js';

/** A metadata file's entry as the mount and fsck read it (a zero-length file is an empty entry). */
const decodeEntry = (stored: Buffer) => decodeStoredEntry(stored, { openEntry: (b) => plainCodec.openEntry(b, { dir: new Uint8Array(0), name: '' }) });
import { OP, OP_NAME, type OpRecord } from './oplog.js';
import { type CrashState, type History, namedBy } from './model.js';

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
export const ABSENT = 'absent';
const EMPTY = sha256(Buffer.alloc(0));

export interface Step {
  /** A number for the main client's steps, "w0.3" for a concurrent worker's. */
  step: number | string;
  label: string;
  /** `lazy`: done without an fsync, so durable only later (write-back): until a later step is, any of its states may show. */
  files: Record<string, { may: string[]; done: string; lazy?: boolean }>;
  /** seq of the client's B and D marks. */
  begin: number;
  done: number;
}

/** The client's journals (its own and its concurrent workers'), each step with the seqs of its marks in the log, in the order they began. */
export function loadSteps(journalPath: string, marks: OpRecord[]): Step[] {
  const seqOf = new Map(marks.map((m) => [m.path, m.seq]));
  const text = [journalPath, `${journalPath}.w0`, `${journalPath}.w1`].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const s = JSON.parse(line) as Omit<Step, 'begin' | 'done'>;
      const begin = seqOf.get(`B${s.step}`);
      const done = seqOf.get(`D${s.step}`);
      if (begin === undefined || done === undefined) throw new Error(`step ${s.step} has no marks in the log`);
      return { ...s, begin, done };
    })
    .sort((a, b) => a.begin - b.begin);
}

export interface Allowed {
  states: Set<string>;
  /** A name for each allowed state ("after step 7: append ...", "absent"). */
  labels: Map<string, string>;
  /** The step whose outcome is required (the last one done before the cut). */
  lastDone?: Step;
  inFlight?: Step;
}

/** Per file: its state after the last step done before the cut, and the states of a step in flight at it. */
export function allowedAt(steps: Step[], cut: number): Map<string, Allowed> {
  const out = new Map<string, Allowed>();
  for (const s of steps) {
    for (const [file, f] of Object.entries(s.files)) {
      let a = out.get(file);
      if (!a) {
        a = { states: new Set([ABSENT]), labels: new Map([[ABSENT, 'absent (before its creation)']]) };
        out.set(file, a);
      }
      if (s.done < cut && f.lazy) {
        for (const m of [...f.may, f.done]) {
          if (a.states.has(m)) continue;
          a.states.add(m);
          a.labels.set(m, `step ${s.step} done without fsync: ${m === f.done ? 'its new state' : 'an earlier or intermediate state'} (${s.label})`);
        }
        a.inFlight = undefined;
      } else if (s.done < cut) {
        a.states = new Set([f.done]);
        a.labels = new Map([[f.done, f.done === ABSENT ? `absent (step ${s.step} done: ${s.label})` : `step ${s.step} done: ${s.label}`]]);
        a.lastDone = s;
        a.inFlight = undefined;
      } else if (s.begin < cut) {
        for (const m of f.may) {
          if (a.states.has(m)) continue;
          a.states.add(m);
          a.labels.set(m, `step ${s.step} in flight: ${m === EMPTY ? 'empty' : m === ABSENT ? 'absent' : m === f.done ? 'its new state' : 'an intermediate state'} (${s.label})`);
        }
        a.inFlight = s;
      }
    }
  }
  return out;
}

export interface FileRead {
  /** sha256 of the content, "absent", or "error". */
  state: string;
  size?: number;
  error?: string;
}

/** Reads files out of crash states with the library, caching by what the result depends on. */
export class StateReader {
  private readonly cache = new Map<string, FileRead>();
  hits = 0;
  misses = 0;

  /** A visible file (path relative to the mount's root) as a fresh mount of the state would serve it. */
  async read(state: CrashState, file: string): Promise<FileRead> {
    if (file.endsWith('/')) {
      const dir = state.lookup(`meta/${file.slice(0, -1)}`);
      if (dir === undefined) return { state: ABSENT };
      return state.kind(dir) === 'dir' ? { state: 'dir' } : { state: 'error', error: `a ${state.kind(dir)} where a directory should be` };
    }
    const id = state.lookup(`meta/${file}`);
    if (id === undefined) return { state: ABSENT };
    if (state.kind(id) !== 'file') return { state: 'error', error: `meta/${file} is a ${state.kind(id)}` };
    let entryBytes = state.read(id);
    let entry;
    try {
      entry = decodeEntry(entryBytes);
    } catch (err) {
      return { state: 'error', error: `metadata entry: ${(err as Error).message}` };
    }
    // A hard-link stub: the content is its record's (native-notes/hard-links.md).
    const link = entry.node?.link;
    if (link !== undefined) {
      const record = state.lookup(`links/${recordName(link)}`);
      if (record === undefined) return { state: 'error', error: `metadata entry: hard-link record ${recordName(link)} is missing` };
      entryBytes = state.read(record);
      try {
        entry = decodeEntry(entryBytes);
      } catch (err) {
        return { state: 'error', error: `metadata entry (hard-link record): ${(err as Error).message}` };
      }
    }
    if (entry.kind === 'inline') return { state: sha256(entry.data), size: entry.size };
    // A packed entry (small files) holds its chunks: nothing to look up in chunks/.
    const packed = new Map(entry.packed?.map((bytes, i) => [entry.dataMap.chunks[i]!.dstHash.toString('hex'), bytes]));
    const chunkIds = entry.dataMap.chunks.map((c) => {
      if (entry.packed) return undefined;
      const hex = c.dstHash.toString('hex');
      return state.lookup(`chunks/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`);
    });
    const key = sha256(entryBytes) + '|' + chunkIds.map((c) => (c === undefined ? '-' : state.signature(c))).join('|');
    const cached = this.cache.get(key);
    if (cached) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const byName = new Map(entry.dataMap.chunks.map((c, i) => [c.dstHash.toString('hex'), chunkIds[i]]));
    let result: FileRead;
    try {
      const content = await decrypt(entry.dataMap, (name) => {
        const hex = name.toString('hex');
        const chunk = byName.get(hex);
        return packed.get(hex) ?? (chunk === undefined ? null : state.read(chunk));
      });
      result = { state: sha256(content), size: content.length };
    } catch (err) {
      result = { state: 'error', error: `${(err as Error).name}: ${(err as Error).message}` };
    }
    this.cache.set(key, result);
    return result;
  }
}

export interface Violation {
  /** What made the state wrong, in one phrase (violations are grouped by it). */
  cause: string;
  cut: number;
  model: string;
  variant: string;
  /** The event pinned (kept whatever the variant), if any. */
  pin?: number;
  file: string;
  got: string;
  allowed: string[];
  why: string[];
}

/** Check every file the client journaled, and that meta/ shows nothing else (editor temps aside). */
export async function checkState(state: CrashState, steps: Step[], reader: StateReader): Promise<{ violations: Violation[]; reads: Map<string, FileRead> }> {
  const { cut, model, variant, pin } = state.spec;
  const allowed = allowedAt(steps, cut);
  const violations: Violation[] = [];
  const reads = new Map<string, FileRead>();
  const describeState = (r: FileRead): string => {
    if (r.state === 'error') return `unreadable (${r.error})`;
    if (r.state === ABSENT || r.state === 'dir') return r.state;
    return `${r.size} bytes, sha256 ${r.state.slice(0, 12)}`;
  };
  for (const [file, a] of allowed) {
    const r = await reader.read(state, file);
    reads.set(file, r);
    if (a.states.has(r.state)) continue;
    const known = findState(steps, file, r.state, cut);
    violations.push({
      cause: causeOf(state, file, r),
      cut,
      model,
      variant,
      pin,
      file,
      got: describeState(r) + (known ? ` = ${known}` : r.state === 'error' || r.state === ABSENT ? '' : ' (matches no state the client ever wrote)'),
      allowed: [...a.labels.values()],
      why: state.explain(`meta/${file.replace(/\/$/, '')}`).concat(r.state === 'error' ? explainChunks(state, file) : []),
    });
  }
  // Nothing else may show in the tree.
  const metaId = state.lookup('meta');
  if (metaId === undefined) violations.push({ cause: 'meta/ itself is missing', cut, model, variant, file: 'meta/', got: 'missing', allowed: ['present'], why: state.explain('meta') });
  else {
    const stack: [string, number][] = state.list(metaId).map(([n, id]) => [n, id]);
    while (stack.length) {
      const [path, id] = stack.pop()!;
      if (state.kind(id) === 'dir') {
        for (const [n, c] of state.list(id)) stack.push([`${path}/${n}`, c]);
        continue;
      }
      if (!allowed.has(path) && !path.endsWith('.tmp')) {
        violations.push({ cause: `a name in meta/ that should not be there: ${causeOfName(state, `meta/${path}`)}`, cut, model, variant, file: path, got: `an unexpected ${state.kind(id)} in the tree`, allowed: ['no such file'], why: state.explain(`meta/${path}`) });
      }
    }
  }
  return { violations, reads };
}

/** Which step left a file in `state` (for reports: "an older state" reads better than a hash); steps done before the cut first. */
function findState(steps: Step[], file: string, st: string, cut: number): string | undefined {
  const order = [...steps.filter((s) => s.done < cut).reverse(), ...steps.filter((s) => s.done >= cut)];
  for (const s of order) {
    if (s.files[file]?.done === st) return `the state after step ${s.step} (${s.label})`;
  }
  return undefined;
}

/** The operation that decides what `path` is in the state: the last one of the log that named it, and its fate. */
function lastNaming(state: CrashState, path: string): { j: number; text: string } | undefined {
  const h = state.history;
  const parts = path.split('/');
  // The first component that differs from the real tree at the cut decides.
  let dir: number | undefined = h.rootId;
  for (let i = 0; i < parts.length && dir !== undefined; i++) {
    const name = parts[i]!;
    let last = -1;
    h.events.forEach((e, j) => {
      if (e.seq >= state.spec.cut || e.kind !== 'ns') return;
      const op = e.ns!;
      if (namedBy(op, dir!, name) !== null) last = j;
    });
    if (last >= 0 && state.fates[last] === 'dropped') {
      const e = h.events[last]!;
      const op = e.rec.type === OP.MKDIR ? 'mkdir' : e.rec.type === OP.RENAME ? 'rename' : e.rec.type === OP.UNLINK ? 'unlink' : e.rec.type === OP.OPEN ? 'create' : OP_NAME[e.rec.type]!;
      return { j: last, text: `${op} in ${h.where(e.syncDir!)} not durable (${state.fateText(last)})` };
    }
    dir = state.lookup(parts.slice(0, i + 1).join('/'));
  }
  return undefined;
}

/**
 * Every operation on the way to `path` in the real tree (each component's last naming before the cut) that the
 * state dropped: a chunk lost with its directory's mkdir may also have had its own rename dropped.
 */
function droppedNamings(state: CrashState, path: string): string[] {
  const h = state.history;
  const out: string[] = [];
  let dir: number | undefined = h.rootId;
  for (const name of path.split('/')) {
    if (dir === undefined) break;
    let last = -1;
    h.events.forEach((e, j) => {
      if (e.seq >= state.spec.cut || e.kind !== 'ns') return;
      const op = e.ns!;
      if (namedBy(op, dir!, name) !== null) last = j;
    });
    if (last < 0) {
      dir = state.lookup(path.split('/').slice(0, path.split('/').indexOf(name) + 1).join('/'));
      continue;
    }
    const e = h.events[last]!;
    const op = e.ns!;
    // Only a dropped operation that left this directory without the name counts (an older durable rename of
    // the same chunk name may still provide it).
    const kind = e.rec.type === OP.MKDIR ? 'mkdir' : e.rec.type === OP.RENAME ? 'rename' : e.rec.type === OP.UNLINK ? 'unlink' : e.rec.type === OP.OPEN ? 'create' : OP_NAME[e.rec.type]!;
    if (state.fates[last] === 'dropped' && state.entryIn(dir, name) === undefined) out.push(`${kind} in ${h.where(e.syncDir!)} not durable`);
    // Follow the real tree: the inode this operation put under the name (none if it removed it).
    const left = namedBy(op, dir, name) ?? undefined;
    if (state.fates[last] !== 'dropped' && left === undefined) {
      out.push(`removed by the daemon (${kind} in ${h.where(e.syncDir!)}) while an entry in the state still names it`);
    }
    dir = left;
  }
  return out;
}

function causeOfName(state: CrashState, path: string): string {
  return lastNaming(state, path)?.text ?? 'no dropped operation names it (look at the log)';
}

/** One phrase for why a file reads as it does, from the fates of the operations behind it. */
function causeOf(state: CrashState, file: string, r: FileRead): string {
  const meta = `meta/${file.replace(/\/$/, '')}`;
  const id = state.lookup(meta);
  if (r.state === 'error' && r.error?.startsWith('metadata entry') && id !== undefined) {
    const h = state.history;
    const lost = h.events.some((e, j) => e.kind === 'data' && e.inode === id && e.seq < state.spec.cut && state.fates[j] !== 'durable' && state.fates[j] !== 'kept');
    if (lost) return `a metadata entry whose bytes were not fsynced was renamed into meta/ (${h.events.find((e) => e.kind === 'data' && e.inode === id)!.rec.path.slice(h.root.length)} written, never fsynced): the state holds it torn or zero-filled`;
    return 'metadata entry damaged though all its writes are in the state';
  }
  if (r.state === 'error' && /ChunkNotFound/.test(r.error ?? '') && id !== undefined) {
    let entry;
    try {
      entry = decodeEntry(state.read(id));
    } catch {
      return 'unreadable entry';
    }
    if (entry.kind === 'map') {
      // Every distinct reason among the missing chunks (one reason can hide another: a chunk directory lost
      // with its mkdir, and a chunk whose own rename was not durable yet).
      const reasons = new Set<string>();
      for (const c of entry.dataMap.chunks) {
        const hex = c.dstHash.toString('hex');
        const path = `chunks/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`;
        if (state.lookup(path) !== undefined) continue;
        const dropped = droppedNamings(state, path);
        for (const n of dropped) reasons.add(n.replace(/\/chunks\/[0-9a-f]{2}\/[0-9a-f]{2}/g, '/chunks/ab/cd').replace(/\/chunks\/[0-9a-f]{2}/g, '/chunks/ab'));
        if (!dropped.length) reasons.add('never written before the cut');
      }
      if (reasons.size) return `a chunk the durable entry names is missing: ${[...reasons].sort().join(' + ')}`;
    }
  }
  if (r.state === 'error' && id !== undefined) {
    let entry;
    try {
      entry = decodeEntry(state.read(id));
    } catch {
      entry = undefined;
    }
    if (entry?.kind === 'map') {
      const h = state.history;
      for (const c of entry.dataMap.chunks) {
        const hex = c.dstHash.toString('hex');
        const chunk = state.lookup(`chunks/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`);
        if (chunk === undefined) continue;
        const lost = h.events.some((e, j) => e.kind === 'data' && e.inode === chunk && e.seq < state.spec.cut && state.fates[j] !== 'durable' && state.fates[j] !== 'kept');
        if (lost) return 'a chunk file whose bytes were not fsynced is under its final name: it reads torn or empty';
      }
    }
  }
  const n = lastNaming(state, meta);
  if (n) return `the file's last name change: ${n.text.replace(/ \(.*/, '')}`;
  return r.state === 'error' ? `unreadable: ${r.error}` : 'wrong content with every naming operation in place (look at the entry and its chunks)';
}

/** For an unreadable file: which of its chunks are missing from the state, and why. */
function explainChunks(state: CrashState, file: string): string[] {
  const id = state.lookup(`meta/${file}`);
  if (id === undefined) return [];
  let entry;
  try {
    entry = decodeEntry(state.read(id));
  } catch {
    return [];
  }
  if (entry.kind !== 'map') return [];
  const out: string[] = [];
  for (const c of entry.dataMap.chunks) {
    const hex = c.dstHash.toString('hex');
    const path = `chunks/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`;
    if (state.lookup(path) === undefined) {
      out.push(`missing chunk ${hex.slice(0, 16)}...: ${state.explain(path).join(' | ')}`);
      if (out.length >= 2) break;
    }
  }
  return out;
}

/** The history's stats for reports. */
export function logStats(h: History): Record<string, number> {
  const count = (f: (r: OpRecord) => boolean) => h.records.filter(f).length;
  return {
    records: h.records.length,
    events: h.events.length,
    syncs: h.syncs.length,
    marks: h.marks.length,
    bytesWritten: h.records.reduce((n, r) => n + (r.data?.length ?? 0), 0),
    processes: new Set(h.records.map((r) => r.pid)).size,
    threads: new Set(h.records.filter((r) => r.type !== 12).map((r) => r.tid)).size,
    renames: count((r) => r.type === 5),
  };
}
