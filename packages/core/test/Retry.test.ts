import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { PodNotFound, PodNotRunning, type PortForwardError } from "../src/PortForwardError.ts"
import { Retry } from "@kube-forward/core"

const notRunning = new PodNotRunning({ target: "pod/web", namespace: "default", phase: "Pending" })
const notFound = new PodNotFound({ target: "pod/web", namespace: "default", detail: "pods \"web\" not found" })

/** An effect that fails with `errors` in turn, then succeeds; counts its runs. */
const failing = (errors: ReadonlyArray<PortForwardError>) => {
  let runs = 0
  const effect = Effect.suspend(() => {
    const error = errors[runs++]
    return error === undefined ? Effect.succeed("ok") : Effect.fail(error)
  })
  return { effect, runs: () => runs }
}

describe("Retry", () => {
  it.effect("retries transient errors and the schedule sees only those", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const schedule = Schedule.recurs(5).pipe(
        Schedule.setInputType<PortForwardError>(),
        Schedule.tap(({ input }) => Effect.sync(() => seen.push(input._tag)))
      )
      const transient = failing([notRunning, notRunning])
      assert.strictEqual(yield* transient.effect.pipe(Retry.transient(schedule)), "ok")
      assert.strictEqual(transient.runs(), 3)
      assert.deepStrictEqual(seen, ["PodNotRunning", "PodNotRunning"])

      seen.length = 0
      const permanent = failing([notRunning, notFound])
      const error = yield* permanent.effect.pipe(Retry.transient(schedule), Effect.flip)
      assert.strictEqual(error._tag, "PodNotFound")
      assert.strictEqual(permanent.runs(), 2)
      assert.deepStrictEqual(seen, ["PodNotRunning"], "the permanent error never reached the schedule")
    }))

  it.effect("gives the last error back when the schedule is done", () =>
    Effect.gen(function*() {
      const always = failing(Array.from({ length: 10 }, () => notRunning))
      const error = yield* always.effect.pipe(Retry.transient(Schedule.recurs(2)), Effect.flip)
      assert.strictEqual(error, notRunning)
      assert.strictEqual(always.runs(), 3)
    }))

  it.effect("the default policy retries with growing, capped, jittered delays", () =>
    Effect.gen(function*() {
      const always = failing(Array.from({ length: 100 }, () => notRunning))
      const fiber = yield* always.effect.pipe(Retry.transient(), Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("2 minutes")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "PodNotRunning")
      assert.strictEqual(always.runs(), 9, "one run and 8 retries")
    }))
})
