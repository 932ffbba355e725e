/**
 * Dynamic local port: lets the operating system choose a free local port (no clashes with
 * anything else on the machine) and reads it back from the forward.
 *
 * Shown twice: with the original API's shape (`pod(name).portForwardDynamic(remote)`) and
 * with `PortForward.make`, where a port given alone (`ports: ["http"]`, here a container port
 * *name*) gets a dynamic local port.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 named `http`
 * (`GET /health`, `GET /items`).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/dynamic-local-port.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/dynamic-local-port.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s, PortForward } from "@kube-forward/core"
import { Config, Effect } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { ForwardLive } from "./backend.ts"

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))

  // 1. the original API's shape
  const fwd = yield* K8s.make({ namespace }).pod("web-app").portForwardDynamic(80)
  yield* Effect.log(`the OS chose local port ${fwd.localPort} for ${fwd.target}:${fwd.remotePort}`)
  const health = yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/health`)
  yield* Effect.log(`GET /health -> ${health.status} ${yield* health.text}`)

  // 2. the full API, with a named remote port
  const named = yield* PortForward.make({ target: "pod/web-app", namespace, ports: ["http"] })
  const port = named.ports[0]
  yield* Effect.log(`named port "${port.remote}" is container port ${port.targetPort}, local port ${port.local}`)
  const items = yield* HttpClient.get(`http://127.0.0.1:${port.local}/items`)
  yield* Effect.log(`GET /items -> ${items.status} ${yield* items.text}`)
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
