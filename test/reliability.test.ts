/**
 * Tests that hurt: pod restarts and deletions, the carrier killed, the API server dropping
 * connections, upgrades refused, interruption storms, owners killed with SIGKILL or told to
 * stop, many connections at once, and a table of bad input. Every case runs on both carriers
 * (real kubectl, and the native one) against the fake cluster, with the same assertions; where
 * one is about kubectl's process, the native run checks what stands for it (its session).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Forwarder, type ForwardSpec, PortAllocator, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Backend, Child, type FakeCluster, Processes, TcpClient } from "@kube-forward/testkit"
import { Duration, Effect, Exit, Fiber, Layer, Random, Schedule, Scope, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import {
  type BackendName,
  backends,
  childProcessesStarted,
  Cluster,
  clusterLayer,
  defaultKubectl,
  kubectlWrapper,
  leakFree,
  type TestCluster,
  testCluster
} from "./support/index.ts"

const echoPod = (name: string, namespace = "default") => ({
  name,
  namespace,
  labels: { app: name.replace(/-\d+$/, "") },
  containers: [{ name: "c", ports: [{ containerPort: 7000, backend: Backend.echo() }] }]
})

/** A pod port whose server can be made to stop answering (it accepts, then never replies nor closes). */
let blackhole = false
const flaky = {
  name: "flaky",
  containers: [{
    name: "c",
    ports: [{
      containerPort: 7000,
      backend: Backend.handler((socket) => {
        if (blackhole) {
          // like a hung server process: reads nothing, and the FIN it gets is never answered
          socket.allowHalfOpen = true
          socket.pause()
          return
        }
        socket.pipe(socket)
      })
    }]
  }]
}

const options: FakeCluster.Options = {
  pods: [
    echoPod("restart-me"),
    echoPod("delete-me"),
    echoPod("drop-me"),
    echoPod("kill-me"),
    echoPod("refuse-me"),
    echoPod("plain"),
    flaky,
    echoPod("svc-pod-1"),
    ...Array.from({ length: 20 }, (_, i) => echoPod(`load-${i}`)),
    ...Array.from({ length: 3 }, (_, i) => echoPod(`owner-${i}`))
  ],
  services: [{ name: "svc-pod", selector: { app: "svc-pod" }, ports: [{ port: 7000 }] }]
}

/** Port-forward sessions the cluster has accepted so far, whatever their transport. */
const sessionsAccepted = (c: FakeCluster.Counters) => c.sessions.spdy + c.sessions.tunnel + c.sessions.websocket

/**
 * Ends the carrier of a forward from outside: kubectl's process is killed; the native carrier
 * has no process, so its session is cut (the API server drops every port-forward connection).
 * Returns the pid of the kubectl that was killed, if any.
 */
const killCarrier = (t: TestCluster) =>
  Effect.gen(function*() {
    if (t.backend === "native") {
      yield* t.cluster.dropSessions
      return undefined
    }
    const [{ pid }] = t.leftovers()
    process.kill(pid, "SIGKILL")
    return pid
  })

/** Waits (on the status stream, no polling) for the first status with `tag`. */
const awaitStatus = (fwd: PortForward.PortForward, tag: PortForward.ForwardStatus["_tag"]) =>
  fwd.status.pipe(Stream.filter((s) => s._tag === tag), Stream.runHead)

const reconnect = Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 100 }))

const reconnection = (backend: BackendName) =>
  layer(clusterLayer(options, backend), { timeout: 120_000, excludeTestServices: true })(
    `reconnection and honest status on ${backend}`,
    (it) => {
      it.effect("pod restart with reconnect: the client loop keeps succeeding once the pod is back", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const sessions = sessionsAccepted(yield* t.cluster.counters)
          const fwd = yield* PortForward.make({ target: "pod/restart-me", ports: [7000], reconnect })
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "before")).toString(), "before")
          const states = yield* fwd.status.pipe(
            Stream.map((s) => s._tag),
            Stream.changes,
            Stream.take(3),
            Stream.runCollect,
            Effect.forkChild({ startImmediately: true })
          )
          yield* t.cluster.restartPod("default", "restart-me", { downFor: "400 millis" })
          assert.deepStrictEqual(yield* Fiber.join(states), ["Ready", "Reconnecting", "Ready"])
          for (let i = 0; i < 10; i++) {
            assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, `after ${i}`)).toString(), `after ${i}`)
          }
          assert.isTrue(yield* fwd.isOpen)
          assert.strictEqual(sessionsAccepted(yield* t.cluster.counters) - sessions, 2, "one session, then one more")
          if (backend === "kubectl") {
            assert.strictEqual(t.leftovers().length, 1, "exactly one kubectl after reconnecting")
          }
        })))

      it.effect("pod deleted and recreated with reconnect: back on the same local port", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const fwd = yield* PortForward.make({ target: "pod/delete-me", ports: [7000], reconnect })
          const reconnecting = yield* awaitStatus(fwd, "Reconnecting").pipe(
            Effect.forkChild({ startImmediately: true })
          )
          yield* t.cluster.deletePod("default", "delete-me")
          yield* Fiber.join(reconnecting)
          yield* t.cluster.addPod(echoPod("delete-me"))
          yield* PortForward.awaitOpen(fwd)
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "recreated")).toString(), "recreated")
        })))

      it.effect("a service target picks a pod again after its pod is replaced", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const fwd = yield* PortForward.make({ target: "svc/svc-pod", ports: [7000], reconnect })
          const reconnecting = yield* awaitStatus(fwd, "Reconnecting").pipe(
            Effect.forkChild({ startImmediately: true })
          )
          yield* t.cluster.deletePod("default", "svc-pod-1")
          yield* Fiber.join(reconnecting)
          yield* t.cluster.addPod(echoPod("svc-pod-2"))
          yield* PortForward.awaitOpen(fwd)
          const before = (yield* t.cluster.counters).bytesToPod
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "new pod")).toString(), "new pod")
          assert.isAbove((yield* t.cluster.counters).bytesToPod, before)
        })))

      it.effect("pod restart without reconnect: ForwardLost, isOpen false, scope still clean", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const fwd = yield* PortForward.make({ target: "pod/restart-me", ports: [7000] })
          yield* t.cluster.restartPod("default", "restart-me", { downFor: "100 millis" })
          const lost = yield* Effect.flip(fwd.awaitClosed)
          assert.strictEqual(lost._tag, "ForwardLost")
          assert.include(lost.message, "pod/restart-me")
          // kubectl's exit code when kubectl carried it; a session has none
          if (backend === "kubectl") assert.isNumber(lost.exitCode)
          else assert.isNull(lost.exitCode)
          assert.isFalse(yield* fwd.isOpen)
          const status = yield* fwd.currentStatus
          assert.isTrue(status._tag === "Failed" && status.error._tag === "ForwardLost")
          assert.deepStrictEqual(t.leftovers(), [])
          assert.isTrue(yield* Processes.canBind(fwd.localPort))
        })))

      it.effect(`${backend === "kubectl" ? "kubectl killed with SIGKILL" : "the session cut"}: the reconnect policy brings it back`, () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const fwd = yield* PortForward.make({ target: "pod/kill-me", ports: [7000], reconnect })
          const reconnecting = yield* awaitStatus(fwd, "Reconnecting").pipe(
            Effect.forkChild({ startImmediately: true })
          )
          const pid = yield* killCarrier(t)
          yield* Fiber.join(reconnecting)
          yield* PortForward.awaitOpen(fwd)
          if (pid !== undefined) assert.isFalse(Processes.isAlive(pid))
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "again")).toString(), "again")
        })))

      it.effect("the API server drops every connection: lost without reconnect, back with it", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const plain = yield* PortForward.make({ target: "pod/drop-me", ports: [7000] })
          const healing = yield* PortForward.make({ target: "pod/drop-me", ports: [7000], reconnect })
          const reconnecting = yield* awaitStatus(healing, "Reconnecting").pipe(
            Effect.forkChild({ startImmediately: true })
          )
          yield* t.cluster.dropSessions
          const lost = yield* Effect.flip(plain.awaitClosed)
          assert.strictEqual(lost._tag, "ForwardLost")
          assert.include(lost.reason, "lost connection to pod")
          yield* Fiber.join(reconnecting)
          yield* PortForward.awaitOpen(healing)
          assert.strictEqual((yield* TcpClient.roundTrip(healing.localPort, "healed")).toString(), "healed")
        })))

      it.effect("upgrades refused: a typed error at start; reconnect waits until they are accepted again", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          yield* t.cluster.setUpgradeFault({ _tag: "Status", code: 403 })
          const error = yield* PortForward.make({ target: "pod/refuse-me", ports: [7000] }).pipe(Effect.flip)
          assert.strictEqual(error._tag, "Forbidden", error.message)
          yield* t.cluster.setUpgradeFault(undefined)
          const fwd = yield* PortForward.make({ target: "pod/refuse-me", ports: [7000], reconnect })
          const failing = yield* fwd.status.pipe(
            Stream.filter((s) => s._tag === "Reconnecting" && s.attempt >= 3),
            Stream.runHead,
            Effect.forkChild({ startImmediately: true })
          )
          yield* t.cluster.setUpgradeFault({ _tag: "Status", code: 500 })
          yield* t.cluster.dropSessions
          yield* Fiber.join(failing)
          assert.isFalse(yield* fwd.isOpen)
          yield* t.cluster.setUpgradeFault(undefined)
          yield* PortForward.awaitOpen(fwd)
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "accepted")).toString(), "accepted")
        })))

      it.effect("keepalive notices a forward that no longer carries bytes, and reconnect recovers it", () =>
        leakFree(
          Effect.gen(function*() {
            const keepalive = { interval: "200 millis", timeout: "500 millis" } as const
            const plain = yield* PortForward.make({ target: "pod/flaky", ports: [7000], keepalive })
            const healing = yield* PortForward.make({
              target: "pod/flaky",
              ports: [7000],
              keepalive,
              reconnect,
              readyTimeout: "2 seconds"
            })
            const reconnecting = yield* awaitStatus(healing, "Reconnecting").pipe(
              Effect.forkChild({ startImmediately: true })
            )
            blackhole = true
            const lost = yield* Effect.flip(plain.awaitClosed)
            assert.include(lost.reason, "keepalive probe failed")
            assert.isFalse(yield* plain.isOpen)
            yield* Fiber.join(reconnecting)
            blackhole = false
            yield* PortForward.awaitOpen(healing)
            assert.strictEqual((yield* TcpClient.roundTrip(healing.localPort, "alive")).toString(), "alive")
          }).pipe(Effect.ensuring(Effect.sync(() => (blackhole = false))))
        ))

      it.effect(`isOpen turns false as soon as the end of ${backend === "kubectl" ? "kubectl" : "the session"} is seen`, () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const fwd = yield* PortForward.make({ target: "pod/plain", ports: [7000] })
          const failed = yield* awaitStatus(fwd, "Failed").pipe(Effect.forkChild({ startImmediately: true }))
          const killedAt = performance.now()
          yield* killCarrier(t)
          yield* Fiber.join(failed)
          const seenAfter = performance.now() - killedAt
          assert.isFalse(yield* fwd.isOpen)
          // a measurement, reported by the suite; the bound is generous so load cannot flake it
          console.log(
            `${backend}: isOpen false ${seenAfter.toFixed(1)} ms after ${
              backend === "kubectl" ? "SIGKILL" : "the session was cut"
            }`
          )
          assert.isBelow(seenAfter, 2000)
        })))
    }
  )

const noLeaks = (backend: BackendName) =>
  layer(clusterLayer(options, backend), { timeout: 180_000, excludeTestServices: true })(
    `no leaks, ever, on ${backend}`,
    (it) => {
      it.effect("an interruption storm: 200 forwards interrupted at random points of their life", () =>
        Effect.gen(function*() {
          const t = yield* Cluster
          // Local ports from a range of our own, below the OS's ephemeral range (32768+), so no other
          // program or concurrently running suite is handed one of them: afterwards every port of
          // the range must be bindable again, which only this storm can have broken.
          const range = { from: 21000, to: 21063 }
          const ports = Array.from({ length: range.to - range.from + 1 }, (_, i) => range.from + i)
          const used = new Set<number>()
          const inRange = PortAllocator.layerRange(range)
          const processes = childProcessesStarted()
          // How long a start takes here and now, 8 at once as in the storm (until the last is ready):
          // the interrupts are first drawn over 1.5 times that (starts in the storm's churn are
          // slower), so some land before ready and some after, on an idle machine or on one busy
          // with other work (a fixed 0–900 ms window let no trial reach ready there). Then the
          // window follows the storm itself: a trial that reached ready narrows it, one that did
          // not widens it, so about half of the trials land on each side of ready whatever a start
          // costs in the churn here (kubectl's take seconds; native's tens of ms, and their speed
          // depends on the churn the window itself makes).
          const [startup] = yield* Effect.forEach(
            Array.from({ length: 8 }, (_, i) => i),
            (i) => PortForward.make({ target: `pod/load-${i}`, ports: [7000] }),
            { concurrency: 8 }
          ).pipe(Effect.timed, Effect.scoped, Effect.provide(inRange))
          const first = Math.max(50, Math.round(1.5 * Duration.toMillis(startup)))
          let window = first
          let ready = 0
          const trial = Effect.gen(function*() {
            const delay = yield* Random.nextIntBetween(0, Math.round(window))
            let reached = false
            const fiber = yield* Effect.scoped(Effect.gen(function*() {
              const fwd = yield* PortForward.make({ target: `pod/load-${delay % 20}`, ports: [7000] })
              used.add(fwd.localPort)
              reached = true
              ready++
              yield* TcpClient.roundTrip(fwd.localPort, "x")
              return yield* Effect.never
            })).pipe(Effect.forkChild({ startImmediately: true }))
            yield* Effect.sleep(`${delay} millis`)
            yield* Fiber.interrupt(fiber)
            window = Math.max(10, window * (reached ? 0.95 : 1.05))
          })
          yield* Effect.forEach(Array.from({ length: 200 }), () => trial, { concurrency: 8, discard: true }).pipe(
            Effect.provide(inRange)
          )
          assert.deepStrictEqual(t.leftovers(), [], "no kubectl left")
          if (backend === "native") assert.strictEqual(childProcessesStarted() - processes, 0, "no process was started")
          const stillBound = []
          for (const port of ports) if (!(yield* Processes.canBind(port))) stillBound.push(port)
          assert.deepStrictEqual(stillBound, [], "every port of the range can be bound again")
          assert.isTrue([...used].every((p) => p >= range.from && p <= range.to), "the forwards used the range")
          console.log(
            `${backend}: interruption storm: 200 trials interrupted within a window of ${first} ms (8 starts took ${
              Duration.format(startup)
            }) that ended at ${
              Math.round(window)
            } ms, ${ready} reached ready before the interrupt, ${used.size} ports of the range used, 0 leftovers, 0 ports still bound`
          )
          assert.isAbove(ready, 0, "some trials got past ready (the storm hits every stage)")
          assert.isBelow(ready, 200, "some trials were interrupted before ready")
        }))

      it.effect("20 forwards x 20 connections at once, every byte checked", () =>
        leakFree(Effect.gen(function*() {
          const forwards = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => PortForward.make({ target: `pod/load-${i}`, ports: [7000] }),
            { concurrency: 10 }
          )
          let checked = 0
          yield* Effect.forEach(
            forwards.flatMap((f) => Array.from({ length: 20 }, () => f.localPort)),
            (port) =>
              Effect.gen(function*() {
                const payload = Crypto.randomBytes(64 * 1024)
                const echoed = yield* TcpClient.roundTrip(port, payload)
                assert.strictEqual(echoed.length, payload.length)
                assert.isTrue(echoed.equals(payload), "echoed bytes differ")
                checked++
              }),
            { concurrency: "unbounded", discard: true }
          )
          assert.strictEqual(checked, 400)
        })))
    }
  )

/**
 * Starts the owner fixture (a program under NodeRuntime.runMain holding one forward per pod)
 * with the cluster's environment and carrier; succeeds with it and its local ports once it
 * reports them.
 */
const startOwner = (t: TestCluster, pods: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const owner = yield* Child.spawn(
      process.execPath,
      ["--conditions=source", Path.join(import.meta.dirname, "fixtures", "forward-owner.ts"), ...pods],
      { env: { ...t.cluster.env, KUBE_FORWARD_BACKEND: t.backend } }
    )
    const [, ports] = yield* owner.awaitLine(/^PORTS ([\d ]+)$/, "stdout")
    return { owner, ports: ports.split(" ").map(Number) }
  })

const owners = (backend: BackendName) =>
  layer(clusterLayer(options, backend), { timeout: 60_000, excludeTestServices: true })(
    `owners that die or are told to stop, on ${backend}`,
    (it) => {
      it.effect(`owner killed with SIGKILL: its ${backend === "kubectl" ? "kubectl processes" : "sessions"} end within 2 s, its ports are free`, () =>
        Effect.gen(function*() {
          const t = yield* Cluster
          const baseline = (yield* t.cluster.counters).activeSessions
          const { owner, ports } = yield* startOwner(t, ["owner-0", "owner-1", "owner-2"])
          if (backend === "kubectl") assert.strictEqual(t.leftovers().length, 3)
          else assert.deepStrictEqual(Processes.descendants(owner.pid), [], "the owner started no process")
          assert.strictEqual((yield* t.cluster.counters).activeSessions, baseline + 3)
          yield* owner.kill("SIGKILL")
          assert.deepStrictEqual(yield* owner.awaitExit, { code: null, signal: "SIGKILL" })
          const killedAt = Date.now()
          // the event: the API server sees the three connections close as the processes (kubectl) or
          // the process (native) holding them die
          yield* t.cluster.awaitCounters((c) => c.activeSessions === baseline).pipe(Effect.timeout("10 seconds"))
          const gone = Date.now() - killedAt
          yield* Processes.awaitExit(t.leftovers().map((p) => p.pid))
          assert.deepStrictEqual(t.leftovers(), [])
          assert.isBelow(gone, 2000, `the sessions outlived their owner by ${gone} ms`)
          for (const port of ports) assert.isTrue(yield* Processes.canBind(port))
          console.log(`${backend}: owner SIGKILLed: its sessions gone ${gone} ms later`)
        }))

      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        it.effect(`owner under NodeRuntime.runMain receiving ${signal}: finalizers close every forward`, () =>
          Effect.gen(function*() {
            const t = yield* Cluster
            const { owner, ports } = yield* startOwner(t, ["owner-0", "owner-1"])
            if (backend === "kubectl") assert.strictEqual(t.leftovers().length, 2)
            else assert.deepStrictEqual(Processes.descendants(owner.pid), [], "the owner started no process")
            yield* owner.kill(signal)
            // runMain interrupts the program and exits with 130 (an owner without it dies of the signal)
            assert.deepStrictEqual(yield* owner.awaitExit, { code: 130, signal: null }, owner.text("stderr"))
            // printed by the owner's last finalizer, after the forwards' own: their status, how many
            // of its kubectl processes were alive then (before any exit hook or watchdog could act),
            // and how many of its local ports were still bound (before the exit could free them)
            assert.deepStrictEqual(owner.lines("stdout").filter((l) => l.startsWith("FINALIZED")), [
              "FINALIZED Closed Closed; kubectl alive: 0; ports bound: 0"
            ])
            assert.deepStrictEqual(t.leftovers(), [])
            for (const port of ports) assert.isTrue(yield* Processes.canBind(port))
          }))
      }
    }
  )

for (const backend of backends) {
  reconnection(backend)
  noLeaks(backend)
  owners(backend)
}

describe("kubectl behind a wrapper", () => {
  it.live("forward, reconnect and close reach the real binary under the wrapper", () =>
    Effect.gen(function*() {
      const t = yield* testCluster({ pods: [echoPod("wrapped")] }, "kubectl", {
        binary: kubectlWrapper,
        env: { KUBE_FORWARD_REAL_KUBECTL: defaultKubectl }
      })
      const scope = yield* Scope.make()
      const fwd = yield* PortForward.make({ target: "pod/wrapped", ports: [7000], reconnect }).pipe(
        Scope.provide(scope),
        Effect.provide(t.layer)
      )
      const procs = t.leftovers()
      assert.strictEqual(procs.length, 2, `the wrapper and the real kubectl: ${procs.map((p) => p.args).join(" | ")}`)
      assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "wrapped")).toString(), "wrapped")
      yield* t.cluster.restartPod("default", "wrapped")
      yield* awaitStatus(fwd, "Reconnecting")
      yield* PortForward.awaitOpen(fwd)
      assert.strictEqual(t.leftovers().length, 2)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* Processes.canBind(fwd.localPort))
    }), 60_000)
})

// ---------------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------------

const ok = { target: "pod/plain", ports: [7000] }
const badInputs: ReadonlyArray<readonly [string, unknown, string]> = [
  ["port 0", { ...ok, ports: [0] }, "ports.0"],
  ["port 65536", { ...ok, ports: [65536] }, "ports.0"],
  ["negative port", { ...ok, ports: [-80] }, "ports.0"],
  ["fractional port", { ...ok, ports: [80.5] }, "ports.0"],
  ["NaN port", { ...ok, ports: [Number.NaN] }, "ports.0"],
  ["infinite port", { ...ok, ports: [Number.POSITIVE_INFINITY] }, "ports.0"],
  ["local port 0", { ...ok, ports: [{ local: 0, remote: 80 }] }, "ports.0.local"],
  ["local port too big", { ...ok, ports: [{ local: 70000, remote: 80 }] }, "ports.0.local"],
  ["local port as string", { ...ok, ports: [{ local: "8080", remote: 80 }] }, "ports.0.local"],
  ["no ports", { ...ok, ports: [] }, "ports"],
  ["ports missing", { target: "pod/plain" }, "ports"],
  ["65 ports", { ...ok, ports: Array.from({ length: 65 }, (_, i) => 1000 + i) }, "ports"],
  ["duplicate local port", { ...ok, ports: [{ local: 9000, remote: 80 }, { local: 9000, remote: 81 }] }, "ports"],
  ["port name too long", { ...ok, ports: ["abcdefghijklmnop"] }, "ports.0"],
  ["port name with --", { ...ok, ports: ["we--b"] }, "ports.0"],
  ["port name digits only", { ...ok, ports: ["8080"] }, "ports.0"],
  ["port name uppercase", { ...ok, ports: ["HTTP"] }, "ports.0"],
  ["port name flag-like", { ...ok, ports: ["--address"] }, "ports.0"],
  ["empty port name", { ...ok, ports: [""] }, "ports.0"],
  ["empty target", { ...ok, target: "" }, "target"],
  ["target missing", { ports: [80] }, "target"],
  ["unknown kind", { ...ok, target: "job/x" }, "target"],
  ["kind only", { ...ok, target: "pod/" }, "target"],
  ["flag-like pod name", { ...ok, target: "pod/--all-namespaces" }, "target"],
  ["flag-like bare name", { ...ok, target: "-n" }, "target"],
  ["shell-like name", { ...ok, target: "pod/web;rm -rf /" }, "target"],
  ["command substitution", { ...ok, target: "pod/$(reboot)" }, "target"],
  ["backticks", { ...ok, target: "pod/`id`" }, "target"],
  ["uppercase name", { ...ok, target: "pod/Web" }, "target"],
  ["name with space", { ...ok, target: "pod/web app" }, "target"],
  ["name too long", { ...ok, target: `pod/${"a".repeat(254)}` }, "target"],
  ["path traversal", { ...ok, target: "pod/../../etc" }, "target"],
  ["target object with bad kind", { ...ok, target: { kind: "cronjob", name: "x" } }, "target.kind"],
  ["target object with flag name", { ...ok, target: { kind: "pod", name: "-x" } }, "target.name"],
  ["namespace uppercase", { ...ok, namespace: "Prod" }, "namespace"],
  ["namespace with dot", { ...ok, namespace: "a.b" }, "namespace"],
  ["namespace too long", { ...ok, namespace: "n".repeat(64) }, "namespace"],
  ["namespace flag-like", { ...ok, namespace: "--all" }, "namespace"],
  ["empty namespace", { ...ok, namespace: "" }, "namespace"],
  ["namespace shell-like", { ...ok, namespace: "a;b" }, "namespace"],
  ["address not an IP", { ...ok, address: "example.com" }, "address"],
  ["address with port", { ...ok, address: "127.0.0.1:80" }, "address"],
  ["bad IPv4", { ...ok, address: "256.0.0.1" }, "address"],
  ["empty address", { ...ok, address: "" }, "address"],
  ["empty address list", { ...ok, address: [] }, "address"],
  ["address listed twice", { ...ok, address: ["127.0.0.1", "127.0.0.1"] }, "address"],
  ["localhost and 127.0.0.1 together", { ...ok, address: ["localhost", "127.0.0.1"] }, "address"],
  ["address flag-like", { ...ok, address: "--v=9" }, "address"],
  ["empty context", { ...ok, context: "" }, "context"],
  ["context with newline", { ...ok, context: "a\nb" }, "context"],
  ["oversize context", { ...ok, context: "c".repeat(5000) }, "context"],
  ["kubeconfig with NUL", { ...ok, kubeconfig: "/tmp/a\u0000b" }, "kubeconfig"],
  ["negative timeout", { ...ok, readyTimeout: -5 }, "readyTimeout"],
  ["zero timeout", { ...ok, readyTimeout: 0 }, "readyTimeout"],
  ["infinite timeout", { ...ok, readyTimeout: "Infinity" }, "readyTimeout"],
  ["timeout as text", { ...ok, readyTimeout: "soon" }, "readyTimeout"],
  ["verify not boolean", { ...ok, verify: "yes" }, "verify"],
  ["retry not a schedule", { ...ok, retry: 3 }, "retry"],
  ["unknown field", { ...ok, namspace: "typo" }, "namspace"],
  ["not an object", "pod/web 80", "spec"],
  ["null", null, "spec"]
]

describe("bad input", () => {
  for (const backend of backends) {
    it.live(`${badInputs.length} cases on ${backend}: each InvalidSpec names its field, nothing is started`, () =>
      Effect.gen(function*() {
        assert.isAtLeast(badInputs.length, 40)
        const marker = "/nonexistent/kf-bad-input-marker"
        let attempts = 0
        const carrier = backend === "native"
          ? NativeForwarder.layer({ kubeconfig: marker })
          : PortForward.layer({ kubeconfig: marker })
        const counting = Layer.effect(
          Forwarder.Forwarder,
          Effect.gen(function*() {
            const real = yield* Forwarder.Forwarder
            return Forwarder.Forwarder.of({ ...real, start: (r) => Effect.suspend(() => (attempts++, real.start(r))) })
          })
        ).pipe(Layer.provideMerge(carrier))
        // built first: what the layer itself starts (kubectl's watchdog) is not the cases' doing
        const services = yield* Layer.build(counting)
        const processes = childProcessesStarted()
        for (const [name, input, field] of badInputs) {
          const error = yield* PortForward.make(input as ForwardSpec.Input).pipe(
            Effect.scoped,
            Effect.provide(services),
            Effect.flip
          )
          assert.strictEqual(error._tag, "InvalidSpec", `${name}: ${error.message}`)
          if (error._tag === "InvalidSpec") {
            const paths = error.issues.map((i) => i.path)
            assert.isTrue(paths.some((p) => p === field || p.startsWith(`${field}.`)), `${name}: ${error.message}`)
          }
        }
        assert.strictEqual(attempts, 0, "the carrier was never started for bad input")
        assert.strictEqual(childProcessesStarted() - processes, 0, "no process was spawned for bad input")
        assert.deepStrictEqual(Processes.portForwards("kf-bad-input-marker"), [])
      }).pipe(Effect.scoped))
  }
})
