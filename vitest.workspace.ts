import { defineConfig } from "vitest/config"

/**
 * Root Vitest config. Vitest 5 no longer discovers a workspace file on its own, so the npm
 * scripts pass this file with `--config`. Each project resolves the workspace packages from
 * their TypeScript sources through the `source` export condition.
 */
// `source` first, then Vite's own defaults for server-side resolution.
const conditions = ["source", "module", "node", "development|production"]

const project = (name: string, include: Array<string>, extra: { testTimeout?: number } = {}) => ({
  extends: true as const,
  test: { name, include, ...extra }
})

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
  test: {
    projects: [
      project("core", ["packages/core/test/**/*.test.ts"]),
      project("protocol", ["packages/protocol/test/**/*.test.ts"]),
      project("testkit", ["packages/testkit/test/**/*.test.ts"], { testTimeout: 120_000 }),
      project("native", ["packages/native/test/**/*.test.ts"], { testTimeout: 120_000 }),
      project("cli", ["packages/cli/test/**/*.test.ts"], { testTimeout: 120_000 }),
      project("e2e", ["test/**/*.test.ts"], { testTimeout: 120_000 }),
      project("examples", ["examples/**/*.test.ts"], { testTimeout: 120_000 })
    ]
  }
})
