/**
 * Two namespaces at once: forwards to pod `web-app` in namespace `default` and to the pod of
 * the same name in namespace `staging`, side by side, and shows that each forward reaches its
 * own namespace. A `K8s` client is bound to one namespace; make one per namespace (or pass
 * `namespace` per `PortForward.make` spec).
 *
 * Needs: pod `web-app` in namespace `default` and pod `web-app` in namespace `staging`, each
 * with an HTTP server on port 80 whose `GET /whoami` answers `{"name": …}`.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/multiple-namespaces.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/multiple-namespaces.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACES` (default `default,staging`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s } from "@kube-forward/core"
import { Config, Effect, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpIncomingMessage } from "effect/http"
import { ForwardLive } from "./backend.ts"

/** What `GET /whoami` answers. */
const Whoami = Schema.Struct({ name: Schema.String })

const program = Effect.gen(function*() {
  const namespaces = yield* Config.String("NAMESPACES").pipe(
    Config.withDefault("default,staging"),
    Config.map((s) => s.split(",").map((n) => n.trim()))
  )

  const forwards = yield* Effect.forEach(
    namespaces,
    (namespace) => K8s.make({ namespace }).pod("web-app").portForwardDynamic(80),
    { concurrency: "unbounded" }
  )

  for (const fwd of forwards) {
    const { name } = yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/whoami`).pipe(
      Effect.flatMap(HttpIncomingMessage.schemaBodyJson(Whoami))
    )
    yield* Effect.log(`namespace ${fwd.namespace}: 127.0.0.1:${fwd.localPort} -> ${fwd.target}:80 answers "${name}"`)
  }
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
