/**
 * The kube-forward demo: no cluster needed.
 *
 * Starts the testkit's built-in fake Kubernetes API server in this process, with one pod
 * `web-app` serving HTTP on port 80; opens a port forward to it through the REAL kubectl on
 * your PATH (or, with `KUBE_FORWARD_BACKEND=native`, in-process without kubectl); makes a few
 * requests through it; shows the forward's status; closes it and verifies the cleanup (the
 * local port can be bound again, kubectl is gone — or was never there).
 *
 * Run it (kubectl on PATH, after `npm install`):
 *
 *     npm run demo
 *
 * or on the native carrier, without kubectl:
 *
 *     KUBE_FORWARD_BACKEND=native npm run demo
 *
 * Against a real cluster, the same forward is `PortForward.make({ target: "pod/web-app",
 * ports: [80] })` with `PortForward.layerFromEnv` (or `NativeForwarder.layerFromEnv`) instead of
 * the fake cluster's kubeconfig — see the other files in this directory.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Kubectl, PortAllocator, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Backend, FakeCluster, Processes } from "@kube-forward/testkit"
import { Config, Data, Duration, Effect, Fiber, Layer, Runtime, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpIncomingMessage } from "effect/http"

const write = (text: string) => Effect.sync(() => process.stdout.write(text))
const line = (text: string) => write(`${text}\n`)
const ms = (d: Duration.Duration) => `${Math.round(Duration.toMillis(d))} ms`

/** Wraps the Kubectl service to remember the pid of every kubectl it starts. */
const recordingPids = (pids: Array<number>) =>
  Layer.effect(
    Kubectl.Kubectl,
    Effect.gen(function*() {
      const inner = yield* Kubectl.Kubectl
      return Kubectl.Kubectl.of({
        ...inner,
        spawn: (args) => inner.spawn(args).pipe(Effect.tap((p) => Effect.sync(() => pids.push(p.pid))))
      })
    })
  )

/** The demo could not run; the reason was printed already (so runMain does not log it again). */
class DemoAborted extends Data.TaggedError("DemoAborted") {
  override readonly [Runtime.errorReported] = false
}

const Items = Schema.Struct({ items: Schema.Array(Schema.Struct({ name: Schema.String })) })

const demo = Effect.gen(function*() {
  const started = Date.now()
  const backend = yield* Config.Literals(["kubectl", "native"], "KUBE_FORWARD_BACKEND").pipe(
    Config.withDefault("kubectl" as const)
  )
  const native = backend === "native"
  yield* line(
    `kube-forward demo: a port forward ${
      native ? "carried in-process (native, no kubectl)" : "through real kubectl"
    }, against a built-in fake cluster\n`
  )

  yield* write("▸ starting fake cluster… ")
  const cluster = yield* FakeCluster.make({
    pods: [{
      name: "web-app",
      containers: [{
        name: "web",
        ports: [{ name: "http", containerPort: 80, backend: Backend.http({ name: "web-app" }) }]
      }]
    }]
  })
  yield* line(`up at ${cluster.url} (pod web-app, HTTP on port 80)`)

  // the real kubectl (from PATH, or KUBE_FORWARD_KUBECTL), or the native carrier, pointed at the fake cluster
  const binary = yield* Config.String("KUBE_FORWARD_KUBECTL").pipe(Config.withDefault("kubectl"))
  const pids: Array<number> = []
  const carrier = native
    ? NativeForwarder.layer({ kubeconfig: cluster.kubeconfigPath })
    : PortForward.layerWith(
      recordingPids(pids).pipe(
        Layer.provide(
          Kubectl.layer({ binary, kubeconfig: cluster.kubeconfigPath, env: { KUBECACHEDIR: cluster.cacheDir } })
        )
      )
    )
  const services = Layer.mergeAll(carrier, FetchHttpClient.layer)

  yield* Effect.gen(function*() {
    yield* line(
      native
        ? "▸ starting the native forward to pod/web-app :80"
        : `▸ starting \`${binary} port-forward pod/web-app :80\``
    )
    yield* write(native ? "▸ waiting for the forward… " : "▸ waiting for kubectl to report the forward… ")
    const [took, fwd] = yield* PortForward.make({ target: "pod/web-app", ports: [80] }).pipe(Effect.timed)
    const pid = pids[pids.length - 1]
    yield* line(
      `ready in ${ms(took)}: 127.0.0.1:${fwd.localPort} → ${fwd.target}:${fwd.remotePort} (${
        native ? "no process" : `kubectl pid ${pid}`
      })`
    )

    const transitions = yield* fwd.status.pipe(
      Stream.map((s) => s._tag),
      Stream.runCollect,
      Effect.forkScoped({ startImmediately: true })
    )

    const base = `http://127.0.0.1:${fwd.localPort}`
    yield* line(`▸ requests through the forward (${base}):`)
    const health = yield* HttpClient.get(`${base}/health`)
    yield* line(`    GET /health  → ${health.status} ${yield* health.text}`)
    const items = yield* HttpClient.get(`${base}/items`)
    const { items: list } = yield* HttpIncomingMessage.schemaBodyJson(Items)(items)
    yield* line(`    GET /items   → ${items.status} ${list.length} items: ${list.map((i) => i.name).join(", ")}`)
    const whoami = yield* HttpClient.get(`${base}/whoami`)
    yield* line(`    GET /whoami  → ${whoami.status} ${yield* whoami.text}`)

    yield* line(`▸ status: localPort=${fwd.localPort} remotePort=${fwd.remotePort} isOpen=${yield* fwd.isOpen}`)
    yield* write("▸ closing the forward… ")
    const [closeTook] = yield* Effect.timed(fwd.close)
    yield* line(`closed in ${ms(closeTook)}`)
    yield* line(`▸ status stream: ${(yield* Fiber.join(transitions)).join(" → ")}`)

    yield* write("▸ verifying cleanup… ")
    const open = yield* fwd.isOpen
    const bindable = yield* PortAllocator.isFree(fwd.localPort, "127.0.0.1")
    // native: no kubectl was ever started for this cluster; kubectl: its whole process group is gone
    const gone = native
      ? pids.length === 0 && Processes.portForwards(cluster.kubeconfigPath).length === 0
      : Processes.group(pid).length === 0
    yield* line(
      `isOpen=${open} · port ${fwd.localPort} bindable ${bindable ? "✓" : "✗"} · ${
        native ? "no kubectl" : "kubectl gone"
      } ${gone ? "✓" : "✗"}`
    )
    if (open || !bindable || !gone) return yield* Effect.die("the forward was not cleaned up")
  }).pipe(
    Effect.scoped,
    Effect.provide(services),
    Effect.catchTag(
      "KubectlNotFound",
      (e) =>
        line(
          `\n✗ ${e.message}\n  The demo runs the real kubectl: install it (https://kubernetes.io/docs/tasks/tools/).`
        ).pipe(
          Effect.andThen(Effect.fail(new DemoAborted()))
        )
    )
  )

  yield* write("▸ stopping fake cluster… ")
  return started
}).pipe(
  Effect.scoped, // stops the fake cluster
  Effect.flatMap((started) => line(`stopped\n✔ done in ${((Date.now() - started) / 1000).toFixed(1)} s`))
)

NodeRuntime.runMain(demo)
