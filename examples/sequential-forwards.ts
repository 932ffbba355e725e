/**
 * Forwards set up one by one, then all tested: opens a forward to each pod in turn (each one is
 * ready — kubectl listening and one connection through it verified — before the next starts),
 * and once all are up, runs a health check through every one of them.
 *
 * Compare `concurrent-forwards.ts`, which opens them at the same time; one by one is what you
 * want when each step depends on the previous one, or to see exactly which one fails.
 *
 * Needs: pods `worker-1`, `worker-2`, `worker-3` (namespace `default`), each with an HTTP
 * server on a container port named `http` (`GET /health`).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/sequential-forwards.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/sequential-forwards.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s } from "@kube-forward/core"
import { Config, Effect } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { ForwardLive } from "./backend.ts"

const pods = ["worker-1", "worker-2", "worker-3"]

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const k8s = K8s.make({ namespace })

  // one by one: Effect.forEach runs sequentially unless told otherwise
  const forwards = yield* Effect.forEach(pods, (pod, i) =>
    k8s.pod(pod).portForwardDynamic("http").pipe(
      Effect.tap((fwd) => Effect.log(`[${i + 1}/${pods.length}] ${fwd.target} ready on 127.0.0.1:${fwd.localPort}`))
    ))

  // then test all of them
  const results = yield* Effect.forEach(
    forwards,
    (fwd) =>
      HttpClient.get(`http://127.0.0.1:${fwd.localPort}/health`).pipe(
        Effect.map((response) => ({ target: fwd.target, ok: response.status === 200, status: response.status }))
      ),
    { concurrency: "unbounded" }
  )
  for (const r of results) yield* Effect.log(`${r.target}: GET /health -> ${r.status}`)

  const healthy = results.filter((r) => r.ok).length
  yield* Effect.log(`${healthy}/${results.length} pods healthy`)
  if (healthy !== results.length) return yield* Effect.die("some pods are unhealthy")
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
