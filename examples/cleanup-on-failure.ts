/**
 * Guaranteed cleanup when the work fails: the work done through the forward fails half way,
 * and the forward is closed anyway — kubectl is gone and the local port can be bound again —
 * because the forward belongs to the scope, and a scope closes on success, failure and
 * interruption alike. No try/finally to remember.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 (`GET /items`).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/cleanup-on-failure.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/cleanup-on-failure.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s, PortAllocator, PortForward } from "@kube-forward/core"
import { Config, Data, Effect, Option, Ref } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { ForwardLive } from "./backend.ts"

/** The (made-up) failure of our work. */
class ReportFailed extends Data.TaggedError("ReportFailed")<{ readonly reason: string }> {}

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  // kept only so that we can look at the forward after its scope is gone
  const opened = yield* Ref.make(Option.none<PortForward.PortForward>())

  const work = Effect.gen(function*() {
    const fwd = yield* K8s.make({ namespace }).pod("web-app").portForwardDynamic(80)
    yield* Ref.set(opened, Option.some(fwd))
    yield* Effect.log(`forward open on 127.0.0.1:${fwd.localPort}`)
    const items = yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/items`)
    yield* Effect.log(`GET /items -> ${items.status}; building the report...`)
    return yield* new ReportFailed({ reason: "the report template is missing" })
  }).pipe(Effect.scoped) // the forward's lifetime: this block, however it ends

  // handle the failure we expect; anything else (no such pod, say) still fails the program
  const failure = yield* work.pipe(Effect.catchTag("ReportFailed", Effect.succeed))
  yield* Effect.log(`the work failed: ${failure._tag}: ${failure.reason}`)

  const fwd = yield* Effect.fromOption(yield* Ref.get(opened))
  const status = yield* fwd.currentStatus
  const free = yield* PortAllocator.isFree(fwd.localPort, "127.0.0.1")
  yield* Effect.log(`after the failure: status=${status._tag}, isOpen=${yield* fwd.isOpen}`)
  yield* Effect.log(`local port ${fwd.localPort} bindable again: ${free}`)
  if (status._tag !== "Closed" || !free) return yield* Effect.die("the forward was not cleaned up")
}).pipe(Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
