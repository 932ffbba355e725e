/**
 * Shared support for the end-to-end suites: a fake cluster with a Kubectl layer pointed at it
 * (and observed: spawns counted, listeners noted), leak checks (live kubectl processes AND
 * bindable ports), the kernel's view of listening sockets, a kubectl wrapper fixture, and small
 * TCP/HTTP clients.
 */
import { assert } from "@effect/vitest"
import { type Forwarder, Kubectl, type PortAllocator, PortForward } from "@kube-forward/core"
import { FakeCluster, Processes } from "@kube-forward/testkit"
import { Context, Effect, Layer, type Scope, Stream } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

/** The kubectl the suites run: `KUBE_FORWARD_TEST_KUBECTL` or the `kubectl` on PATH. */
export const defaultKubectl = process.env.KUBE_FORWARD_TEST_KUBECTL ?? "kubectl"

/**
 * A kubectl that is a wrapper script starting the real one (`KUBE_FORWARD_REAL_KUBECTL`, default
 * `kubectl` on PATH) as its child, not with exec: cleanup must reach the whole tree.
 */
export const kubectlWrapper = Path.join(import.meta.dirname, "..", "fixtures", "kubectl-wrapper.sh")

/** A local address and port that a kubectl of the suite reported listening on. */
export interface Listener {
  readonly address: string
  readonly port: number
}

/** A fake cluster plus the services a forward needs, pointed at it. */
export interface TestCluster {
  readonly cluster: FakeCluster.FakeCluster
  readonly layer: Layer.Layer<Forwarder.Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator>
  /** Live (non-zombie) kubectl port-forward processes that talk to this cluster. */
  readonly leftovers: () => Array<Processes.ProcessInfo>
  /** How many kubectl processes the layer has started so far. */
  readonly spawns: () => number
  /** Every listener kubectl reported (`Forwarding from ADDRESS:PORT`), in order, so far. */
  readonly listeners: () => ReadonlyArray<Listener>
}

const FORWARDING = /^Forwarding from (?:\[([^\]]+)\]|([^\s:]+)):(\d+) -> /

/**
 * The real Kubectl service, observed: each spawn is counted and each `Forwarding from` line
 * kubectl prints is noted, on its way to the single consumer of the output.
 */
const observed = (
  real: Layer.Layer<Kubectl.Kubectl>
): {
  readonly layer: Layer.Layer<Kubectl.Kubectl>
  readonly spawns: () => number
  readonly listeners: Array<Listener>
} => {
  let spawns = 0
  const listeners: Array<Listener> = []
  const note = (line: Kubectl.OutputLine) =>
    Effect.sync(() => {
      const m = FORWARDING.exec(line.text)
      if (line.stream === "stdout" && m !== null) listeners.push({ address: m[1] ?? m[2], port: Number(m[3]) })
    })
  const layer = Layer.effect(
    Kubectl.Kubectl,
    Effect.gen(function*() {
      const kubectl = yield* Kubectl.Kubectl
      return Kubectl.Kubectl.of({
        ...kubectl,
        spawn: (args) =>
          Effect.suspend(() => {
            spawns++
            return kubectl.spawn(args)
          }).pipe(Effect.map((proc) => ({ ...proc, output: proc.output.pipe(Stream.tap(note)) })))
      })
    })
  ).pipe(Layer.provide(real))
  return { layer, spawns: () => spawns, listeners }
}

/**
 * Starts a fake cluster in the current scope; `binary` is the kubectl to run, `env` more
 * environment for it.
 */
export const testCluster = (
  options: FakeCluster.Options,
  binary: string = defaultKubectl,
  env: Record<string, string> = {}
): Effect.Effect<TestCluster, FakeCluster.FakeClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const cluster = yield* FakeCluster.make(options)
    const kubectl = observed(
      Kubectl.layer({ binary, kubeconfig: cluster.kubeconfigPath, env: { KUBECACHEDIR: cluster.cacheDir, ...env } })
    )
    return {
      cluster,
      layer: PortForward.layerWith(kubectl.layer),
      leftovers: () => Processes.portForwards(cluster.kubeconfigPath),
      spawns: kubectl.spawns,
      listeners: () => kubectl.listeners
    }
  })

/**
 * The local addresses on which a socket listens on TCP `port` right now, from the kernel's
 * tables (`/proc/net/tcp` and `/proc/net/tcp6`, Linux): what is really bound, whatever a
 * program says about it. IPv6 addresses in their short form (`::1`).
 */
export const listeningAddresses = (port: number): Array<string> => {
  const out: Array<string> = []
  for (const [file, v6] of [["/proc/net/tcp", false], ["/proc/net/tcp6", true]] as const) {
    let table: string
    try {
      table = Fs.readFileSync(file, "latin1")
    } catch {
      continue
    }
    for (const row of table.split("\n").slice(1)) {
      const [, local, , state] = row.trim().split(/\s+/)
      if (local === undefined || state !== "0A") continue // 0A: LISTEN
      const [hex, portHex] = local.split(":")
      if (Number.parseInt(portHex, 16) !== port) continue
      // the kernel prints each 32-bit word of the address in host byte order (little-endian here)
      const bytes = (hex.match(/.{8}/g) ?? []).flatMap((word) => (word.match(/../g) ?? []).reverse())
      out.push(
        v6
          ? new URL(`http://[${(bytes.join("").match(/.{4}/g) ?? []).join(":")}]`).hostname.slice(1, -1)
          : bytes.map((b) => Number.parseInt(b, 16)).join(".")
      )
    }
  }
  return out
}

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
export const roundTrip = (
  port: number,
  payload: Uint8Array | string,
  host = "127.0.0.1"
): Effect.Effect<Buffer, Error> =>
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
): Layer.Layer<
  Cluster | Forwarder.Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator,
  FakeCluster.FakeClusterError
> =>
  Layer.unwrap(
    testCluster(options, binary).pipe(Effect.map((t) => Layer.mergeAll(t.layer, Layer.succeed(Cluster, t))))
  )

/**
 * Runs `body` in its own scope, then checks that nothing of it is left: no kubectl of the
 * suite's cluster is alive, and every local listener its kubectl processes reported can be
 * bound again.
 */
export const leakFree = <A, E, R>(
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Cluster | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const t = yield* Cluster
    const before = t.listeners().length
    const result = yield* Effect.scoped(body)
    const stillBound: Array<string> = []
    for (const { address, port } of t.listeners().slice(before)) {
      if (!(yield* Processes.canBind(port, address))) stillBound.push(`${address}:${port}`)
    }
    assert.deepStrictEqual(
      { kubectl: t.leftovers().map((p) => `${p.pid} ${p.args}`), boundPorts: [...new Set(stillBound)] },
      { kubectl: [], boundPorts: [] },
      "after the scope: no kubectl port-forward left, and every local port it listened on can be bound again"
    )
    return result
  })
