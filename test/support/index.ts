/**
 * Shared support for the end-to-end suites: a fake cluster with a Kubectl layer pointed at it,
 * leak checks (live kubectl processes, bindable ports), and small TCP/HTTP clients.
 */
import { assert } from "@effect/vitest"
import { Context, Effect, Layer, type Scope } from "effect"
import * as Net from "node:net"
import { type Forwarder, type Kubectl, type PortAllocator, PortForward } from "@kube-forward/core"
import { FakeCluster, Processes } from "@kube-forward/testkit"

/** The kubectl the suites run: `KUBE_FORWARD_TEST_KUBECTL` or the `kubectl` on PATH. */
export const defaultKubectl = process.env.KUBE_FORWARD_TEST_KUBECTL ?? "kubectl"

/** A fake cluster plus the services a forward needs, pointed at it. */
export interface TestCluster {
  readonly cluster: FakeCluster.FakeCluster
  readonly layer: Layer.Layer<Forwarder.Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator>
  /** Live (non-zombie) kubectl port-forward processes that talk to this cluster. */
  readonly leftovers: () => Array<Processes.ProcessInfo>
}

/** Starts a fake cluster in the current scope; `binary` is the kubectl to run. */
export const testCluster = (
  options: FakeCluster.Options,
  binary: string = defaultKubectl
): Effect.Effect<TestCluster, FakeCluster.FakeClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const cluster = yield* FakeCluster.make(options)
    const layer = PortForward.layer({ binary, kubeconfig: cluster.kubeconfigPath, env: { KUBECACHEDIR: cluster.cacheDir } })
    return { cluster, layer, leftovers: () => livePortForwards(cluster.kubeconfigPath) }
  })

/** The live kubectl port-forward processes whose command line contains `marker`. */
export const livePortForwards = Processes.portForwards

/** Whether `pid` is a live process (zombies hold nothing and do not count). */
export const isAlive = Processes.isAlive

/** Whether `port` can be bound at `host` now. */
export const bindable = Processes.canBind

/** A port that was free a moment ago (bind 0, read, close). */
export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Holds `port` on `host` for the rest of the scope (makes it "in use"). */
export const occupy = (port: number, host = "127.0.0.1"): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer()
      server.listen({ port, host, exclusive: true }, () => {
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.asVoid)

/** Sends `payload` to `host:port`, half-closes, and returns everything that came back. */
export const roundTrip = (port: number, payload: Uint8Array | string, host = "127.0.0.1"): Effect.Effect<Buffer, Error> =>
  Effect.callback<Buffer, Error>((resume) => {
    const chunks: Array<Buffer> = []
    const socket = Net.connect({ host, port }, () => {
      socket.end(payload)
    })
    socket.on("data", (d) => chunks.push(d))
    socket.once("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
    socket.once("error", (e) => resume(Effect.fail(e)))
    return Effect.sync(() => socket.destroy())
  })

/** `GET http://host:port/path`: the status and body. */
export const httpGet = (port: number, path: string, host = "127.0.0.1") =>
  Effect.tryPromise(async () => {
    const res = await fetch(`http://${host}:${port}${path}`)
    return { status: res.status, body: await res.text() }
  })

/** The suite's fake cluster, as a service for `layer(...)` suites. */
export class Cluster extends Context.Service<Cluster, TestCluster>()("test/support/Cluster") {}

/** A layer with a fake cluster (`Cluster`) and the forward's services pointed at it. */
export const clusterLayer = (
  options: FakeCluster.Options,
  binary?: string
): Layer.Layer<Cluster | Forwarder.Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator, FakeCluster.FakeClusterError> =>
  Layer.unwrap(
    testCluster(options, binary).pipe(Effect.map((t) => Layer.mergeAll(t.layer, Layer.succeed(Cluster, t))))
  )

/** Runs `body` in its own scope, then checks that no kubectl of the suite's cluster is left. */
export const leakFree = <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E, Cluster | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const t = yield* Cluster
    const result = yield* Effect.scoped(body)
    assert.deepStrictEqual(t.leftovers(), [], "no kubectl port-forward left")
    return result
  })
