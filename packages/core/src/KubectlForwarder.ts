/**
 * The kubectl carrier: each attempt of a forward is one `kubectl port-forward` process, run by
 * the {@link Kubectl} service (so a swapped runner is used as is).
 *
 * An attempt spawns kubectl with an argument array, reads its output with the pure reader of
 * `internal/kubectlOutput` (ready when every port and address has its `Forwarding from` line;
 * a typed error from kubectl's own words otherwise), and checks the forward with one
 * connection per port, reading what kubectl logged meanwhile to tell a pod's refusal from a
 * forward that works. Closing the attempt's scope ends kubectl's whole process tree.
 *
 * @since 0.2.0
 */
import { Deferred, Effect, Layer, type Scope, Stream } from "effect"
import * as Forwarder from "./Forwarder.ts"
import { portForwardArgs } from "./internal/args.ts"
import { KubectlOutput } from "./internal/kubectlOutput.ts"
import { ioBarrier, probe } from "./internal/probe.ts"
import { realSleep } from "./internal/time.ts"
import { type ExitStatus, Kubectl, type KubectlProcess } from "./Kubectl.ts"
import type { OpenError } from "./PortForwardError.ts"

/** How long a failed check connection waits for kubectl's exit to explain it. */
const EXPLAIN_WAIT_MS = 200

/** Follows kubectl's output: `ready` when it is listening (or why not), `ended` when it exited. */
const follow = (process: KubectlProcess, reader: KubectlOutput) =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<ReadonlyArray<Forwarder.ForwardedPort>, OpenError>()
    const ended = yield* Deferred.make<ExitStatus>()
    yield* process.output.pipe(
      Stream.runForEach((line) =>
        Effect.sync(() => {
          const verdict = reader.push(line)
          if (verdict === undefined) return
          Deferred.doneUnsafe(
            ready,
            verdict._tag === "Ready" ? Effect.succeed(verdict.ports) : Effect.fail(verdict.error)
          )
        })
      ),
      Effect.andThen(process.exit),
      Effect.tap((exit) =>
        Effect.sync(() => {
          if (!Deferred.isDoneUnsafe(ready)) Deferred.doneUnsafe(ready, Effect.fail(reader.exitedEarly(exit)))
          Deferred.doneUnsafe(ended, Effect.succeed(exit))
        })
      ),
      Effect.forkScoped
    )
    return { ready, ended }
  })

/** The check connections, judged with what kubectl logged while they were made. */
const verify = (
  ports: ReadonlyArray<Forwarder.ForwardedPort>,
  reader: KubectlOutput,
  ended: Deferred.Deferred<ExitStatus>
): Effect.Effect<void, OpenError> =>
  Effect.gen(function*() {
    const streamErrorsBefore = reader.streamErrors
    const checked = yield* Effect.forEach(
      ports,
      (port) => probe(port.address, port.local).pipe(Effect.mapError((f) => ({ local: port.local, detail: f.detail }))),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.result)
    // kubectl logs a refusal by the pod before it closes our connection; let that output in,
    // since what kubectl said explains a failed check better than the check itself
    yield* ioBarrier
    if (checked._tag === "Failure" && !Deferred.isDoneUnsafe(ended)) {
      // the listener is gone: kubectl is probably exiting; give its exit a moment to arrive
      yield* Effect.raceFirst(Deferred.await(ended), realSleep(EXPLAIN_WAIT_MS))
    }
    const exit = Deferred.isDoneUnsafe(ended) ? yield* Deferred.await(ended) : undefined
    const error = reader.afterCheck({
      streamErrorsBefore,
      exit,
      checkFailure: checked._tag === "Failure" ? checked.failure : undefined
    })
    if (error !== undefined) return yield* error
  })

/** One attempt: kubectl started on `request.locals`, ready when it reported every port. */
const start = (
  kubectl: Kubectl["Service"],
  request: Forwarder.AttemptRequest
): Effect.Effect<Forwarder.Attempt, OpenError, Scope.Scope> =>
  Effect.gen(function*() {
    const process = yield* kubectl.spawn(portForwardArgs(request.spec, request.locals))
    const reader = new KubectlOutput(request.spec, request.locals, {
      namespace: request.spec.namespace ?? kubectl.namespace,
      isDynamic: request.isDynamic
    })
    const { ended, ready } = yield* follow(process, reader)
    const ports = yield* Deferred.await(ready)
    const attempt: Forwarder.Attempt = {
      ports,
      verify: verify(ports, reader, ended),
      ended: Deferred.await(ended).pipe(
        Effect.map((exit) => ({ reason: reader.lostReason(exit), exitCode: exit.exitCode }))
      )
    }
    return attempt
  })

/**
 * Builds the kubectl carrier on the {@link Kubectl} service in context.
 *
 * @category constructors
 * @since 0.2.0
 */
export const make: Effect.Effect<Forwarder.Forwarder["Service"], never, Kubectl> = Effect.gen(function*() {
  const kubectl = yield* Kubectl
  return Forwarder.Forwarder.of({
    backend: "kubectl",
    namespace: kubectl.namespace,
    start: (request) => start(kubectl, request)
  })
})

/**
 * The kubectl carrier as a layer; it needs a {@link Kubectl} runner (`Kubectl.layer`, your own,
 * or `Kubectl.layerTest`).
 *
 * @example
 * ```ts
 * const Carrier = KubectlForwarder.layer.pipe(Layer.provide(Kubectl.layer({ context: "staging" })))
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const layer: Layer.Layer<Forwarder.Forwarder, never, Kubectl> = Layer.effect(Forwarder.Forwarder, make)
