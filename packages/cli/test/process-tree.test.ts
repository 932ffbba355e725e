/**
 * The processes of the `--` command as `internal/processTree` knows them: a process is told
 * from a later one that reuses its id by its start time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Tree from "../src/internal/processTree.ts"

/** A `sleep` of our own, killed when the scope closes. */
const sleeper = Effect.acquireRelease(
  Effect.sync(() => spawn("sleep", ["786"], { stdio: "ignore" })),
  (child) => Effect.sync(() => child.kill("SIGKILL"))
)

describe("processTree", () => {
  it.effect("alive: a process is the one seen only while its start time is the same", () =>
    Effect.gen(function*() {
      const child = yield* sleeper
      const [seen] = Tree.tree([child.pid!])
      assert.strictEqual(seen.pid, child.pid)
      assert.isNumber(seen.start, "the start time is read from /proc")
      assert.deepStrictEqual(Tree.alive([seen]), [seen])
      // the same pid and group, but another start: a later process that reuses the id
      const other = { ...seen, start: seen.start! - 1 }
      assert.deepStrictEqual(Tree.alive([other]), [], "not the process that was seen")
    }).pipe(Effect.scoped))
})
