/**
 * The fake cluster the command suites run `kube-forward` against, the command itself as a child
 * process (testkit's `Child`), and the checks they make afterwards (no kubectl left, ports
 * free, bytes through a port).
 */
import { Backend, Child, FakeCluster, Processes } from "@kube-forward/testkit"
import { Context, Effect, Layer, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** The `kube-forward` binary of this checkout. */
export const bin = Path.join(import.meta.dirname, "..", "..", "bin", "kube-forward.js")

/**
 * Starts the `kube-forward` binary with `args` as a child process of the scope (testkit's
 * `Child`: its lines, waits for a line or its exit, its whole group ended with the scope).
 */
export const kubeForward = (
  args: ReadonlyArray<string>,
  options: Child.Options = {}
): Effect.Effect<Child.Child, Child.SpawnError, Scope.Scope> => Child.spawn(process.execPath, [bin, ...args], options)

/** A pod with one echo port (named when `portName` is given). */
export const echoPod = (name: string, options: { namespace?: string; port?: number; portName?: string } = {}) => ({
  name,
  namespace: options.namespace ?? "default",
  labels: { app: name },
  containers: [{
    name: "c",
    ports: [{ name: options.portName, containerPort: options.port ?? 7000, backend: Backend.echo() }]
  }]
})

/** The suite's cluster. */
export interface TestCluster {
  readonly cluster: FakeCluster.FakeCluster
  /** The environment `kube-forward` runs with: the cluster's kubeconfig and kubectl cache. */
  readonly env: Record<string, string>
  /** Live kubectl port-forward processes talking to this cluster. */
  readonly leftovers: () => Array<Processes.ProcessInfo>
  /** A directory of the suite's own, removed at the end. */
  readonly dir: string
}

/** The suite's cluster as a service. */
export class Cluster extends Context.Service<Cluster, TestCluster>()("cli-test/Cluster") {}

/** A layer with a fake cluster of `options` (and a temporary directory). */
export const clusterLayer = (options: FakeCluster.Options): Layer.Layer<Cluster, FakeCluster.FakeClusterError> =>
  Layer.effect(
    Cluster,
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const dir = yield* tempDir
      return {
        cluster,
        env: cluster.env,
        leftovers: () => Processes.portForwards(cluster.kubeconfigPath),
        dir
      }
    })
  )

/** A temporary directory, removed when the scope closes. */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "kf-cli-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A port that was free a moment ago. */
export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The local ports of `Ready` plain lines: `name: Ready 127.0.0.1:PORT -> REMOTE, …`. */
export const readyPorts = (line: string): Array<number> =>
  [...line.matchAll(/127\.0\.0\.1:(\d+) -> /g)].map((m) => Number(m[1]))

/** Whether every one of `ports` can be bound again. */
export const allBindable = (ports: ReadonlyArray<number>) =>
  Effect.forEach(ports, (p) => Processes.canBind(p)).pipe(Effect.map((ok) => ok.every(Boolean)))
