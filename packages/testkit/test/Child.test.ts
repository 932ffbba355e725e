/**
 * `Child`: lines (whole, however the pipe splits them), waits for a line or the exit, typed
 * failures, and the whole process group ended when the scope closes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import { Child, Processes } from "../src/index.ts"

const sh = (script: string, options?: Child.Options) => Child.spawn("/bin/sh", ["-c", script], options)

describe("Child", () => {
  it.live("reads both streams as lines and reports the exit code", () =>
    Effect.gen(function*() {
      const child = yield* sh("echo one; echo two >&2; printf 'three'; exit 3")
      assert.deepStrictEqual(yield* child.awaitExit, { code: 3, signal: null })
      assert.deepStrictEqual(child.lines("stdout"), ["one", "three"])
      assert.deepStrictEqual(child.lines("stderr"), ["two"])
      assert.strictEqual(child.text("stderr"), "two\n")
      // the output stream replays every line from the first and ends after the exit
      const all = yield* Stream.runCollect(child.output)
      assert.deepStrictEqual(all.filter((l) => l.stream === "stdout").map((l) => l.text), ["one", "three"])
      assert.deepStrictEqual(all.filter((l) => l.stream === "stderr").map((l) => l.text), ["two"])
    }))

  it.live("a line longer than the pipe's buffer arrives whole, multi-byte characters included", () =>
    Effect.gen(function*() {
      // 1 + 2 × 100 000 bytes: more than a pipe holds (64 KiB), so it is read in several chunks,
      // and the odd first byte puts chunk boundaries inside the two-byte characters
      const child = yield* Child.spawn(process.execPath, [
        "-e",
        "process.stdout.write('x' + 'é'.repeat(100000) + '\\nend\\n')"
      ])
      const [line] = yield* child.awaitLine(/^x.*$/, "stdout")
      assert.strictEqual(line.length, 1 + 100_000)
      assert.isTrue(line === "x" + "é".repeat(100_000))
      yield* child.awaitExit
      assert.deepStrictEqual(child.lines("stdout").slice(1), ["end"])
    }))

  it.live("awaitLine finds a line printed before the wait, and fails when the child exits first", () =>
    Effect.gen(function*() {
      const child = yield* sh("echo ready 42; echo 'bad things' >&2; exit 1")
      yield* child.awaitExit
      const [, n] = yield* child.awaitLine(/^ready (\d+)$/, "stdout")
      assert.strictEqual(n, "42")
      const error = yield* Effect.flip(child.awaitLine(/^never$/))
      assert.strictEqual(error._tag, "ExitedBeforeLine")
      assert.strictEqual(error.code, 1)
      assert.include(error.message, "bad things")
    }))

  it.live("a program that does not exist is a SpawnError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Child.spawn("/nonexistent/kf-program", []))
      assert.strictEqual(error._tag, "SpawnError")
      assert.include(error.message, "ENOENT")
    }))

  it.live("env adds and removes variables; kill signals the child only", () =>
    Effect.gen(function*() {
      process.env.KF_CHILD_TEST_REMOVED = "present"
      const child = yield* sh("echo \"[$KF_CHILD_TEST_ADDED] [${KF_CHILD_TEST_REMOVED-unset}]\"; exec sleep 30", {
        env: { KF_CHILD_TEST_ADDED: "added", KF_CHILD_TEST_REMOVED: undefined }
      })
      delete process.env.KF_CHILD_TEST_REMOVED
      yield* child.awaitLine(/^\[added\] \[unset\]$/, "stdout")
      yield* child.kill("SIGINT")
      assert.deepStrictEqual(yield* child.awaitExit, { code: null, signal: "SIGINT" })
    }))

  it.live("closing the scope ends the whole group, SIGKILL for what ignores SIGTERM", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      // the leader ignores SIGTERM and so does its child, which it started in the background
      const child = yield* sh(
        "trap '' TERM; sh -c \"trap '' TERM; echo child \\$\\$; while :; do sleep 1; done\" & wait",
        {
          killGrace: "200 millis"
        }
      ).pipe(Scope.provide(scope))
      const [, grandchild] = yield* child.awaitLine(/^child (\d+)$/, "stdout")
      assert.isTrue(Processes.isAlive(Number(grandchild)))
      assert.isAbove(Processes.group(child.pid).length, 1)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(child.exitStatus()?.signal, "SIGKILL")
      assert.isFalse(Processes.isAlive(Number(grandchild)))
      assert.deepStrictEqual(Processes.group(child.pid), [])
    }))

  it.live("what the leader leaves in its group when it exits is ended when the scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const child = yield* sh("sleep 30 >/dev/null 2>&1 & echo left $!").pipe(Scope.provide(scope))
      const [, left] = yield* child.awaitLine(/^left (\d+)$/)
      assert.deepStrictEqual(yield* child.awaitExit, { code: 0, signal: null })
      assert.isTrue(Processes.isAlive(Number(left)), "the background sleep outlived its parent")
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Processes.isAlive(Number(left)))
    }))
})
