/**
 * Real kubectl binaries against the fake cluster: transports (SPDY, the WebSocket tunnel and the
 * fallback between them), data integrity, concurrency, and the error paths kubectl reports.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as Net from "node:net"
import { Backend, FakeCluster } from "../src/index.ts"
import { exchange, hasKubectl, portForward, randomBytes, sha256, startPortForward } from "./helpers/kubectl.ts"

const echoPod = (name = "web", extra: Partial<FakeCluster.PodSpec> = {}): FakeCluster.PodSpec => ({
  name,
  labels: { app: name },
  containers: [{
    name: "app",
    ports: [
      { name: "echo", containerPort: 7, backend: Backend.echo() },
      { name: "http", containerPort: 80, backend: Backend.http() }
    ]
  }],
  ...extra
})

/** Every kubectl next to the dispatcher; 1.31+ use the WebSocket tunnel by default. */
const versions = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"].filter(hasKubectl)

describe("kubectl port-forward", () => {
  it("has the kubectl binaries under test", () => {
    for (const required of ["1.27", "1.30", "1.33"]) assert.include(versions, required)
  })

  for (const version of versions) {
    const expected = Number(version.split(".")[1]) >= 31 ? "tunnel" : "spdy"
    it.live(`${version}: echo round trip over ${expected}`, () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
        const fwd = yield* portForward(cluster, version, "pod/web", 7)
        assert.strictEqual(fwd.remotePort, 7)
        const reply = yield* exchange(fwd.localPort, Buffer.from("hello through the fake cluster"))
        assert.strictEqual(reply.toString(), "hello through the fake cluster")
        const counters = yield* cluster.counters
        assert.strictEqual(counters.sessions[expected], 1)
        assert.strictEqual(counters.sessions[expected === "tunnel" ? "spdy" : "tunnel"], 0)
        assert.strictEqual(counters.activeSessions, 1)
        assert.strictEqual(counters.connections, 1)
        assert.strictEqual(counters.streams, 2)
        assert.strictEqual(counters.bytesToPod, 30)
        assert.strictEqual(counters.bytesFromPod, 30)
        assert.isAtLeast(counters.restRequests, 3)
        assert.isTrue(fwd.kubectl.lines("stdout").includes(`Handling connection for ${fwd.localPort}`))
      }))
  }

  it.live("1.30 uses the tunnel with KUBECTL_PORT_FORWARD_WEBSOCKETS=true", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      const fwd = yield* portForward(cluster, "1.30", "pod/web", 7, {
        env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: "true" }
      })
      const reply = yield* exchange(fwd.localPort, Buffer.from("tunnelled"))
      assert.strictEqual(reply.toString(), "tunnelled")
      const counters = yield* cluster.counters
      assert.deepStrictEqual(counters.sessions, { spdy: 0, tunnel: 1, websocket: 0 })
    }))

  it.live("1.33 falls back to SPDY when the server is spdy-only", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()], transport: "spdy-only" })
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      const reply = yield* exchange(fwd.localPort, Buffer.from("fallback"))
      assert.strictEqual(reply.toString(), "fallback")
      const counters = yield* cluster.counters
      assert.deepStrictEqual(counters.sessions, { spdy: 1, tunnel: 0, websocket: 0 })
      assert.strictEqual(counters.upgradeRequests, 2)
      // switching at run time affects the next upgrade
      yield* cluster.setTransport("tunnel")
      const again = yield* portForward(cluster, "1.33", "pod/web", 7)
      assert.strictEqual((yield* exchange(again.localPort, Buffer.from("x"))).toString(), "x")
      assert.deepStrictEqual((yield* cluster.counters).sessions, { spdy: 1, tunnel: 1, websocket: 0 })
    }))

  for (const version of ["1.27", "1.33"]) {
    it.live(`${version}: 8 MiB both ways keep their sha256`, () =>
      Effect.gen(function*() {
        const size = 8 * 1024 * 1024
        const cluster = yield* FakeCluster.make({
          pods: [{
            name: "big",
            containers: [{
              name: "app",
              ports: [
                { containerPort: 7, backend: Backend.echo() },
                { containerPort: 9, backend: Backend.source({ bytes: size }) }
              ]
            }]
          }]
        })
        const echo = yield* portForward(cluster, version, "pod/big", 7)
        const payload = randomBytes(size)
        const back = yield* exchange(echo.localPort, payload)
        assert.strictEqual(back.length, size)
        assert.strictEqual(sha256(back), sha256(payload))

        const source = yield* portForward(cluster, version, "pod/big", 9)
        const downloaded = yield* exchange(source.localPort, new Uint8Array(0))
        assert.strictEqual(downloaded.length, size)
        assert.strictEqual(sha256(downloaded), sha256(Backend.pattern(size)))

        const counters = yield* cluster.counters
        assert.strictEqual(counters.bytesToPod, size)
        assert.strictEqual(counters.bytesFromPod, 2 * size)
      }))
  }

  it.live("1.33: 20 concurrent connections through one forward", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      const payloads = Array.from({ length: 20 }, (_, i) =>
        Buffer.concat([Buffer.from(`conn-${i}:`), randomBytes(64 * 1024)]))
      const replies = yield* Effect.forEach(payloads, (p) =>
        exchange(fwd.localPort, p), { concurrency: "unbounded" })
      replies.forEach((reply, i) => assert.strictEqual(sha256(reply), sha256(payloads[i]!), `connection ${i}`))
      const counters = yield* cluster.counters
      assert.strictEqual(counters.connections, 20)
      assert.strictEqual(counters.streams, 40)
      assert.strictEqual(counters.sessions.tunnel, 1)
    }))

  for (const version of ["1.27", "1.33"]) {
    it.live(`${version}: a refused target ends kubectl with "lost connection to pod"`, () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
        // port 81 is not declared by the pod: nothing listens there
        const fwd = yield* portForward(cluster, version, "pod/web", 81)
        const reply = yield* exchange(fwd.localPort, Buffer.from("anyone?")).pipe(
          Effect.orElseSucceed(() => Buffer.alloc(0))
        )
        assert.strictEqual(reply.length, 0)
        const exit = yield* fwd.kubectl.awaitExit
        assert.strictEqual(exit.code, 1)
        const stderr = fwd.kubectl.text("stderr")
        assert.include(stderr, "error: lost connection to pod")
        assert.match(stderr, /error forwarding port 81 to pod web, uid [0-9a-f-]{36}: .*connection refused/)
      }))
  }

  for (const version of ["1.27", "1.33"]) {
    it.live(`${version}: a local client reset ends only that connection`, () =>
      Effect.gen(function*() {
        // a pod port that streams forever and reports when its connection closes (remembered
        // even if it happens before the test starts waiting for it)
        const podSide = yield* Deferred.make<void>()
        const closed = Deferred.await(podSide)
        const firehose = Backend.handler((socket) => {
          const chunk = Buffer.alloc(64 * 1024, 7)
          const pump = () => {
            while (!socket.destroyed && socket.write(chunk));
          }
          socket.on("drain", pump)
          socket.on("error", () => socket.destroy())
          socket.on("close", () => Deferred.doneUnsafe(podSide, Effect.void))
          pump()
        })
        const cluster = yield* FakeCluster.make({
          pods: [{
            name: "web",
            containers: [{
              name: "app",
              ports: [{ containerPort: 7, backend: Backend.echo() }, { containerPort: 9, backend: firehose }]
            }]
          }]
        })
        const fwd = yield* portForward(cluster, version, "pod/web", 9)
        // read some of the endless stream, then reset the connection (RST, not FIN)
        yield* Effect.callback<void>((resume) => {
          const socket = Net.connect({ host: "127.0.0.1", port: fwd.localPort })
          let seen = 0
          socket.on("data", (chunk: Buffer) => {
            seen += chunk.length
            if (seen > 1024 * 1024 && !socket.destroyed) {
              socket.resetAndDestroy()
              resume(Effect.void)
            }
          })
          socket.on("error", () => undefined)
        })
        // kubectl resets the streams; the fake closes the pod-side connection
        yield* closed.pipe(Effect.timeout("20 seconds"))
        // and the forward keeps working
        const echo = yield* portForward(cluster, version, "pod/web", 7)
        assert.strictEqual((yield* exchange(echo.localPort, Buffer.from("still fine"))).toString(), "still fine")
        assert.isTrue(fwd.kubectl.lines("stderr").every((l) => !l.includes("lost connection")))
        assert.isTrue(fwd.kubectl.lines("stdout").includes(`Handling connection for ${fwd.localPort}`))
        const counters = yield* cluster.counters
        assert.strictEqual(counters.activeSessions, 2)
        assert.strictEqual(counters.connections, 2)
      }))

    it.live(`${version}: SIGINT exits 0 and the session ends`, () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
        const fwd = yield* portForward(cluster, version, "pod/web", 7)
        assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("bye"))).toString(), "bye")
        yield* fwd.kubectl.kill("SIGINT")
        assert.deepStrictEqual(yield* fwd.kubectl.awaitExit, { code: 0, signal: null })
        yield* cluster.awaitCounters((c) => c.activeSessions === 0).pipe(Effect.timeout("10 seconds"))
      }))
  }

  it.live("an address backend on a closed port is refused the same way", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [{
          name: "db",
          containers: [{ name: "pg", ports: [{ containerPort: 5432, backend: Backend.address("127.0.0.1", 1) }] }]
        }]
      })
      const fwd = yield* portForward(cluster, "1.33", "pod/db", 5432)
      yield* exchange(fwd.localPort, Buffer.from("x")).pipe(Effect.ignore)
      const exit = yield* fwd.kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.match(fwd.kubectl.text("stderr"), /error forwarding port 5432 to pod db, uid .*connection refused/)
      assert.include(fwd.kubectl.text("stderr"), "lost connection to pod")
    }))

  it.live("a missing pod gives kubectl's NotFound message", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      const kubectl = yield* startPortForward(cluster, "1.33", "pod/x", 80)
      const exit = yield* kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(kubectl.text("stderr"), `Error from server (NotFound): pods "x" not found`)
    }))

  it.live("a pod that is not running is refused by kubectl itself", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod("web", { phase: "Pending" })] })
      const kubectl = yield* startPortForward(cluster, "1.27", "pod/web", 7)
      const exit = yield* kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(
        kubectl.text("stderr"),
        "unable to forward port because pod is not running. Current status=Pending"
      )
      assert.strictEqual((yield* cluster.counters).upgradeRequests, 0)
    }))

  it.live("the HTTP backend answers through a forward", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      const fwd = yield* portForward(cluster, "1.33", "pod/web", "http")
      assert.strictEqual(fwd.remotePort, 80)
      const base = `http://127.0.0.1:${fwd.localPort}`
      const health = yield* Effect.promise(() => fetch(`${base}/health`))
      assert.strictEqual(health.status, 200)
      assert.deepStrictEqual(yield* Effect.promise(() => health.json()), { status: "ok" })
      const items = yield* Effect.promise(() => fetch(`${base}/items`).then((r) => r.json()))
      assert.strictEqual((items as { items: Array<unknown> }).items.length, 3)
      const missing = yield* Effect.promise(() => fetch(`${base}/nope`))
      assert.strictEqual(missing.status, 404)
      yield* Effect.promise(() => missing.arrayBuffer())
    }))
})

describe("upgrade faults", () => {
  it.live("a 403 Status is reported by kubectl (after the 1.33 fallback)", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      yield* cluster.setUpgradeFault({ _tag: "Status", code: 403 })
      const kubectl = yield* startPortForward(cluster, "1.33", "pod/web", 7)
      const exit = yield* kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(
        kubectl.text("stderr"),
        `error: error upgrading connection: pods "web" is forbidden: User "system:anonymous" cannot create resource "pods/portforward" in API group "" in the namespace "default"`
      )
      // the tunnel attempt, then the SPDY fallback
      assert.strictEqual((yield* cluster.counters).upgradeRequests, 2)
    }))

  it.live("closing without a status: no fallback, unexpected EOF", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      yield* cluster.setUpgradeFault({ _tag: "CloseWithoutStatus" })
      const kubectl = yield* startPortForward(cluster, "1.33", "pod/web", 7)
      const exit = yield* kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(kubectl.text("stderr"), "unexpected EOF")
      assert.strictEqual((yield* cluster.counters).upgradeRequests, 1)
    }))

  it.live("Hang holds the upgrade until the fault is cleared", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [echoPod()] })
      yield* cluster.setUpgradeFault({ _tag: "Hang" })
      const kubectl = yield* startPortForward(cluster, "1.27", "pod/web", 7)
      // wait until the upgrade request is being held
      yield* cluster.awaitCounters((c) => c.upgradeRequests >= 1).pipe(Effect.timeout("30 seconds"))
      assert.deepStrictEqual(kubectl.lines("stdout"), [])
      assert.strictEqual((yield* cluster.counters).activeSessions, 0)
      // clearing the fault drops the held connection: kubectl sees EOF instead of a response
      yield* cluster.setUpgradeFault(undefined)
      const exit = yield* kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(kubectl.text("stderr"), "error upgrading connection")
    }))
})
