/**
 * Concurrent forwards to three pods: opens three forwards at the same time (three kubectl
 * processes, each on its own OS-chosen port), then calls all three pods at once and checks
 * that every forward reaches its own pod. If any of them fails to open, the others are closed
 * again: they all live in the same scope.
 *
 * Needs: pods `worker-1`, `worker-2`, `worker-3` (namespace `default`), each with an HTTP
 * server on a container port named `http` whose `GET /whoami` answers `{"name": "<pod name>"}`
 * (use any endpoint of your own pods that tells them apart).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/concurrent-forwards.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/concurrent-forwards.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PortForward } from "@kube-forward/core"
import { Config, Duration, Effect, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpIncomingMessage } from "effect/http"
import { ForwardLive } from "./backend.ts"

const pods = ["worker-1", "worker-2", "worker-3"]

/** What `GET /whoami` answers. */
const Whoami = Schema.Struct({ name: Schema.String })

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))

  const [took, forwards] = yield* Effect.forEach(
    pods,
    (pod) => PortForward.make({ target: `pod/${pod}`, namespace, ports: ["http"] }),
    { concurrency: "unbounded" }
  ).pipe(Effect.timed)
  yield* Effect.log(`opened ${forwards.length} forwards concurrently in ${Math.round(Duration.toMillis(took))} ms`)

  const answers = yield* Effect.forEach(
    forwards,
    (fwd) =>
      HttpClient.get(`http://127.0.0.1:${fwd.localPort}/whoami`).pipe(
        Effect.flatMap(HttpIncomingMessage.schemaBodyJson(Whoami)),
        Effect.map(({ name }) => ({ fwd, name }))
      ),
    { concurrency: "unbounded" }
  )

  for (const { fwd, name } of answers) {
    yield* Effect.log(`127.0.0.1:${fwd.localPort} -> ${fwd.target}: whoami says "${name}"`)
    if (`pod/${name}` !== fwd.target) return yield* Effect.die(`${fwd.target} reached the wrong pod`)
  }
  yield* Effect.log(`all ${answers.length} forwards reached their own pod`)
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
