import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Stops the S3 tests' server at the end of the run if they started it.
    globalSetup: ['test/global-setup.ts'],
  },
});
