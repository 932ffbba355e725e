/**
 * API testing through a dynamic port: forwards a dynamic local port to service `web-app`,
 * checks `GET /health` and `GET /items`, then runs a small load test — N requests, C at a
 * time — and prints a latency summary. Nothing here knows the local port in advance, so any
 * number of these can run side by side (in CI, say).
 *
 * Needs: service `web-app` (namespace `default`) whose port 80 leads to an HTTP server
 * answering `GET /health` with 200 and `GET /items` with `{"items": [...]}`.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/api-testing.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/api-testing.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `REQUESTS` (default 200);
 * `CONCURRENCY` (default 10).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PortForward } from "@kube-forward/core"
import { Config, Data, Duration, Effect, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpIncomingMessage } from "effect/http"
import { ForwardLive } from "./backend.ts"

const Items = Schema.Struct({ items: Schema.Array(Schema.Unknown) })

class CheckFailed extends Data.TaggedError("CheckFailed")<{ readonly message: string }> {}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const requests = yield* Config.Int("REQUESTS").pipe(Config.withDefault(200))
  const concurrency = yield* Config.Int("CONCURRENCY").pipe(Config.withDefault(10))

  const fwd = yield* PortForward.make({ target: "svc/web-app", namespace, ports: [80] })
  const base = `http://127.0.0.1:${fwd.localPort}`
  yield* Effect.log(
    `testing ${fwd.target} through ${base} (service port 80 -> container port ${fwd.ports[0].targetPort})`
  )

  // functional checks
  const health = yield* HttpClient.get(`${base}/health`)
  if (health.status !== 200) return yield* new CheckFailed({ message: `GET /health -> ${health.status}` })
  yield* Effect.log(`PASS GET /health -> ${health.status} ${yield* health.text}`)
  const { items } = yield* HttpClient.get(`${base}/items`).pipe(
    Effect.flatMap(HttpIncomingMessage.schemaBodyJson(Items))
  )
  yield* Effect.log(`PASS GET /items -> ${items.length} items`)

  // a small load run
  const [total, latencies] = yield* Effect.forEach(
    Array.from({ length: requests }, (_, i) => i),
    () =>
      HttpClient.get(`${base}/health`).pipe(
        Effect.flatMap((response) => response.text.pipe(Effect.as(response.status))),
        Effect.timed,
        Effect.map(([took, status]) => ({ ms: Duration.toMillis(took), ok: status === 200 }))
      ),
    { concurrency }
  ).pipe(Effect.timed)

  const failed = latencies.filter((l) => !l.ok).length
  const sorted = latencies.map((l) => l.ms).sort((a, b) => a - b)
  const fmt = (ms: number) => `${ms.toFixed(1)}ms`
  yield* Effect.log(
    `load: ${requests} requests, ${concurrency} concurrent, ${failed} failed, ` +
      `${Math.round(requests / Duration.toSeconds(total))} req/s`
  )
  yield* Effect.log(
    `latency: min ${fmt(sorted[0])}  p50 ${fmt(percentile(sorted, 50))}  p95 ${fmt(percentile(sorted, 95))}  ` +
      `p99 ${fmt(percentile(sorted, 99))}  max ${fmt(sorted[sorted.length - 1])}`
  )
  if (failed > 0) return yield* new CheckFailed({ message: `${failed} of ${requests} requests failed` })
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
