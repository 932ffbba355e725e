/**
 * Temporary access with a time limit that really cuts the access: a forward is granted for
 * `ACCESS_LIMIT` (default 2 seconds). The work inside polls the app and would go on forever;
 * when the limit runs out, `Effect.timeoutOption` interrupts it, the forward's scope closes,
 * kubectl is ended — and a connection to the same local port afterwards is refused. The limit
 * counts from the request for access, opening the forward included.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 (`GET /health`).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config ACCESS_LIMIT="10 seconds" node --conditions=source examples/temporary-access.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config ACCESS_LIMIT="10 seconds" node --conditions=source examples/temporary-access.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `ACCESS_LIMIT` (default `2 seconds`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s } from "@kube-forward/core"
import { Config, Duration, Effect, Option, Ref, Schedule } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import * as Net from "node:net"
import { ForwardLive } from "./backend.ts"

/** Tries a TCP connection: `"connected"`, or the error code (e.g. `ECONNREFUSED`). */
const tryConnect = (port: number): Effect.Effect<string> =>
  Effect.callback<string>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => {
      socket.destroy()
      resume(Effect.succeed("connected"))
    })
    socket.once("error", (e: NodeJS.ErrnoException) => resume(Effect.succeed(e.code ?? e.message)))
  })

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const limit = yield* Config.Duration("ACCESS_LIMIT").pipe(Config.withDefault(Duration.seconds(2)))
  const granted = yield* Ref.make(Option.none<number>())

  const access = Effect.gen(function*() {
    const fwd = yield* K8s.make({ namespace }).pod("web-app").portForwardDynamic(80)
    yield* Ref.set(granted, Option.some(fwd.localPort))
    yield* Effect.log(`access granted for ${Duration.format(limit)} on 127.0.0.1:${fwd.localPort}`)
    // work that never ends by itself: a request every 500 ms
    let n = 0
    return yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/health`).pipe(
      Effect.tap((response) => Effect.log(`request ${++n}: GET /health -> ${response.status}`)),
      Effect.repeat(Schedule.spaced("500 millis"))
    )
  }).pipe(Effect.scoped) // the forward lives exactly as long as `access`

  const [took, outcome] = yield* access.pipe(Effect.timeoutOption(limit), Effect.timed)
  if (Option.isSome(outcome)) return yield* Effect.die("the access ended by itself")
  yield* Effect.log(`time limit reached after ${(Duration.toMillis(took) / 1000).toFixed(1)} s: forward closed`)

  const port = yield* Effect.fromOption(yield* Ref.get(granted))
  const result = yield* tryConnect(port)
  yield* Effect.log(
    `connecting to 127.0.0.1:${port} now: ${result === "ECONNREFUSED" ? "refused (ECONNREFUSED)" : result}`
  )
  if (result === "connected") return yield* Effect.die("the port still accepts connections")
}).pipe(Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
