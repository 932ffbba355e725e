import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Net from "node:net"
import { Child, Processes } from "../src/index.ts"

describe("Processes", () => {
  it.live("tells live processes, their groups and descendants; awaitExit sees them go", () =>
    Effect.gen(function*() {
      const marker = `kf-processes-test-${process.pid}`
      // a shell (own group) with a child sleep; the marker is in the shell's command line
      const shell = yield* Child.spawn("sh", ["-c", `sleep 30 & echo started; wait # ${marker}`])
      const pid = shell.pid
      // the shell prints after it forked the child: that line is the event
      yield* shell.awaitLine(/^started$/)
      assert.isTrue(Processes.isAlive(pid))
      assert.deepStrictEqual(Processes.live(marker).map((p) => p.pid), [pid])
      const children = Processes.descendants(pid)
      assert.strictEqual(children.length, 1)
      assert.deepStrictEqual(Processes.group(pid).map((p) => p.pid).sort(), [pid, children[0]].sort())
      yield* shell.killGroup("SIGKILL")
      yield* shell.awaitExit
      assert.deepStrictEqual(yield* Processes.awaitExit([pid, ...children]), [])
      assert.deepStrictEqual(Processes.live(marker), [])
      assert.isFalse(Processes.isAlive(pid))
    }))

  it.live("canBind is false while a port is held and true after", () =>
    Effect.gen(function*() {
      const server = Net.createServer()
      const port = yield* Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as Net.AddressInfo).port)))
      })
      assert.isFalse(yield* Processes.canBind(port))
      yield* Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
      assert.isTrue(yield* Processes.canBind(port))
    }))
})
