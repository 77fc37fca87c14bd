/** UploadBytes: the encrypted bytes held for queued uploads stay within their bound and are handed out once. */
import { describe, expect, it } from 'vitest';
import { UploadBytes } from '../src/store/upload-bytes.js';

describe('UploadBytes', () => {
  it('holds bytes up to its bound, gives each out once, and frees what is dropped', () => {
    const held = new UploadBytes(10);
    held.offer('a', Buffer.alloc(6, 1));
    held.offer('b', Buffer.alloc(6, 2)); // over the bound: its upload reads the file
    held.offer('c', undefined);
    expect(held.take('b')).toBeUndefined();
    expect(held.take('c')).toBeUndefined();
    expect(held.take('a')).toEqual(Buffer.alloc(6, 1));
    expect(held.take('a')).toBeUndefined();
    held.offer('b', Buffer.alloc(6, 2)); // room again once taken
    held.drop('b');
    held.offer('d', Buffer.alloc(10, 4)); // and once dropped
    expect(held.take('b')).toBeUndefined();
    expect(held.take('d')?.length).toBe(10);
  });
});
