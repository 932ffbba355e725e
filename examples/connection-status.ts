/**
 * Connection status: what an open forward tells you — its local and remote port, the address
 * it listens on, whether it is open — before and after `close`, and the status stream that
 * reports every transition (`Ready` → `Closed`, or `Reconnecting`/`Failed` when the pod goes
 * away).
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 named `http`.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/connection-status.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/connection-status.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s } from "@kube-forward/core"
import { Config, Effect, Fiber, Stream } from "effect"
import { ForwardLive } from "./backend.ts"

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const fwd = yield* K8s.make({ namespace }).pod("web-app").portForwardDynamic("http")

  // follow the status stream from now on; it ends by itself once the forward is closed
  const transitions = yield* fwd.status.pipe(
    Stream.map((status) => status._tag),
    Stream.runCollect,
    Effect.forkScoped({ startImmediately: true })
  )

  const [port] = fwd.ports
  yield* Effect.log(`target:     ${fwd.target} (namespace ${fwd.namespace})`)
  yield* Effect.log(`localPort:  ${fwd.localPort} on ${port.address}`)
  yield* Effect.log(`remotePort: ${fwd.remotePort} (container port ${port.targetPort})`)
  yield* Effect.log(`before close: isOpen=${yield* fwd.isOpen}, status=${(yield* fwd.currentStatus)._tag}`)

  yield* fwd.close
  yield* Effect.log(`after close:  isOpen=${yield* fwd.isOpen}, status=${(yield* fwd.currentStatus)._tag}`)

  yield* fwd.close // idempotent: closing again does nothing
  yield* fwd.awaitClosed // succeeds at once: the forward was closed, not lost
  yield* Effect.log(`status stream: ${(yield* Fiber.join(transitions)).join(" -> ")}`)
}).pipe(Effect.scoped, Effect.provide(ForwardLive))

NodeRuntime.runMain(program)
