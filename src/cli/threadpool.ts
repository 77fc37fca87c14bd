/**
 * The size of libuv's thread pool, set before anything uses it (this module is main.ts's first import).
 * The daemon's chunk reads and its fsyncs run there, and an fsync blocks a thread for milliseconds: with
 * the default 4, the fsyncs of a batch of write-back commits starve the reads behind them. Not more than
 * 16: every pool thread that allocates keeps a malloc arena, and 64 threads raised the daemon's peak RSS
 * with 2,000 files open from 450 to 570 MB (test/fuse/concurrency.test.ts).
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
