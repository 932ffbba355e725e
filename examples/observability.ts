/**
 * Observability: every forward reports metrics (`ForwardMetrics`: forwards open, time to
 * ready, reconnects, failures by error) and spans (`PortForward.make`, one `PortForward.attempt`
 * per attempt, with target, backend, ports and outcome) through Effect's own machinery, so
 * Effect's exporters publish them. Here `PrometheusMetrics.layerHttp` (from
 * `effect/observability`) serves `/metrics` for a Prometheus scraper; the program opens a
 * forward, uses it, fails to open one to a pod that does not exist, and then scrapes its own
 * endpoint and prints the `kube_forward_*` series.
 *
 * For traces, add `OtlpTracer.layer({ url: "http://collector:4318/v1/traces", resource: {
 * serviceName: "my-app" } })` (also from `effect/observability`, with an `HttpClient` layer):
 * the same spans go to any OpenTelemetry collector.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 named `http`, and no
 * pod named `no-such-pod`.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/observability.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/observability.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { PortForward } from "@kube-forward/core"
import { Config, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import * as Http from "node:http"
import { ForwardLive } from "./backend.ts"

/** `/metrics` in Prometheus' text format, on a port of loopback the OS chooses. */
const MetricsEndpoint = HttpRouter.serve(PrometheusMetrics.layerHttp(), { disableLogger: true, disableListenLog: true })
  .pipe(Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { port: 0, host: "127.0.0.1" })))

const get = (url: string) => Effect.promise(() => fetch(url).then((res) => res.text()))

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))

  const fwd = yield* PortForward.make({ target: "pod/web-app", namespace, ports: ["http"] })
  yield* get(`http://127.0.0.1:${fwd.localPort}/health`)
  yield* fwd.close

  const missing = yield* PortForward.make({ target: "pod/no-such-pod", namespace, ports: [80] }).pipe(Effect.flip)
  yield* Effect.log(`as expected: ${missing._tag}`)

  const address = (yield* HttpServer.HttpServer).address
  if (address._tag === "UnixPathAddress") return yield* Effect.die("the metrics endpoint is not on TCP")
  const scraped = yield* get(`http://127.0.0.1:${address.port}/metrics`)
  yield* Effect.log(`scraped http://127.0.0.1:${address.port}/metrics:`)
  for (const line of scraped.split("\n")) {
    if (line.startsWith("kube_forward_") && !line.includes("_bucket{")) yield* Effect.log(`  ${line}`)
  }
}).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(ForwardLive, MetricsEndpoint)))

NodeRuntime.runMain(program)
