/**
 * The size of libuv's thread pool, set before anything uses it (this module is main.ts's first import).
 * Every fs call of the daemon runs there, and fsyncs block a thread for milliseconds: with the default 4
 * threads, the fsyncs of a few write-back commits starve every lookup and read behind them.
 */
process.env.UV_THREADPOOL_SIZE ??= '64';
