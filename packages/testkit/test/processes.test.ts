import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Net from "node:net"
import { Processes } from "../src/index.ts"

describe("Processes", () => {
  it.live("tells live processes, their groups and descendants; awaitExit sees them go", () =>
    Effect.gen(function*() {
      const marker = `kf-processes-test-${process.pid}`
      // a shell (own group) with a child sleep; the marker is in the shell's command line
      const shell = spawn("sh", ["-c", `sleep 30 & echo started; wait # ${marker}`], {
        detached: true,
        stdio: ["ignore", "pipe", "ignore"]
      })
      const pid = shell.pid!
      // the shell prints after it forked the child: that line is the event
      yield* Effect.callback<void>((resume) => {
        shell.stdout!.once("data", () => resume(Effect.void))
      })
      assert.isTrue(Processes.isAlive(pid))
      assert.deepStrictEqual(Processes.live(marker).map((p) => p.pid), [pid])
      const children = Processes.descendants(pid)
      assert.strictEqual(children.length, 1)
      assert.deepStrictEqual(Processes.group(pid).map((p) => p.pid).sort(), [pid, children[0]].sort())
      const exited = new Promise<void>((done) => shell.once("exit", () => done()))
      process.kill(-pid, "SIGKILL")
      yield* Effect.promise(() => exited)
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
