/**
 * Spans and metrics of a forward, read back: a failed start, a start, a loss, a reconnect and
 * a close, each leaving its trace in `ForwardMetrics` and in the spans of the current tracer.
 */
import { assert, describe, it } from "@effect/vitest"
import { ForwardMetrics, Kubectl, PortForward } from "@kube-forward/core"
import { Deferred, Effect, Fiber, Metric, Schedule, Stream, Tracer } from "effect"

const forwarding = (local: number, remote: number) => `Forwarding from 127.0.0.1:${local} -> ${remote}`

/** A tracer that keeps every span it starts (and is otherwise Effect's own). */
const recordingTracer = () => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = Tracer.nativeTracer.span(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const value = <S>(metric: Metric.Metric<number, S>, attributes: Record<string, string>) =>
  Metric.value(Metric.withAttributes(metric, { backend: "kubectl", ...attributes }))

describe("observability", () => {
  it.effect("a failed start, a start, a loss, a reconnect and a close, in metrics and spans", () =>
    Effect.gen(function*() {
      const lose = yield* Deferred.make<void>()
      const layer = PortForward.layerWith(Kubectl.layerTest((_, index) => {
        if (index === 0) {
          return {
            output: [{ stream: "stderr", text: "Error from server (NotFound): pods \"web\" not found" }],
            exit: { exitCode: 1, signal: null }
          }
        }
        if (index === 1) {
          return {
            output: [forwarding(7001, 80)],
            exit: Deferred.await(lose).pipe(Effect.as({ exitCode: 1, signal: null }))
          }
        }
        return { output: [forwarding(7001, 80)] }
      }))
      const { spans, tracer } = recordingTracer()
      const program = Effect.gen(function*() {
        const spec = { target: "pod/web", ports: [80], verify: false, reconnect: Schedule.recurs(3) } as const
        const missing = yield* PortForward.make(spec).pipe(Effect.flip)
        assert.strictEqual(missing._tag, "PodNotFound")
        assert.strictEqual((yield* value(ForwardMetrics.failures, { error: "PodNotFound" })).count, 1)

        const fwd = yield* PortForward.make(spec)
        assert.strictEqual((yield* value(ForwardMetrics.open, {})).value, 1)

        const reconnecting = yield* fwd.status.pipe(
          Stream.filter((s) => s._tag === "Reconnecting"),
          Stream.runHead,
          Effect.forkChild({ startImmediately: true })
        )
        yield* Deferred.succeed(lose, undefined)
        assert.strictEqual((yield* Fiber.join(reconnecting))._tag, "Some", "the loss was seen as Reconnecting")
        yield* PortForward.awaitOpen(fwd)
        assert.strictEqual((yield* value(ForwardMetrics.reconnects, {})).count, 1)
        assert.strictEqual((yield* value(ForwardMetrics.failures, { error: "ForwardLost" })).count, 1)
        assert.strictEqual((yield* value(ForwardMetrics.open, {})).value, 1, "back to one open forward, not two")
        assert.strictEqual((yield* value(ForwardMetrics.timeToReady, {})).count, 2, "two attempts got ready")

        yield* fwd.close
        assert.strictEqual((yield* value(ForwardMetrics.open, {})).value, 0)
      }).pipe(Effect.scoped, Effect.provide(layer), Effect.provideService(Metric.MetricRegistry, new Map()))
      yield* program.pipe(Effect.provideService(Tracer.Tracer, tracer))

      const named = (name: string) => spans.filter((s) => s.name === name)
      const makes = named("PortForward.make")
      assert.deepStrictEqual(makes.map((s) => s.attributes.get("kube_forward.outcome")), ["PodNotFound", "ready"])
      assert.isTrue(makes.every((s) => s.attributes.get("kube_forward.target") === "pod/web"))
      assert.strictEqual(makes[1].attributes.get("kube_forward.ports"), "7001->80")
      const attempts = named("PortForward.attempt")
      assert.deepStrictEqual(attempts.map((s) => s.attributes.get("kube_forward.outcome")), [
        "PodNotFound",
        "ready",
        "ready"
      ])
      assert.isTrue(attempts.every((s) => s.attributes.get("backend") === "kubectl"))
      assert.deepStrictEqual(attempts.map((s) => s.attributes.get("kube_forward.locals")), ["0", "0", "7001"])
    }))
})
