import { ChunkNotFound } from '../core/errors.js';
import type { ChunkStore } from './chunk-store.js';

/** Chunks in a Map: for tests and in-memory use. */
export class MemoryStore implements ChunkStore {
  readonly chunks = new Map<string, Buffer>();

  async get(name: Buffer): Promise<Buffer> {
    const found = this.chunks.get(name.toString('hex'));
    if (!found) throw ChunkNotFound.of(name);
    // A copy: the caller owns what get returns (the mount moves it to a worker thread).
    return Buffer.from(found);
  }
  async put(name: Buffer, content: Buffer): Promise<void> {
    const key = name.toString('hex');
    if (!this.chunks.has(key)) this.chunks.set(key, Buffer.from(content));
  }
  async has(name: Buffer): Promise<boolean> {
    return this.chunks.has(name.toString('hex'));
  }
  async delete(name: Buffer): Promise<void> {
    this.chunks.delete(name.toString('hex'));
  }
  async sync(): Promise<void> {}
  async *names(): AsyncIterable<Buffer> {
    for (const key of this.chunks.keys()) yield Buffer.from(key, 'hex');
  }
}
