import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // each test file runs its own worker and apps: forks keep native Temporal state apart
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      // no Temporal and no Postgres: `npm run test:unit` runs these alone, without the global setup
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'services',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/unit/**'],
          // one Temporal dev server, one Postgres and one workflow bundle for the whole run
          globalSetup: ['test/setup/global.ts'],
        },
      },
    ],
  },
});
