/**
 * A debugging session: opens two forwards — the web app on a fixed port you can point a
 * browser at, and the database on a dynamic port — prints where they are, and keeps them open
 * until you press Ctrl-C (SIGINT, or SIGTERM). Then it closes both and exits 0.
 *
 * The session's cleanup handle is a `Scope` of its own: every forward of the session is opened
 * in it, and `cleanup` (closing it) ends them all, in reverse order, waiting until kubectl is
 * gone. `Effect.ensuring(cleanup)` makes sure it runs however the session ends: Ctrl-C, a
 * failure while opening the second forward, or a defect.
 *
 * Ctrl-C is the normal way to end this program, so it exits 0 on interruption (a custom
 * `teardown` for `NodeRuntime.runMain`, whose default is the shell convention 130).
 *
 * Needs: deployment `web-app` (namespace `default`) whose pods serve HTTP on port 80, and pod
 * `db` listening on port 5432.
 *
 * Run against your own cluster (kubectl on PATH), then press Ctrl-C:
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/debugging-session.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/debugging-session.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `LOCAL_PORT` (the web app's local
 * port, default 18081).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s, PortForward } from "@kube-forward/core"
import { Cause, Config, Effect, Exit, Runtime, Scope } from "effect"
import { ForwardLive } from "./backend.ts"

/** Logs it when a forward of the session is lost (the pod restarted, the network dropped). */
const reportLoss = (fwd: PortForward.PortForward) =>
  fwd.awaitClosed.pipe(Effect.catchTag("ForwardLost", (lost) => Effect.logWarning(lost.message)))

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const webPort = yield* Config.Port("LOCAL_PORT").pipe(Config.withDefault(18081))
  const k8s = K8s.make({ namespace })

  // the session's cleanup handle
  const session = yield* Scope.make()
  const cleanup = Scope.close(session, Exit.void).pipe(
    Effect.andThen(Effect.log("session cleaned up: every forward closed"))
  )

  yield* Effect.gen(function*() {
    const web = yield* k8s.deployment("web-app").portForward(webPort, 80)
    const db = yield* k8s.pod("db").portForwardDynamic(5432)
    yield* Effect.forEach([web, db], reportLoss, { concurrency: "unbounded", discard: true }).pipe(
      Effect.forkIn(session)
    )
    yield* Effect.log(`web: http://127.0.0.1:${web.localPort} -> ${web.target}:80`)
    yield* Effect.log(`db:  127.0.0.1:${db.localPort} -> ${db.target}:5432`)
    yield* Effect.log("debug session ready; press Ctrl-C to end it")
    return yield* Effect.never
  }).pipe(
    Scope.provide(session), // the forwards belong to the session
    Effect.onInterrupt(() => Effect.log("interrupted (Ctrl-C): ending the session")),
    Effect.ensuring(cleanup)
  )
}).pipe(Effect.provide(ForwardLive))

NodeRuntime.runMain(program, {
  // Ctrl-C is how this program ends: exit 0 then, and the default (1, with the error logged) otherwise
  teardown: (exit, onExit) =>
    Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
})
