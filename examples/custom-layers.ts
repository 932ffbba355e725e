/**
 * Custom layers: the two services a forward needs, replaced by your own.
 *
 * - `PortAllocator.layerRange`: dynamic local ports come from a fixed range (here
 *   20100–20101, two ports) instead of from the OS — for firewalls, CI machines or predictable
 *   port numbers. A port goes back to the pool when its forward closes; asking for more ports
 *   than the range holds fails with `PortsExhausted`.
 * - A `Kubectl` that wraps the default one: it logs every kubectl command line it starts and
 *   then delegates to the implementation of `Kubectl.layer()` (configured from the
 *   environment by `Kubectl.layerFromEnv`). The same shape can add flags, pick a binary per
 *   target, or count processes.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/custom-layers.ts
 *
 * Environment: `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL` (read by
 * `Kubectl.layerFromEnv`); `NAMESPACE` (default `default`); `PORT_RANGE_FROM` (default 20100).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s, Kubectl, KubectlForwarder, PortAllocator } from "@kube-forward/core"
import { Config, Effect, Layer } from "effect"

/** A Kubectl that logs each command line, then delegates to the default implementation. */
const LoggingKubectl: Layer.Layer<Kubectl.Kubectl, Config.ConfigError> = Layer.effect(
  Kubectl.Kubectl,
  Effect.gen(function*() {
    const inner = yield* Kubectl.Kubectl // the default service, from Kubectl.layerFromEnv below
    return Kubectl.Kubectl.of({
      ...inner,
      spawn: (args) =>
        Effect.log(`$ ${inner.binary} ${args.join(" ")}`).pipe(
          Effect.andThen(inner.spawn(args)),
          Effect.tap((process) => Effect.log(`  started kubectl, pid ${process.pid}`))
        )
    })
  })
).pipe(Layer.provide(Kubectl.layerFromEnv))

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
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(KubectlForwarder.layer.pipe(Layer.provide(LoggingKubectl)), RangePorts))
)

NodeRuntime.runMain(program)
