/**
 * Custom layers: the two services a forward needs, replaced by your own.
 *
 * - `PortAllocator.layerRange`: dynamic local ports come from a fixed range (here
 *   20100–20101, two ports) instead of from the OS — for firewalls, CI machines or predictable
 *   port numbers. A port goes back to the pool when its forward closes; asking for more ports
 *   than the range holds fails with `PortsExhausted`.
 * - A `Forwarder` (the carrier: kubectl or native) that wraps the one from the environment: it
 *   logs every attempt it is asked to start and where the attempt listens, then delegates. The
 *   same shape can count attempts, add a span, or refuse some targets. On the kubectl carrier,
 *   wrapping the `Kubectl` service the same way sees every kubectl command line (`demo.ts` does
 *   that to note kubectl's pids).
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/custom-layers.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/custom-layers.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `PORT_RANGE_FROM`
 * (default 20100).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Forwarder, K8s, PortAllocator } from "@kube-forward/core"
import { Config, Effect, Layer } from "effect"
import { ForwardLive } from "./backend.ts"

/** A carrier that logs each attempt, then delegates to the one configured from the environment. */
const LoggingForwarder: Layer.Layer<Forwarder.Forwarder, Config.ConfigError> = Layer.effect(
  Forwarder.Forwarder,
  Effect.gen(function*() {
    const inner = yield* Forwarder.Forwarder // the carrier of ForwardLive, below
    return Forwarder.Forwarder.of({
      ...inner,
      start: (request) =>
        Effect.log(`${inner.backend}: starting ${request.spec.resource} on local port ${request.locals.join(", ")}`)
          .pipe(
            Effect.andThen(inner.start(request)),
            Effect.tap((attempt) =>
              Effect.log(`  listening on ${attempt.ports.map((p) => `${p.address}:${p.local}`).join(", ")}`)
            )
          )
    })
  })
).pipe(Layer.provide(ForwardLive))

/** Dynamic ports from PORT_RANGE_FROM and the next port only. */
const RangePorts = Layer.unwrap(
  Config.Port("PORT_RANGE_FROM").pipe(
    Config.withDefault(20100),
    Effect.map((from) => PortAllocator.layerRange({ from, to: from + 1 }))
  )
)

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const web = K8s.make({ namespace }).pod("web-app")

  const first = yield* web.portForwardDynamic(80)
  const second = yield* web.portForwardDynamic(80)
  yield* Effect.log(`dynamic ports from the range: ${first.localPort}, ${second.localPort}`)

  const third = yield* web.portForwardDynamic(80).pipe(Effect.flip)
  yield* Effect.log(`a third forward: ${third._tag}: ${third.message}`)

  yield* first.close
  const again = yield* web.portForwardDynamic(80)
  yield* Effect.log(`after closing the first forward, its port ${again.localPort} was handed out again`)
}).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(LoggingForwarder, RangePorts)))

NodeRuntime.runMain(program)
