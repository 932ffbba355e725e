/**
 * Error handling with typed errors:
 *
 * 1. `PortInUse` on a fixed port → fall back to a dynamic port. The example takes port 18090
 *    with a first forward, so a second forward asking for the same port really finds it taken.
 * 2. `PodNotFound` → a clear message for a person, with `Effect.catchTag`.
 * 3. Several errors at once with `Effect.catchTags` (here an `InvalidSpec`: rejected before
 *    kubectl is even started, naming the field that is wrong).
 *
 * Every failure is a member of `PortForwardError`, so the compiler knows what can go wrong
 * and which cases are handled.
 *
 * Needs: pod `web-app` (namespace `default`) with an HTTP server on port 80; no pod named
 * `web-ap` (the typo is on purpose).
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/error-handling.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/error-handling.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `LOCAL_PORT` (default 18090).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s, PortForward } from "@kube-forward/core"
import { Config, Effect } from "effect"
import { ForwardLive } from "./backend.ts"

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const preferred = yield* Config.Port("LOCAL_PORT").pipe(Config.withDefault(18090))
  const web = K8s.make({ namespace }).pod("web-app")

  // 1. prefer a fixed port, fall back to any free one
  const forwardPreferring = Effect.fn("forwardPreferring")(function*(port: number) {
    return yield* web.portForward(port, 80).pipe(
      Effect.catchTag(
        "PortInUse",
        (error) =>
          Effect.logWarning(`${error.message}; falling back to a dynamic port`).pipe(
            Effect.andThen(web.portForwardDynamic(80))
          )
      )
    )
  })
  const first = yield* forwardPreferring(preferred)
  yield* Effect.log(`first forward: 127.0.0.1:${first.localPort} -> ${first.target}:80`)
  const second = yield* forwardPreferring(first.localPort) // the port the first one holds
  yield* Effect.log(
    `second forward fell back to 127.0.0.1:${second.localPort}; both open: ${
      (yield* first.isOpen) && (yield* second.isOpen)
    }`
  )

  // 2. a typo in the pod name becomes a message a person can act on
  const typo = yield* K8s.make({ namespace }).pod("web-ap").portForwardDynamic(80).pipe(
    Effect.as("unexpectedly found pod web-ap"),
    Effect.catchTag("PodNotFound", (error) =>
      Effect.succeed(
        `there is no ${error.target} in namespace ${error.namespace} ` +
          `(kubectl said: ${error.detail}); check the name with: kubectl get pods -n ${namespace}`
      ))
  )
  yield* Effect.log(`PodNotFound handled: ${typo}`)

  // 3. several cases in one place
  const invalid = yield* PortForward.make({ target: "pod/web-app", namespace, ports: [{ local: 70000, remote: 80 }] })
    .pipe(
      Effect.as("unexpectedly opened"),
      Effect.catchTags({
        InvalidSpec: (error) =>
          Effect.succeed(`invalid spec: ${error.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`),
        PodNotFound: (error) => Effect.succeed(`not found: ${error.message}`),
        PortInUse: (error) => Effect.succeed(`port taken: ${error.message}`)
      })
    )
  yield* Effect.log(`InvalidSpec handled: ${invalid}`)
}).pipe(Effect.scoped, Effect.provide(ForwardLive))

NodeRuntime.runMain(program)
