/**
 * Localhost-only binding: by default a forward listens on 127.0.0.1 only, so nobody else on
 * the network can use your access to the cluster. This example shows that 127.0.0.1 answers
 * and that the machine's non-loopback address does not listen on that port (on a machine
 * without one it says that it could not check).
 * Binding elsewhere is an explicit choice: `address: "0.0.0.0"`, `"localhost"` (127.0.0.1
 * and ::1) or a list of addresses in the spec.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80 (`GET /health`).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/localhost-binding.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/localhost-binding.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { ForwardSpec, K8s } from "@kube-forward/core"
import { Config, Effect } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import * as Net from "node:net"
import * as Os from "node:os"
import { ForwardLive } from "./backend.ts"

/** Tries a TCP connection: `"connected"`, or the error code (e.g. `ECONNREFUSED`). */
const tryConnect = (host: string, port: number): Effect.Effect<string> =>
  Effect.callback<string>((resume) => {
    const socket = Net.connect({ host, port, timeout: 2000 }, () => {
      socket.destroy()
      resume(Effect.succeed("connected"))
    })
    socket.once("timeout", () => {
      socket.destroy()
      resume(Effect.succeed("no answer"))
    })
    socket.once("error", (e: NodeJS.ErrnoException) => resume(Effect.succeed(e.code ?? e.message)))
  })

/** The machine's first non-internal IPv4 address, if any. */
const externalAddress = (): string | undefined =>
  Object.values(Os.networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .find((a) => a.family === "IPv4" && !a.internal)?.address

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const fwd = yield* K8s.make({ namespace }).pod("web-app").portForwardDynamic(80)
  const [port] = fwd.ports
  yield* Effect.log(`forward listens on ${port.address}:${port.local} (the default: ${ForwardSpec.defaultAddress})`)

  const health = yield* HttpClient.get(`http://127.0.0.1:${port.local}/health`)
  yield* Effect.log(`127.0.0.1:${port.local}: GET /health -> ${health.status}`)

  const external = externalAddress()
  if (external === undefined) {
    yield* Effect.log("could not check unreachability from outside: this machine has no non-loopback IPv4 address")
    return
  }
  const result = yield* tryConnect(external, port.local)
  yield* Effect.log(
    `${external}:${port.local}: ${
      result === "connected" ? "connected (NOT localhost-only!)" : `not listening (${result})`
    }`
  )
  if (result === "connected") return yield* Effect.die(`the forward is reachable on ${external}`)
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
