/**
 * Where a node with more than one name keeps its content (native-notes/hard-links.md): each name in meta/ is
 * a stub (an entry holding only node field `link`), all names are host hard links of one stub file, so
 * mode, owner, times and nlink are shared by the host; the content and the node fields (inode number,
 * xattrs, type) live in VAULT/links/<16 hex digits of the inode number>, replaced by rename on each commit.
 * In a sealed vault a record is sealed for (LINKS_ID, its file name) and a stub, being one file under many
 * names, for (LINKS_ID, "").
 */
import { closeSync, constants as fsc, openSync, readSync } from 'node:fs';
import type { MetaCodec, Place } from './meta-codec.js';
import { type EntryOpener, EMPTY_ENTRY, type MetaEntry, decodeStoredEntry, encodeEntry } from './meta-entry.js';

/** The "directory id" records and stubs are sealed under: no real directory's (16 random bytes) is this. */
export const LINKS_ID = new Uint8Array(Buffer.from('sefs hard links.'));
export const STUB_PLACE: Place = { dir: LINKS_ID, name: '' };

export const recordName = (ino: number): string => ino.toString(16).padStart(16, '0');
export const recordPlace = (ino: number): Place => ({ dir: LINKS_ID, name: recordName(ino) });
/** The inode number a record file name stands for; undefined for any other name. */
export function recordIno(name: string): number | undefined {
  if (!/^[0-9a-f]{16}$/.test(name)) return undefined;
  const n = Number.parseInt(name, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

export const stubEntry = (ino: number): MetaEntry => ({ ...EMPTY_ENTRY, node: { link: ino } });
export const encodeStub = (ino: number): Buffer => encodeEntry(stubEntry(ino));

/**
 * Decode a metadata file found at `place`: an entry sealed for its place, or, failing that, a stub (sealed for
 * STUB_PLACE). The first error is the one reported when neither opens.
 */
export function openAtPlace(codec: MetaCodec, place: Place): EntryOpener {
  if (!codec.sealed) return { openEntry: (b) => b };
  return {
    openEntry: (b) => {
      try {
        return codec.openEntry(b, place);
      } catch (err) {
        try {
          return codec.openEntry(b, STUB_PLACE);
        } catch {
          throw err;
        }
      }
    },
  };
}

/** Stubs are tiny: anything larger is not one. */
const STUB_MAX = 256;

/** Whether the file at `self` (a pinned /proc path) is a stub: safe-fs lets only those have other names. */
export function isStubFile(self: string, codec: MetaCodec): boolean {
  let fd: number;
  try {
    fd = openSync(self, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const buf = Buffer.alloc(STUB_MAX + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n > STUB_MAX) return false;
    const entry = decodeStoredEntry(buf.subarray(0, n), codec.sealed ? { openEntry: (b) => codec.openEntry(b, STUB_PLACE) } : { openEntry: (b) => b });
    return entry.node?.link !== undefined && entry.size === 0;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
