import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // one Temporal dev server, one Postgres and one workflow bundle for the whole run
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // each test file runs its own worker and apps: forks keep native Temporal state apart
    pool: 'forks',
    maxWorkers: 2,
  },
});
