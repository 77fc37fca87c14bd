/**
 * The bytes of chunks waiting for upload that the worker which encrypted them handed back (ChunkStore.wantsContent),
 * held up to a bound: an upload takes them from here instead of reading its cache file again (an open, a 1 MiB
 * read and a close on libuv's four threads, which the batch's fsyncs keep busy). A chunk that did not fit, or
 * whose upload failed once, is read from its file: the file is the queue's truth, this is only a shortcut.
 */
export class UploadBytes {
  private readonly held = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** Keep `content` for the upload of `hex`, if there is room. */
  offer(hex: string, content: Buffer | undefined): void {
    if (!content || this.held.has(hex) || this.bytes + content.length > this.maxBytes) return;
    this.held.set(hex, content);
    this.bytes += content.length;
  }

  /** The bytes held for `hex`, given up (the upload owns them now). */
  take(hex: string): Buffer | undefined {
    const content = this.held.get(hex);
    if (content) this.drop(hex);
    return content;
  }

  drop(hex: string): void {
    const content = this.held.get(hex);
    if (!content) return;
    this.held.delete(hex);
    this.bytes -= content.length;
  }
}
