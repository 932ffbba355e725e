/**
 * Fixed local port: forwards local port 18080 to port 80 of pod `web-app`, the way
 * `kubectl port-forward pod/web-app 18080:80` would, and calls the app through it.
 *
 * Uses the original API's shape: `K8s.make({ namespace }).pod(name).portForward(local, remote)`.
 * The forward is a scoped resource: it closes when `Effect.scoped` ends.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 (`GET /health`).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/fixed-local-port.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/fixed-local-port.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `LOCAL_PORT` (default 18080).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s } from "@kube-forward/core"
import { Config, Effect } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { ForwardLive } from "./backend.ts"

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const localPort = yield* Config.Port("LOCAL_PORT").pipe(Config.withDefault(18080))

  const fwd = yield* K8s.make({ namespace }).pod("web-app").portForward(localPort, 80)
  yield* Effect.log(`forwarding 127.0.0.1:${fwd.localPort} -> ${fwd.target}:${fwd.remotePort} (namespace ${namespace})`)

  const response = yield* HttpClient.get(`http://127.0.0.1:${localPort}/health`)
  yield* Effect.log(`GET /health -> ${response.status} ${yield* response.text}`)
}).pipe(
  Effect.scoped,
  Effect.tap(() => Effect.log("forward closed, port released")),
  Effect.provide([ForwardLive, FetchHttpClient.layer])
)

NodeRuntime.runMain(program)
