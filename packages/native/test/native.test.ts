/**
 * What only the native carrier does, against the fake cluster: transports as kubectl ≥ 1.31
 * negotiates them, a refused connection that fails alone, spreading over a service's pods,
 * and memory that stays bounded when one side stops reading.
 */
import { assert, describe, it } from "@effect/vitest"
import { ForwardMetrics, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Backend, FakeCluster, Processes, TcpClient } from "@kube-forward/testkit"
import { Effect, Exit, Fiber, Metric, Schedule, Scope, Stream } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

/** Connects and waits until the connection is closed by the other side (or fails). */
const closedByPeer = (port: number) =>
  Effect.callback<"closed" | "data", Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.end())
    socket.once("data", () => resume(Effect.succeed("data")))
    socket.once("close", () => resume(Effect.succeed("closed")))
    socket.once("error", () => resume(Effect.succeed("closed")))
    return Effect.sync(() => socket.destroy())
  })

const whoami = (port: number) =>
  Effect.promise(() =>
    fetch(`http://127.0.0.1:${port}/whoami`).then((r) => r.json() as Promise<{ readonly name: string }>)
  )
    .pipe(Effect.map((body) => body.name))

/** A TCP server on loopback that we can stop and start again on the same port. */
const controllable = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer((s) => s.pipe(s))
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
)

const native = (cluster: FakeCluster.FakeCluster, options: NativeForwarder.Options = {}) =>
  NativeForwarder.layer({ kubeconfig: cluster.kubeconfigPath, ...options })

describe("native carrier", () => {
  it.live("negotiates as kubectl >= 1.31: the tunnel first, SPDY when the server refuses it, or as forced", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [{ name: "web", containers: [{ name: "c", ports: [{ containerPort: 7, backend: Backend.echo() }] }] }]
      })
      const open = (options: NativeForwarder.Options) =>
        Effect.scoped(
          PortForward.make({ target: "pod/web", ports: [7] }).pipe(
            Effect.flatMap((fwd) => TcpClient.roundTrip(fwd.localPort, "x")),
            Effect.provide(native(cluster, options))
          )
        )
      yield* open({})
      assert.deepStrictEqual((yield* cluster.counters).sessions, { spdy: 0, tunnel: 1, websocket: 0 })
      yield* open({ transport: "spdy" })
      assert.deepStrictEqual((yield* cluster.counters).sessions, { spdy: 1, tunnel: 1, websocket: 0 })
      yield* cluster.setTransport("spdy-only")
      yield* open({})
      assert.deepStrictEqual(
        (yield* cluster.counters).sessions,
        { spdy: 2, tunnel: 1, websocket: 0 },
        "fell back to SPDY"
      )
      const forced = yield* open({ transport: "websocket" }).pipe(Effect.flip)
      assert.isTrue("_tag" in forced && forced._tag === "ApiServerError" && forced.status === 400, forced.message)
    }))

  it.live("an upgrade closed without an answer is not a refusal: no SPDY fallback, ClusterUnreachable", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [{ name: "web", containers: [{ name: "c", ports: [{ containerPort: 7, backend: Backend.echo() }] }] }]
      })
      yield* cluster.setUpgradeFault({ _tag: "CloseWithoutStatus" })
      const error = yield* PortForward.make({ target: "pod/web", ports: [7] }).pipe(
        Effect.scoped,
        Effect.provide(native(cluster)),
        Effect.flip
      )
      assert.strictEqual(error._tag, "ClusterUnreachable", error.message)
      const counters = yield* cluster.counters
      assert.strictEqual(counters.upgradeRequests, 1, "one upgrade asked, none retried over SPDY")
      assert.deepStrictEqual(counters.sessions, { spdy: 0, tunnel: 0, websocket: 0 })
    }))

  it.live("a connection the pod refuses fails alone: the forward stays Ready and the next connection works", () =>
    Effect.gen(function*() {
      const server = yield* controllable
      const port = (server.address() as Net.AddressInfo).port
      const cluster = yield* FakeCluster.make({
        pods: [{
          name: "flaky",
          containers: [{ name: "c", ports: [{ containerPort: 80, backend: Backend.address("127.0.0.1", port) }] }]
        }]
      })
      const registry = new Map()
      yield* Effect.gen(function*() {
        const fwd = yield* PortForward.make({ target: "pod/flaky", ports: [80] })
        assert.strictEqual(String(yield* TcpClient.roundTrip(fwd.localPort, "before")), "before")
        yield* Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
        assert.strictEqual(yield* closedByPeer(fwd.localPort), "closed", "the refused connection is closed")
        assert.isTrue(yield* fwd.isOpen, "the forward is still Ready")
        const failures = yield* Metric.value(
          Metric.withAttributes(ForwardMetrics.connectionFailures, { backend: "native" })
        )
        assert.strictEqual(failures.count, 1)
        yield* Effect.callback<void>((resume) => void server.listen(port, "127.0.0.1", () => resume(Effect.void)))
        assert.strictEqual(String(yield* TcpClient.roundTrip(fwd.localPort, "after")), "after")
        assert.strictEqual((yield* cluster.counters).sessions.tunnel, 1, "all on one session")
      }).pipe(Effect.scoped, Effect.provide(native(cluster)), Effect.provideService(Metric.MetricRegistry, registry))
    }))

  it.live("spread: connections reach every ready pod of a service, following a scale-up and a deletion", () =>
    Effect.gen(function*() {
      const pod = (name: string) => ({
        name,
        labels: { app: "web" },
        containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080, backend: Backend.http({ name }) }] }]
      })
      const cluster = yield* FakeCluster.make({
        pods: [pod("web-a"), pod("web-b"), pod("web-c")],
        services: [{ name: "web", selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] }]
      })
      yield* Effect.gen(function*() {
        const fwd = yield* PortForward.make({ target: "svc/web", ports: [80] })
        const seen = new Set<string>()
        for (let i = 0; i < 9; i++) seen.add(yield* whoami(fwd.localPort))
        assert.deepStrictEqual([...seen].sort(), ["web-a", "web-b", "web-c"])
        yield* cluster.addPod(pod("web-d"))
        yield* cluster.awaitCounters((c) => c.activeSessions === 4)
        const after = new Set<string>()
        for (let i = 0; i < 8; i++) after.add(yield* whoami(fwd.localPort))
        assert.isTrue(after.has("web-d"), `a scaled-up pod gets connections: ${[...after]}`)
        yield* cluster.deletePod("default", "web-a")
        yield* cluster.awaitCounters((c) => c.activeSessions === 3)
        const left = new Set<string>()
        for (let i = 0; i < 6; i++) left.add(yield* whoami(fwd.localPort))
        assert.deepStrictEqual([...left].sort(), ["web-b", "web-c", "web-d"])
        assert.isTrue(yield* fwd.isOpen)
      }).pipe(Effect.scoped, Effect.provide(native(cluster, { spread: true })))
    }))

  it.live("spread: sessions lost at once are opened again; the forward stays Ready and counts no failed connection", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [webPod("web-a"), webPod("web-b")],
        services: [{ name: "web", selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] }]
      })
      const registry = new Map()
      yield* Effect.gen(function*() {
        const fwd = yield* PortForward.make({ target: "svc/web", ports: [80] })
        yield* cluster.awaitCounters((c) => c.activeSessions === 2)
        const held = yield* heldConnection(fwd.localPort)
        const before = (yield* cluster.counters).upgradeRequests
        yield* cluster.dropSessions
        yield* held
        yield* cluster.awaitCounters((c) => c.activeSessions === 2 && c.upgradeRequests === before + 2)
        const seen = new Set<string>()
        for (let i = 0; i < 6; i++) seen.add(yield* whoami(fwd.localPort))
        assert.deepStrictEqual([...seen].sort(), ["web-a", "web-b"])
        const [now] = yield* fwd.status.pipe(Stream.take(1), Stream.runCollect)
        assert.strictEqual(now._tag, "Ready", "the forward never left Ready")
        const failures = yield* Metric.value(
          Metric.withAttributes(ForwardMetrics.connectionFailures, { backend: "native" })
        )
        assert.strictEqual(failures.count, 0, "a lost session is not a failed connection")
      }).pipe(
        Effect.scoped,
        Effect.provide(native(cluster, { spread: true })),
        Effect.provideService(Metric.MetricRegistry, registry)
      )
    }))

  it.live("spread: when no pod's session can be opened again the forward is lost, and reconnects", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [webPod("web-a"), webPod("web-b")],
        services: [{ name: "web", selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] }]
      })
      yield* Effect.gen(function*() {
        const fwd = yield* PortForward.make({
          target: "svc/web",
          ports: [80],
          reconnect: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 100 }))
        })
        yield* cluster.awaitCounters((c) => c.activeSessions === 2)
        const reconnecting = yield* fwd.status.pipe(
          Stream.filter((s) => s._tag === "Reconnecting"),
          Stream.take(1),
          Stream.runCollect,
          Effect.forkScoped
        )
        yield* cluster.setUpgradeFault({ _tag: "Status", code: 500 })
        yield* cluster.dropSessions
        const [status] = yield* Fiber.join(reconnecting)
        assert.match(
          status._tag === "Reconnecting" ? status.cause.message : "",
          /lost connection to every pod of service web/
        )
        yield* cluster.setUpgradeFault(undefined)
        yield* fwd.status.pipe(Stream.filter((s) => s._tag === "Ready"), Stream.take(1), Stream.runDrain)
        assert.include(["web-a", "web-b"], yield* whoami(fwd.localPort))
      }).pipe(Effect.scoped, Effect.provide(native(cluster, { spread: true })))
    }))

  it.live("spread: closing while a pod's session is still being opened leaves nothing and does not crash", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [webPod("web-a")],
        services: [{ name: "web", selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] }]
      })
      const scope = yield* Scope.make()
      const fwd = yield* PortForward.make({ target: "svc/web", ports: [80] }).pipe(
        Scope.provide(scope),
        Effect.provide(native(cluster, { spread: true }))
      )
      yield* cluster.setUpgradeFault({ _tag: "Hang" })
      const before = (yield* cluster.counters).upgradeRequests
      yield* cluster.addPod(webPod("web-b"))
      yield* cluster.awaitCounters((c) => c.upgradeRequests === before + 1)
      yield* Scope.close(scope, Exit.void)
      yield* cluster.awaitCounters((c) => c.activeSessions === 0)
      assert.isTrue(yield* Processes.canBind(fwd.localPort), "the port is free after close")
      // the hung upgrade's connection was closed by us: the server sees no client left
      yield* cluster.setUpgradeFault(undefined)
      assert.isFalse(yield* fwd.isOpen)
    }))
})

const webPod = (name: string) => ({
  name,
  labels: { app: "web" },
  containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080, backend: Backend.http({ name }) }] }]
})

/** A connection through `port` held open; the effect completes when the other side closes it. */
const heldConnection = (port: number) =>
  Effect.callback<Effect.Effect<void>>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const closed = Effect.callback<void>((done) => {
      if (socket.destroyed) return done(Effect.void)
      socket.once("close", () => done(Effect.void))
    })
    socket.once("connect", () => socket.write("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n"))
    socket.once("data", () => resume(Effect.succeed(closed)))
    socket.on("error", () => {})
  })

/**
 * A TCP proxy in front of the fake cluster that can freeze: it stops moving bytes either way
 * while keeping every connection open, as a dead node or a silent network path does.
 */
const freezingProxy = (target: URL) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: Net.Server; readonly freeze: () => void; readonly port: number }>((resume) => {
      const pairs: Array<readonly [Net.Socket, Net.Socket]> = []
      const server = Net.createServer((client) => {
        const upstream = Net.connect({ host: target.hostname, port: Number(target.port) })
        client.pipe(upstream).pipe(client)
        client.on("error", () => upstream.destroy())
        upstream.on("error", () => client.destroy())
        pairs.push([client, upstream])
      })
      const freeze = () => {
        for (const [client, upstream] of pairs) {
          client.unpipe(upstream)
          upstream.unpipe(client)
          client.pause()
          upstream.pause()
        }
      }
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ server, freeze, port: (server.address() as Net.AddressInfo).port })))
    }),
    ({ server }) =>
      Effect.sync(() =>
        server.close()
      )
  )

describe("native carrier: session liveness", () => {
  it.live("PINGs notice an API server that stops answering: the forward is lost, with why", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [{ name: "web", containers: [{ name: "c", ports: [{ containerPort: 7, backend: Backend.echo() }] }] }]
      })
      const proxy = yield* freezingProxy(new URL(cluster.url))
      const kubeconfig = Path.join(cluster.cacheDir, "..", "via-proxy.kubeconfig")
      Fs.writeFileSync(
        kubeconfig,
        Fs.readFileSync(cluster.kubeconfigPath, "utf8").replace(cluster.url, `http://127.0.0.1:${proxy.port}`)
      )
      yield* Effect.gen(function*() {
        const fwd = yield* PortForward.make({ target: "pod/web", ports: [7] })
        assert.strictEqual(String(yield* TcpClient.roundTrip(fwd.localPort, "alive")), "alive")
        const frozenAt = performance.now()
        proxy.freeze()
        const lost = yield* fwd.awaitClosed.pipe(Effect.flip)
        console.log(
          `native: a frozen API server was noticed after ${
            (performance.now() - frozenAt).toFixed(0)
          } ms (PING every 100 ms, timeout 300 ms)`
        )
        assert.strictEqual(lost._tag, "ForwardLost")
        assert.include(lost.reason, "did not answer a PING")
        assert.isFalse(yield* fwd.isOpen)
      }).pipe(Effect.scoped, Effect.provide(NativeForwarder.layer({ kubeconfig, pingInterval: 100, pingTimeout: 300 })))
    }))
})

/** Polls `read` until it has not moved for 10 reads in a row (a quiescence check). */
const plateau = (read: Effect.Effect<number>) =>
  Effect.gen(function*() {
    let last = -1
    let stable = 0
    while (stable < 10) {
      const now = yield* read
      stable = now === last && now > 0 ? stable + 1 : 0
      last = now
      yield* Effect.sleep("50 millis")
    }
    return last
  }).pipe(Effect.timeout("60 seconds"))

describe("native carrier: bounded memory", () => {
  it.live("an endless source stalls when the local client stops reading, and flows again when it reads", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [{
          name: "firehose",
          containers: [{ name: "a", ports: [{ containerPort: 9, backend: Backend.source() }] }]
        }]
      })
      const scope = yield* Scope.make()
      const fwd = yield* PortForward.make({ target: "pod/firehose", ports: [9], verify: false }).pipe(
        Scope.provide(scope),
        Effect.provide(native(cluster))
      )
      const socket = Net.connect({ host: "127.0.0.1", port: fwd.localPort })
      socket.on("error", () => undefined)
      socket.pause()
      const rssBefore = process.memoryUsage().rss
      const stalled = yield* plateau(cluster.counters.pipe(Effect.map((c) => c.bytesFromPod)))
      const grown = process.memoryUsage().rss - rssBefore
      console.log(
        `native, reader stopped: ${(stalled / 1048576).toFixed(1)} MiB left the pod, RSS grew ${
          (grown / 1048576).toFixed(1)
        } MiB`
      )
      // the local socket's buffer (256 KiB) and the kernel's buffers on each hop: a few MiB, never unbounded
      assert.isBelow(stalled, 16 * 1024 * 1024)
      let received = 0
      socket.on("data", (chunk: Buffer) => void (received += chunk.length))
      socket.resume()
      yield* cluster.awaitCounters((c) => c.bytesFromPod > stalled + 16 * 1024 * 1024).pipe(
        Effect.timeout("30 seconds")
      )
      assert.isAbove(received, 0)
      socket.destroy()
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* Processes.canBind(fwd.localPort), "the port is free after close")
    }))

  it.live("a pod that stops reading stalls the upload, which resumes when it reads again", () =>
    Effect.gen(function*() {
      const held: Array<Net.Socket> = []
      const cluster = yield* FakeCluster.make({
        pods: [{
          name: "blackhole",
          containers: [{
            name: "a",
            ports: [{
              containerPort: 9,
              backend: Backend.handler((s) => {
                s.pause()
                held.push(s)
              })
            }]
          }]
        }]
      })
      const fwd = yield* PortForward.make({ target: "pod/blackhole", ports: [9], verify: false }).pipe(
        Effect.provide(native(cluster))
      )
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => Net.connect({ host: "127.0.0.1", port: fwd.localPort })),
        (s) => Effect.sync(() => s.destroy())
      )
      socket.on("error", () => undefined)
      const chunk = Buffer.alloc(256 * 1024)
      let written = 0
      const pump = () => {
        while (socket.write(chunk)) written += chunk.length
        written += chunk.length
      }
      socket.on("drain", pump)
      socket.on("connect", pump)
      const stalled = yield* plateau(cluster.counters.pipe(Effect.map((c) => c.bytesToPod)))
      console.log(
        `native, pod stopped reading: ${(stalled / 1048576).toFixed(1)} MiB reached the pod, ${
          (written / 1048576).toFixed(1)
        } MiB written locally`
      )
      assert.isBelow(stalled, 16 * 1024 * 1024)
      assert.isBelow(
        written - stalled,
        32 * 1024 * 1024,
        "what is in flight between the local writer and the pod stays bounded"
      )
      held.forEach((s) => s.resume())
      yield* cluster.awaitCounters((c) => c.bytesToPod > stalled + 16 * 1024 * 1024).pipe(Effect.timeout("30 seconds"))
    }))
})
