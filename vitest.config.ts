import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tools/test/**/*.test.ts', 'mcp-server/test/**/*.test.ts', 'agents/test/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
