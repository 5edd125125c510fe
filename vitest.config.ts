import { configDefaults, defineConfig } from 'vitest/config';

// Pure unit tests once, the integration suite once per database, and the browser tests (chromium, on PGlite).
export default defineConfig({
  test: {
    reporters: ['default', './scripts/summary-reporter.ts'],
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts', 'web/src/**/*.test.ts'] } },
      {
        test: {
          name: 'pglite',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/ui/**'],
          env: { ENVOI_TEST_DB: 'pglite' },
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'postgres',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/ui/**'],
          env: { ENVOI_TEST_DB: 'postgres' },
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'browser',
          include: ['test/ui/**/*.test.ts'],
          env: { ENVOI_TEST_DB: 'pglite' },
          // Builds web/dist when web/src changed since the last build.
          globalSetup: ['./test/support/browser.ts'],
          // One chromium at a time: two of them on a 2-core machine make every step slow.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
