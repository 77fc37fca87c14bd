import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // FUSE and streaming tests spawn processes and move hundreds of MiB: give them room.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // Mount tests share /dev/fuse and the two cores: run files one after another.
    fileParallelism: false,
    reporters: ['default'],
  },
});
