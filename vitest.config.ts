import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: files that start processes and workers must not all run at once.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
