/**
 * Several ports of one multi-container pod: a single forward (one kubectl process) carries
 * three ports of pod `multi-container` — two of its `app` container and one of its
 * `metrics-sidecar` container. Container ports are addressed by name; kubectl resolves each
 * name to its number, whichever container declares it.
 *
 * Needs: pod `multi-container` (namespace `default`) with container ports named `http`
 * (8080) and `admin` (8081) in one container and `metrics` (9090) in another, each an HTTP
 * server whose `GET /whoami` answers `{"name": …}` (use any endpoint of your own).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/multi-port-pod.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/multi-port-pod.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PortForward } from "@kube-forward/core"
import { Config, Effect, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpIncomingMessage } from "effect/http"
import { ForwardLive } from "./backend.ts"

/** What `GET /whoami` answers. */
const Whoami = Schema.Struct({ name: Schema.String })

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))

  const fwd = yield* PortForward.make({
    target: "pod/multi-container",
    namespace,
    ports: ["http", "admin", "metrics"] // each gets a dynamic local port; { local, remote } fixes one
  })
  yield* Effect.log(`one forward, ${fwd.ports.length} ports, to ${fwd.target}:`)

  for (const port of fwd.ports) {
    const { name } = yield* HttpClient.get(`http://127.0.0.1:${port.local}/whoami`).pipe(
      Effect.flatMap(HttpIncomingMessage.schemaBodyJson(Whoami))
    )
    yield* Effect.log(`  127.0.0.1:${port.local} -> ${port.remote} (container port ${port.targetPort}): "${name}"`)
  }
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
