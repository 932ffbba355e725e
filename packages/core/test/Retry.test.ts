import { assert, describe, it } from "@effect/vitest"
import { Retry } from "@kube-forward/core"
import { Clock, Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { PodNotFound, PodNotRunning, type PortForwardError } from "../src/PortForwardError.ts"

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

/** An effect that always fails with PodNotRunning, noting the (test) clock's time of each run. */
const failingAt = () => {
  const at: Array<number> = []
  const effect = Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => {
      at.push(now)
      return Effect.fail(notRunning)
    })
  )
  // microsecond precision: jittered delays are fractional milliseconds
  const round = (ms: number) => Math.round(ms * 1000) / 1000
  return { effect, at, delays: () => at.slice(1).map((t, i) => round(t - at[i])) }
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

  it.effect("the default policy: ~200 ms first, doubling, jittered, no delay over 5 s, at most 8 retries", () =>
    Effect.gen(function*() {
      const always = failingAt()
      const fiber = yield* always.effect.pipe(Retry.transient(), Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "PodNotRunning")
      assert.strictEqual(always.at.length, 9, "one run and 8 retries")
      const delays = always.delays()
      // jitter scales each delay by 0.8–1.2, then the cap applies
      assert.isTrue(delays[0] >= 160 && delays[0] <= 240, `first delay ${delays[0]} ms`)
      delays.forEach((delay, i) => {
        const nominal = 200 * 2 ** i
        assert.isAtMost(delay, 5000, `delay ${i}`)
        if (nominal * 0.8 >= 5000) assert.strictEqual(delay, 5000, `delay ${i} is capped`)
        else assert.isTrue(delay >= nominal * 0.8 && delay <= Math.min(nominal * 1.2, 5000), `delay ${i}: ${delay} ms`)
      })
      // jittered: the growing delays are not all the same multiple of 200 ms × 2^i
      const ratios = delays.slice(0, 5).map((delay, i) => delay / (200 * 2 ** i))
      assert.isAbove(new Set(ratios).size, 1, `ratios ${ratios.join(", ")}`)
    }))

  it.effect("the default policy retries for a minute at most", () =>
    Effect.gen(function*() {
      // with many more retries allowed, the minute is what ends it
      const always = failingAt()
      const fiber = yield* always.effect.pipe(
        Retry.transient(Retry.policy({ times: 1000 })),
        Effect.flip,
        Effect.forkChild
      )
      yield* TestClock.adjust("10 minutes")
      yield* Fiber.join(fiber)
      const since = always.at.map((t) => t - always.at[0])
      assert.isBelow(always.at.length, 1001)
      // every retry was decided within the minute (after a failure at most 60 s in), none after
      assert.isAtMost(since.at(-2)!, 60_000, `last retried failure at ${since.at(-2)} ms`)
      assert.isAbove(since.at(-1)!, 60_000, `the failure that ended it at ${since.at(-1)} ms`)
    }))
})
