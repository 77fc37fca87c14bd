import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Kept in test/ (the top level of the repository is fixed); `npm test` passes it with --config.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    // Stops the S3 tests' server at the end of the run if they started it.
    globalSetup: ['test/global-setup.ts'],
  },
});
