/**
 * The conformance matrix: every kubectl on the machine (`KubectlBinaries.findAll`, computed at
 * collection time so each version is its own block and a missing one shows up) and
 * `@kubernetes/client-node`'s `PortForward`, each against one shared fake cluster per client:
 *
 *  1. 8 MiB up and the same 8 MiB back through an echo pod, sha256 compared;
 *  2. 20 concurrent connections through one forward, each payload checked;
 *  3. `Handling connection for N` on kubectl's stdout;
 *  4. a refused target: kubelet's text, then kubectl's `lost connection to pod` (client-node:
 *     the text on its error stream);
 *  5. a missing pod and a pod that is not running give kubectl's usual messages;
 *  6. which transport served the forward, from the server's counters;
 *  7. the same over HTTPS with a bearer token (a cluster of its own, per client): 1 MiB through
 *     echo, the version's transport, every request authenticated.
 *
 * Waiting is by events only (output lines, exits, `awaitCounters`). At the end no kubectl of the
 * suite may be left running and every local port it forwarded can be bound again.
 */
import { afterAll, assert, describe, it, layer } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import { Backend, type Child, FakeCluster, KubectlBinaries, Processes } from "../src/index.ts"
import { clientNodeForward, echoExactly } from "./helpers/clientNode.ts"
import { exchange, type Forward, randomBytes, sha256, startPortForward } from "./helpers/kubectl.ts"

/** Every kubectl found, one per minor version, at collection time. */
const binaries = await Effect.runPromise(KubectlBinaries.findAll)

/** The lines the conformance suite expects on a complete machine. */
const expected = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"]

const minorOf = (version: string): number => Number(version.split(".")[1])

const MiB = 1024 * 1024
const SIZE = 8 * MiB
const CONCURRENT = 20

/** The token of the HTTPS clusters of check 7. */
const TOKEN = "conformance-token-5d1f"

/** Check 7's cluster: the same pods, over HTTPS, a bearer token required. */
const secured = (): FakeCluster.Options => ({
  ...options,
  tls: true,
  auth: { users: [{ name: "conformance", token: TOKEN }] }
})

/** 1 MiB through echo over HTTPS with a token; the counters once the echo is back. */
const overTls = <E, R>(
  open: (cluster: FakeCluster.FakeCluster) => Effect.Effect<number, E, R>,
  echo: (port: number, payload: Uint8Array) => Effect.Effect<Buffer, Error> = exchange
) =>
  Effect.gen(function*() {
    const cluster = yield* FakeCluster.make(secured())
    assert.match(cluster.url, /^https:/)
    const port = yield* open(cluster)
    const payload = randomBytes(MiB)
    const back = yield* echo(port, payload)
    assert.strictEqual(sha256(back), sha256(payload))
    const counters = yield* cluster.counters
    assert.strictEqual(counters.unauthorized, 0, "every request carried the token")
    assert.strictEqual(counters.forbidden, 0)
    assert.strictEqual(counters.bytesToPod, MiB)
    return counters
  })

const options: FakeCluster.Options = {
  pods: [
    {
      name: "echo",
      labels: { app: "echo" },
      containers: [{ name: "app", ports: [{ name: "echo", containerPort: 7, backend: Backend.echo() }] }]
    },
    {
      name: "pending",
      labels: { app: "pending" },
      phase: "Pending",
      containers: [{ name: "app", ports: [{ containerPort: 7, backend: Backend.echo() }] }]
    }
  ]
}

// -------------------------------------------------------------------------------------------------
// what the suite started, checked in afterAll

const spawnedPids = new Set<number>()
const localPorts = new Set<number>()

const track = <K extends Child.Child>(kubectl: K): K => {
  spawnedPids.add(kubectl.pid)
  return kubectl
}

/** A port-forward of this suite (pid and local port recorded). */
const forward = (
  cluster: FakeCluster.FakeCluster,
  binary: KubectlBinaries.KubectlBinary,
  target: string,
  remote: number,
  env?: Record<string, string>
): Effect.Effect<Forward, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const kubectl = track(yield* startPortForward(cluster, binary, target, remote, env ? { env } : {}))
    const m = yield* kubectl.awaitLine(/^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$/, "stdout").pipe(
      Effect.timeout("30 seconds")
    )
    localPorts.add(Number(m[1]))
    return { kubectl, localPort: Number(m[1]), remotePort: Number(m[2]) }
  })

/** Starts from a quiet cluster: no session of an earlier test alive, counters zeroed. */
const fresh = Effect.gen(function*() {
  const cluster = yield* FakeCluster.FakeClusterService
  yield* cluster.awaitCounters((c) => c.activeSessions === 0).pipe(Effect.timeout("10 seconds"))
  yield* cluster.setTransport("tunnel")
  yield* cluster.resetCounters
  return cluster
})

const exitOf = (kubectl: Child.Child) => kubectl.awaitExit.pipe(Effect.timeout("30 seconds"))

/** `n` payloads of 64 KiB, each with its own prefix. */
const concurrentPayloads = () =>
  Array.from({ length: CONCURRENT }, (_, i) => Buffer.concat([Buffer.from(`conn-${i}:`), randomBytes(64 * 1024)]))

// -------------------------------------------------------------------------------------------------

describe("conformance", () => {
  it("finds every kubectl 1.27 … 1.35", () => {
    const found = binaries.map((b) => b.version)
    assert.deepStrictEqual(expected.filter((v) => !found.includes(v)), [], `found: ${found.join(", ")}`)
  })

  const byMinor = new Map(binaries.map((b) => [b.version, b] as const))
  const lines = [...new Set([...expected, ...byMinor.keys()])].sort((a, b) => minorOf(a) - minorOf(b))

  for (const line of lines) {
    const binary = byMinor.get(line)
    if (binary === undefined) {
      describe.skip(`kubectl ${line} (not found on this machine)`, () => {
        it("runs the conformance checks", () => undefined)
      })
      continue
    }
    const minor = minorOf(binary.version)
    const label = `kubectl ${binary.version} (${binary.gitVersion}, ${binary.source})`

    layer(FakeCluster.layer(options), { excludeTestServices: true })(label, (it) => {
      it.effect("1. 8 MiB both ways through echo keep their sha256", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const fwd = yield* forward(cluster, binary, "pod/echo", 7)
          const payload = randomBytes(SIZE)
          const back = yield* exchange(fwd.localPort, payload)
          assert.strictEqual(back.length, SIZE)
          assert.strictEqual(sha256(back), sha256(payload))
          const counters = yield* cluster.counters
          assert.strictEqual(counters.bytesToPod, SIZE)
          assert.strictEqual(counters.bytesFromPod, SIZE)
          assert.strictEqual(counters.connections, 1)
        }))

      it.effect(`2. ${CONCURRENT} concurrent connections through one forward`, () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const fwd = yield* forward(cluster, binary, "pod/echo", 7)
          const payloads = concurrentPayloads()
          const replies = yield* Effect.forEach(payloads, (p) => exchange(fwd.localPort, p), {
            concurrency: "unbounded"
          })
          replies.forEach((reply, i) => assert.strictEqual(sha256(reply), sha256(payloads[i]!), `connection ${i}`))
          const counters = yield* cluster.counters
          assert.strictEqual(counters.connections, CONCURRENT)
          assert.strictEqual(counters.streams, 2 * CONCURRENT)
          assert.strictEqual(counters.sessions.spdy + counters.sessions.tunnel, 1, "one session for all")
        }))

      it.effect("3. prints `Handling connection for N`", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const fwd = yield* forward(cluster, binary, "pod/echo", 7)
          assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("hi"))).toString(), "hi")
          yield* fwd.kubectl.awaitLine(new RegExp(`^Handling connection for ${fwd.localPort}$`), "stdout").pipe(
            Effect.timeout("10 seconds")
          )
        }))

      it.effect("4. a refused target gives `lost connection to pod`", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          // port 81 is not declared by the pod: nothing listens there
          const fwd = yield* forward(cluster, binary, "pod/echo", 81)
          const reply = yield* exchange(fwd.localPort, Buffer.from("anyone?")).pipe(
            Effect.orElseSucceed(() => Buffer.alloc(0))
          )
          assert.strictEqual(reply.length, 0)
          const exit = yield* exitOf(fwd.kubectl)
          const stderr = fwd.kubectl.text("stderr")
          assert.strictEqual(exit.code, 1, stderr)
          assert.match(stderr, /error forwarding port 81 to pod echo, uid [0-9a-f-]{36}: .*connection refused/)
          assert.match(
            stderr,
            minor >= 31 ?
              /"Unhandled Error" err="an error occurred forwarding \d+ -> 81: error forwarding port 81/ :
              /portforward\.go:\d+\] an error occurred forwarding \d+ -> 81: error forwarding port 81/
          )
          assert.match(stderr, /^error: lost connection to pod$/m)
        }))

      it.effect("5. a missing pod and a pod that is not running", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const missing = track(yield* startPortForward(cluster, binary, "pod/x", 80))
          assert.strictEqual((yield* exitOf(missing)).code, 1)
          assert.include(missing.text("stderr"), `Error from server (NotFound): pods "x" not found`)

          const pending = track(yield* startPortForward(cluster, binary, "pod/pending", 7))
          assert.strictEqual((yield* exitOf(pending)).code, 1)
          assert.include(
            pending.text("stderr"),
            "error: unable to forward port because pod is not running. Current status=Pending"
          )
          // kubectl checks the phase itself: no upgrade was attempted
          assert.strictEqual((yield* cluster.counters).upgradeRequests, 0)
        }))

      /** Forwards one small echo, then returns the counters once its session is counted. */
      const served = (env?: Record<string, string>) =>
        Effect.gen(function*() {
          const cluster = yield* FakeCluster.FakeClusterService
          const fwd = yield* forward(cluster, binary, "pod/echo", 7, env)
          assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("which"))).toString(), "which")
          return yield* cluster.counters
        })

      if (minor >= 31) {
        it.effect("6. transport: tunnel by default, SPDY fallback when the server is spdy-only", () =>
          Effect.gen(function*() {
            const cluster = yield* fresh
            const tunnel = yield* served()
            assert.deepStrictEqual(tunnel.sessions, { spdy: 0, tunnel: 1, websocket: 0 })
            assert.strictEqual(tunnel.upgradeRequests, 1)

            yield* cluster.setTransport("spdy-only")
            yield* cluster.resetCounters
            const fallback = yield* served()
            assert.deepStrictEqual(fallback.sessions, { spdy: 1, tunnel: 0, websocket: 0 })
            assert.strictEqual(fallback.upgradeRequests, 2, "the tunnel attempt (400), then SPDY")
          }))
      } else if (minor === 30) {
        it.effect("6. transport: SPDY by default, tunnel with KUBECTL_PORT_FORWARD_WEBSOCKETS=true", () =>
          Effect.gen(function*() {
            const cluster = yield* fresh
            const spdy = yield* served()
            assert.deepStrictEqual(spdy.sessions, { spdy: 1, tunnel: 0, websocket: 0 })
            assert.strictEqual(spdy.upgradeRequests, 1)

            yield* cluster.resetCounters
            const tunnel = yield* served({ KUBECTL_PORT_FORWARD_WEBSOCKETS: "true" })
            assert.deepStrictEqual(tunnel.sessions, { spdy: 0, tunnel: 1, websocket: 0 })
            assert.strictEqual(tunnel.upgradeRequests, 1)
          }))
      } else {
        it.effect("6. transport: SPDY", () =>
          Effect.gen(function*() {
            yield* fresh
            const spdy = yield* served()
            assert.deepStrictEqual(spdy.sessions, { spdy: 1, tunnel: 0, websocket: 0 })
            assert.strictEqual(spdy.upgradeRequests, 1)
          }))
      }

      it.effect("7. over HTTPS with a bearer token", () =>
        Effect.gen(function*() {
          const counters = yield* overTls((cluster) =>
            forward(cluster, binary, "pod/echo", 7).pipe(Effect.map((fwd) => fwd.localPort))
          )
          assert.deepStrictEqual(
            counters.sessions,
            minor >= 31 ? { spdy: 0, tunnel: 1, websocket: 0 } : { spdy: 1, tunnel: 0, websocket: 0 }
          )
          assert.isAbove(counters.restRequests, 0)
        }).pipe(Effect.scoped))
    })
  }

  layer(FakeCluster.layer(options), { excludeTestServices: true })(
    "@kubernetes/client-node PortForward (v4.channel.k8s.io)",
    (it) => {
      /** A client-node forward to `pod`:`port` (its local port recorded). */
      const cnForward = (pod: string, port: number) =>
        Effect.gen(function*() {
          const cluster = yield* FakeCluster.FakeClusterService
          const fwd = yield* clientNodeForward(cluster.kubeconfigPath, { pod, port })
          localPorts.add(fwd.port)
          return fwd
        })

      it.effect("1. 8 MiB both ways through echo keep their sha256", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const fwd = yield* cnForward("echo", 7)
          const payload = randomBytes(SIZE)
          const back = yield* echoExactly(fwd.port, payload)
          assert.strictEqual(back.length, SIZE)
          assert.strictEqual(sha256(back), sha256(payload))
          const counters = yield* cluster.awaitCounters((c) => c.bytesToPod === SIZE && c.bytesFromPod === SIZE).pipe(
            Effect.timeout("10 seconds")
          )
          assert.strictEqual(counters.connections, 1)
          assert.deepStrictEqual(fwd.errors, [])
        }))

      it.effect(`2. ${CONCURRENT} concurrent connections through one forward`, () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const fwd = yield* cnForward("echo", 7)
          const payloads = concurrentPayloads()
          const replies = yield* Effect.forEach(payloads, (p) => echoExactly(fwd.port, p), {
            concurrency: "unbounded"
          })
          replies.forEach((reply, i) => assert.strictEqual(sha256(reply), sha256(payloads[i]!), `connection ${i}`))
          const counters = yield* cluster.counters
          // client-node opens one WebSocket per local connection
          assert.strictEqual(counters.sessions.websocket, CONCURRENT)
          assert.strictEqual(counters.connections, CONCURRENT)
          assert.deepStrictEqual(fwd.errors, [])
        }))

      it.effect.skip("3. prints `Handling connection for N` (kubectl only)", () => Effect.void)

      it.effect("4. a refused target puts kubelet's text on the error stream", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          const fwd = yield* cnForward("echo", 81)
          // client-node never closes the local connection when the WebSocket closes
          const socket = yield* Effect.acquireRelease(
            Effect.sync(() => Net.connect({ host: "127.0.0.1", port: fwd.port })),
            (s) => Effect.sync(() => s.destroy())
          )
          socket.on("error", () => undefined)
          const text = yield* fwd.waitForError(/error forwarding port/).pipe(Effect.timeout("10 seconds"))
          assert.match(text, /^error forwarding port 81 to pod echo, uid [0-9a-f-]{36}: .*connection refused/)
          // the server closes the WebSocket after the error
          yield* cluster.awaitCounters((c) => c.sessions.websocket === 1 && c.activeSessions === 0).pipe(
            Effect.timeout("10 seconds")
          )
        }))

      it.effect("5. a missing pod (404) and a pod that is not running (400) fail the upgrade", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          // client-node makes no REST call first: the upgrade itself is refused
          for (const [pod, status] of [["x", 404], ["pending", 400]] as const) {
            const fwd = yield* cnForward(pod, 7)
            const socket = yield* Effect.acquireRelease(
              Effect.sync(() => Net.connect({ host: "127.0.0.1", port: fwd.port })),
              (s) => Effect.sync(() => s.destroy())
            )
            socket.on("error", () => undefined)
            const text = yield* fwd.waitForError(/./).pipe(Effect.timeout("10 seconds"))
            assert.strictEqual(text, `Unexpected server response: ${status}`)
          }
          const counters = yield* cluster.counters
          assert.strictEqual(counters.upgradeRequests, 2)
          assert.strictEqual(counters.sessions.websocket, 0)
        }))

      it.effect("6. transport: v4.channel WebSocket in both server modes", () =>
        Effect.gen(function*() {
          const cluster = yield* fresh
          for (const mode of ["tunnel", "spdy-only"] as const) {
            yield* cluster.setTransport(mode)
            yield* cluster.resetCounters
            const fwd = yield* cnForward("echo", 7)
            assert.strictEqual((yield* echoExactly(fwd.port, Buffer.from(mode))).toString(), mode)
            const counters = yield* cluster.counters
            assert.deepStrictEqual(counters.sessions, { spdy: 0, tunnel: 0, websocket: 1 }, mode)
            assert.strictEqual(counters.restRequests, 0)
          }
        }))

      it.effect("7. over HTTPS with a bearer token", () =>
        Effect.gen(function*() {
          const counters = yield* overTls((cluster) =>
            clientNodeForward(cluster.kubeconfigPath, { pod: "echo", port: 7 }).pipe(
              Effect.tap((fwd) => Effect.sync(() => localPorts.add(fwd.port))),
              Effect.map((fwd) => fwd.port)
            ), echoExactly)
          assert.deepStrictEqual(counters.sessions, { spdy: 0, tunnel: 0, websocket: 1 })
        }).pipe(Effect.scoped))
    }
  )
})

// -------------------------------------------------------------------------------------------------
// nothing of the suite is left

afterAll(async () => {
  // every kubectl is awaited by its finalizer; a zombie reparented to init holds nothing
  const leftovers = Processes.list().filter((p) =>
    Processes.isAlive(p.pid) &&
    (spawnedPids.has(p.pid) || (p.ppid === process.pid && /kubectl/.test(p.args)))
  )
  assert.deepStrictEqual(leftovers, [], "kubectl processes of the suite still running")

  const busy: Array<number> = []
  for (const port of localPorts) if (!(await Effect.runPromise(Processes.canBind(port)))) busy.push(port)
  assert.deepStrictEqual(busy, [], "forwarded local ports still bound")
})
