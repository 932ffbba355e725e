/**
 * Shared support for the end-to-end suites, for both carriers (`kubectl` and `native`): a fake
 * cluster with the forward's services pointed at it and observed (every attempt of the
 * `Forwarder` and the listeners it reported, kubectl's own `Forwarding from` lines, every child
 * process started), leak checks (live kubectl processes, bindable ports, and for native: no
 * process started at all), the kernel's view of listening sockets, a kubectl wrapper fixture,
 * and small TCP/HTTP clients.
 */
import { assert } from "@effect/vitest"
import { Forwarder, Kubectl, KubectlForwarder, PortAllocator } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { FakeCluster, Processes } from "@kube-forward/testkit"
import { Context, Effect, Layer, Option, type Scope, Stream } from "effect"
import * as DiagnosticsChannel from "node:diagnostics_channel"
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

/** The carriers a forward can run on. */
export type BackendName = "kubectl" | "native"

/** Every carrier, in the order the parametrised suites run them. */
export const backends: ReadonlyArray<BackendName> = ["kubectl", "native"]

let processesStarted = 0
// Node publishes every child process it creates (execa's, Child's, anyone's) on this channel
DiagnosticsChannel.subscribe("child_process", () => {
  processesStarted++
})

/**
 * How many child processes this test process has started so far, whoever started them (Node's
 * `child_process` diagnostics channel; synchronous `execFileSync` calls, such as `ps`, do not
 * count). A delta of 0 over a test proves nothing was spawned.
 */
export const childProcessesStarted = (): number => processesStarted

/** A local address and port that a forward of the suite listened on. */
export interface Listener {
  readonly address: string
  readonly port: number
}

/** A fake cluster plus the services a forward needs, pointed at it. */
export interface TestCluster {
  /** The carrier the forwards run on. */
  readonly backend: BackendName
  readonly cluster: FakeCluster.FakeCluster
  readonly layer: Layer.Layer<Forwarder.Forwarder | PortAllocator.PortAllocator>
  /** `layer`'s observation applied to another carrier layer (a forward's own kubeconfig, say). */
  readonly observe: <E, R>(
    carrier: Layer.Layer<Forwarder.Forwarder | PortAllocator.PortAllocator, E, R>
  ) => Layer.Layer<Forwarder.Forwarder | PortAllocator.PortAllocator, E, R>
  /** Live (non-zombie) kubectl port-forward processes that talk to this cluster (native: none, ever). */
  readonly leftovers: () => Array<Processes.ProcessInfo>
  /** How many attempts the `Forwarder` was asked to start so far. */
  readonly attempts: () => number
  /**
   * Every local listener a forward of this cluster had, so far: the ports of every attempt the
   * `Forwarder` started (fixed ones noted before the attempt, so a failed attempt counts too)
   * on every address of its spec, and for kubectl every `Forwarding from ADDRESS:PORT` it printed.
   */
  readonly listeners: () => ReadonlyArray<Listener>
}

const FORWARDING = /^Forwarding from (?:\[([^\]]+)\]|([^\s:]+)):(\d+) -> /

/** The concrete hosts a listener on `address` binds (`localhost`: 127.0.0.1 and ::1, as kubectl). */
const hostsOf = (address: string): ReadonlyArray<string> => address === "localhost" ? ["127.0.0.1", "::1"] : [address]

/** The real Kubectl service, observed: each `Forwarding from` line kubectl prints is noted. */
const observedKubectl = (real: Layer.Layer<Kubectl.Kubectl>, listeners: Array<Listener>) => {
  const note = (line: Kubectl.OutputLine) =>
    Effect.sync(() => {
      const m = FORWARDING.exec(line.text)
      if (line.stream === "stdout" && m !== null) listeners.push({ address: m[1] ?? m[2], port: Number(m[3]) })
    })
  return Layer.effect(
    Kubectl.Kubectl,
    Effect.gen(function*() {
      const kubectl = yield* Kubectl.Kubectl
      return Kubectl.Kubectl.of({
        ...kubectl,
        spawn: (args) =>
          kubectl.spawn(args).pipe(Effect.map((proc) => ({ ...proc, output: proc.output.pipe(Stream.tap(note)) })))
      })
    })
  ).pipe(Layer.provide(real))
}

/** The carrier in context, observed: attempts counted, their ports × the spec's addresses noted. */
const observedForwarder = (seen: { attempts: number; readonly listeners: Array<Listener> }) =>
  Layer.effect(
    Forwarder.Forwarder,
    Effect.gen(function*() {
      const inner = yield* Forwarder.Forwarder
      const note = (ports: ReadonlyArray<number>, addresses: ReadonlyArray<string>) =>
        Effect.sync(() => {
          for (const port of ports) {
            for (const address of addresses) {
              for (const host of hostsOf(address)) seen.listeners.push({ address: host, port })
            }
          }
        })
      return Forwarder.Forwarder.of({
        ...inner,
        start: (request) =>
          Effect.suspend(() => {
            seen.attempts++
            return note(request.locals.filter((p) => p !== 0), request.spec.addresses)
          }).pipe(
            Effect.andThen(inner.start(request)),
            Effect.tap((attempt) => note(attempt.ports.map((p) => p.local), request.spec.addresses))
          )
      })
    })
  )

/** How the kubectl carrier is run: another binary, more environment for it. */
export interface KubectlOptions {
  readonly binary?: string | undefined
  readonly env?: Record<string, string> | undefined
}

/**
 * Starts a fake cluster in the current scope, with the services of `backend` pointed at it:
 * kubectl (`kubectl.binary`, with `kubectl.env` added to its environment) or the native carrier.
 */
export const testCluster = (
  options: FakeCluster.Options,
  backend: BackendName = "kubectl",
  kubectl: KubectlOptions = {}
): Effect.Effect<TestCluster, FakeCluster.FakeClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const cluster = yield* FakeCluster.make(options)
    const seen = { attempts: 0, listeners: [] as Array<Listener> }
    const observe = <E, R>(carrier: Layer.Layer<Forwarder.Forwarder | PortAllocator.PortAllocator, E, R>) =>
      observedForwarder(seen).pipe(Layer.provideMerge(carrier))
    const carrier: Layer.Layer<Forwarder.Forwarder> = backend === "native"
      ? Layer.effect(Forwarder.Forwarder, NativeForwarder.make({ kubeconfig: cluster.kubeconfigPath }))
      : KubectlForwarder.layer.pipe(Layer.provide(observedKubectl(
        Kubectl.layer({
          binary: kubectl.binary ?? defaultKubectl,
          kubeconfig: cluster.kubeconfigPath,
          env: { KUBECACHEDIR: cluster.cacheDir, ...kubectl.env }
        }),
        seen.listeners
      )))
    return {
      backend,
      cluster,
      layer: observe(Layer.merge(carrier, PortAllocator.layer)),
      observe,
      leftovers: () => Processes.portForwards(cluster.kubeconfigPath),
      attempts: () => seen.attempts,
      listeners: () => seen.listeners
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

/** `GET http://host:port/path`: the status and body. */
export const httpGet = (port: number, path: string, host = "127.0.0.1") =>
  Effect.tryPromise(async () => {
    const res = await fetch(`http://${host}:${port}${path}`)
    return { status: res.status, body: await res.text() }
  })

/** The suite's fake cluster, as a service for `layer(...)` suites. */
export class Cluster extends Context.Service<Cluster, TestCluster>()("test/support/Cluster") {}

/** A layer with a fake cluster (`Cluster`) and the forward's services of `backend` pointed at it. */
export const clusterLayer = (
  options: FakeCluster.Options,
  backend: BackendName = "kubectl",
  kubectl: KubectlOptions = {}
): Layer.Layer<Cluster | Forwarder.Forwarder | PortAllocator.PortAllocator, FakeCluster.FakeClusterError> =>
  Layer.unwrap(
    testCluster(options, backend, kubectl).pipe(
      Effect.map((t) => Layer.mergeAll(t.layer, Layer.succeed(Cluster, t)))
    )
  )

/**
 * Runs `body` in its own scope, then checks that nothing of it is left: no kubectl of the
 * suite's cluster is alive, every local listener a forward of the body had can be bound again,
 * no port-forward session of the body is still open at the API server, and on the native
 * carrier, not one child process was started (there is no process to leave behind). The tests of one cluster must run one after the other for that count to be theirs.
 */
export const leakFree = <A, E, R>(
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Cluster | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const t = yield* Cluster
    const before = {
      listeners: t.listeners().length,
      processes: childProcessesStarted(),
      sessions: (yield* t.cluster.counters).activeSessions
    }
    const result = yield* Effect.scoped(body)
    const stillBound = new Set<string>()
    for (const { address, port } of t.listeners().slice(before.listeners)) {
      if (!(yield* Processes.canBind(port, address))) stillBound.add(`${address}:${port}`)
    }
    const started = childProcessesStarted() - before.processes
    // the server learns of a closed session when its connection closes: wait for that, bounded
    const settled = yield* t.cluster.awaitCounters((c) => c.activeSessions <= before.sessions).pipe(
      Effect.timeoutOption("5 seconds")
    )
    const sessionsLeft = Option.isSome(settled) ? 0 : (yield* t.cluster.counters).activeSessions - before.sessions
    assert.deepStrictEqual(
      {
        kubectl: t.leftovers().map((p) => `${p.pid} ${p.args}`),
        boundPorts: [...stillBound],
        serverSessions: sessionsLeft,
        ...(t.backend === "native" ? { processesStarted: started } : {})
      },
      { kubectl: [], boundPorts: [], serverSessions: 0, ...(t.backend === "native" ? { processesStarted: 0 } : {}) },
      "after the scope: no kubectl port-forward left, every local port a forward listened on can be bound again, " +
        "no port-forward session left open at the API server" +
        (t.backend === "native" ? ", and the native carrier started no process" : "")
    )
    return result
  })
