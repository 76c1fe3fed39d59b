import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: files that start processes and workers must not all run at once.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/web/**'], sequence: { groupOrder: 0 } } },
      // Browser tests (chromium, several WebRTC peers, a whole embedded default each) after all
      // the others, one file at a time.
      { extends: true, test: { name: 'browser', include: ['test/web/**/*.test.ts'], sequence: { groupOrder: 1 }, poolOptions: { forks: { singleFork: true } } } },
    ],
  },
});
