/**
 * The fault controls (drop, delete, restart, phase) and the other target kinds kubectl resolves
 * through the REST API (svc/, deployment/, statefulset/, including the pod watch).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule } from "effect"
import { Backend, FakeCluster } from "../src/index.ts"
import { exchange, portForward, startPortForward } from "./helpers/kubectl.ts"

const pod = (name: string, labels: Record<string, string>, phase?: FakeCluster.PodPhase): FakeCluster.PodSpec => ({
  name,
  labels,
  ...(phase ? { phase } : {}),
  containers: [{
    name: "app",
    ports: [
      { name: "echo", containerPort: 7, backend: Backend.echo() },
      { name: "http", containerPort: 80, backend: Backend.http({ name }) }
    ]
  }]
})

const getJson = (url: string) =>
  Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, body: await r.json() as any })))

const waitFor = <A>(self: Effect.Effect<A>, until: (a: A) => boolean) =>
  self.pipe(Effect.repeat({ until, schedule: Schedule.spaced("20 millis") }), Effect.timeout("20 seconds"))

describe("controls", () => {
  it.live("dropSessions ends kubectl with lost connection", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("a"))).toString(), "a")
      assert.strictEqual((yield* cluster.counters).activeSessions, 1)
      yield* cluster.dropSessions
      const exit = yield* fwd.kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(fwd.kubectl.text("stderr"), "lost connection to pod")
      assert.strictEqual((yield* cluster.counters).activeSessions, 0)
    }))

  it.live("deletePod drops its sessions and then 404s", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" }), pod("other", { app: "other" })] })
      const doomed = yield* portForward(cluster, "1.27", "pod/web", 7)
      const survivor = yield* portForward(cluster, "1.27", "pod/other", 7)
      yield* cluster.deletePod("default", "web")
      const exit = yield* doomed.kubectl.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(doomed.kubectl.text("stderr"), "lost connection to pod")
      // the other pod's forward is untouched
      assert.strictEqual((yield* exchange(survivor.localPort, Buffer.from("still here"))).toString(), "still here")
      const again = yield* startPortForward(cluster, "1.27", "pod/web", 7)
      assert.strictEqual((yield* again.awaitExit).code, 1)
      assert.include(again.text("stderr"), `pods "web" not found`)
    }))

  it.live("restartPod drops sessions and keeps the pod Pending for downFor", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      yield* cluster.restartPod("default", "web", { downFor: "10 minutes" })
      assert.strictEqual((yield* fwd.kubectl.awaitExit).code, 1)
      assert.include(fwd.kubectl.text("stderr"), "lost connection to pod")
      const next = yield* startPortForward(cluster, "1.33", "pod/web", 7)
      assert.strictEqual((yield* next.awaitExit).code, 1)
      assert.include(next.text("stderr"), "unable to forward port because pod is not running. Current status=Pending")
      const { body } = yield* getJson(`${cluster.url}/api/v1/namespaces/default/pods/web`)
      assert.strictEqual(body.status.containerStatuses[0].restartCount, 1)
    }))

  it.live("restartPod brings the pod back after downFor", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      yield* cluster.restartPod("default", "web", { downFor: "150 millis" })
      const phase = getJson(`${cluster.url}/api/v1/namespaces/default/pods/web`).pipe(
        Effect.map((r) => r.body.status.phase as string)
      )
      assert.strictEqual(yield* phase, "Pending")
      yield* waitFor(phase, (p) => p === "Running")
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("back"))).toString(), "back")
    }))

  it.live("setPodPhase is what kubectl checks", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      yield* cluster.setPodPhase("default", "web", "Failed")
      const refused = yield* startPortForward(cluster, "1.30", "pod/web", 7)
      assert.strictEqual((yield* refused.awaitExit).code, 1)
      assert.include(refused.text("stderr"), "pod is not running. Current status=Failed")
      yield* cluster.setPodPhase("default", "web", "Running")
      const fwd = yield* portForward(cluster, "1.30", "pod/web", 7)
      assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("up"))).toString(), "up")
    }))

  it.live("addPod at run time", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make()
      yield* cluster.addPod(pod("late", { app: "late" }))
      const fwd = yield* portForward(cluster, "1.33", "pod/late", "echo")
      assert.strictEqual(fwd.remotePort, 7)
      assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("hi"))).toString(), "hi")
    }))
})

describe("target kinds", () => {
  it.live("svc/ maps the service port to a named targetPort", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [pod("web-1", { app: "web" })],
        services: [{ name: "web", selector: { app: "web" }, ports: [{ name: "http", port: 8080, targetPort: "http" }] }]
      })
      const fwd = yield* portForward(cluster, "1.33", "svc/web", 8080)
      assert.strictEqual(fwd.remotePort, 80)
      const whoami = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${fwd.localPort}/whoami`).then((r) => r.json())
      )
      assert.deepStrictEqual(whoami, { name: "web-1" })
      const wrong = yield* startPortForward(cluster, "1.33", "svc/web", 9999)
      assert.strictEqual((yield* wrong.awaitExit).code, 1)
      assert.include(wrong.text("stderr"), "error: Service web does not have a service port 9999")
    }))

  it.live("svc/ with a numeric targetPort (1.27)", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [pod("echo-0", { app: "echo" })],
        services: [{ name: "echo", selector: { app: "echo" }, ports: [{ port: 7000, targetPort: 7 }] }]
      })
      const fwd = yield* portForward(cluster, "1.27", "svc/echo", 7000)
      assert.strictEqual(fwd.remotePort, 7)
      assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("svc"))).toString(), "svc")
    }))

  it.live("deployment/ and statefulset/ pick a selected running pod", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        pods: [pod("api-1", { app: "api" }), pod("db-0", { app: "db" })],
        deployments: [{ name: "api", selector: { app: "api" } }],
        statefulsets: [{ name: "db", selector: { app: "db" } }]
      })
      const deploy = yield* portForward(cluster, "1.33", "deployment/api", 80)
      const a = yield* Effect.promise(() => fetch(`http://127.0.0.1:${deploy.localPort}/whoami`).then((r) => r.json()))
      assert.deepStrictEqual(a, { name: "api-1" })
      const sts = yield* portForward(cluster, "1.27", "statefulset/db", 80)
      const b = yield* Effect.promise(() => fetch(`http://127.0.0.1:${sts.localPort}/whoami`).then((r) => r.json()))
      assert.deepStrictEqual(b, { name: "db-0" })
      const missing = yield* startPortForward(cluster, "1.33", "deployment/nope", 80)
      assert.strictEqual((yield* missing.awaitExit).code, 1)
      assert.include(missing.text("stderr"), `deployments.apps "nope" not found`)
    }))

  it.live("a service without pods makes kubectl watch until one appears", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        services: [{ name: "late", selector: { app: "late" }, ports: [{ port: 7 }] }]
      })
      const kubectl = yield* startPortForward(cluster, "1.33", "svc/late", 7)
      yield* cluster.awaitCounters((c) => c.activeWatches === 1).pipe(Effect.timeout("20 seconds"))
      yield* cluster.addPod(pod("unrelated", { app: "other" }))
      yield* cluster.addPod(pod("late-0", { app: "late" }))
      const m = yield* kubectl.awaitLine(/^Forwarding from 127\.0\.0\.1:(\d+) -> 7$/, "stdout").pipe(
        Effect.timeout("20 seconds")
      )
      assert.strictEqual((yield* exchange(Number(m[1]), Buffer.from("watched"))).toString(), "watched")
      yield* cluster.awaitCounters((c) => c.activeWatches === 0).pipe(Effect.timeout("20 seconds"))
    }))
})

describe("awaitCounters", () => {
  it.live("succeeds at once when the predicate already holds", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      const snapshot = yield* cluster.awaitCounters((c) => c.upgradeRequests === 0 && c.activeSessions === 0)
      assert.deepStrictEqual(snapshot, yield* cluster.counters)
    }))

  it.live("wakes on the upgrade a kubectl makes against a Hang fault, and on its session's end", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      yield* cluster.setUpgradeFault({ _tag: "Hang" })
      const held = yield* startPortForward(cluster, "1.27", "pod/web", 7)
      const seen = yield* cluster.awaitCounters((c) => c.upgradeRequests >= 1).pipe(Effect.timeout("30 seconds"))
      assert.strictEqual(seen.upgradeRequests, 1)
      assert.strictEqual(seen.activeSessions, 0)
      assert.deepStrictEqual(held.lines("stdout"), [])
      yield* held.kill("SIGKILL")
      yield* held.awaitExit

      // a live session: up to 1, then back to 0 once kubectl is killed
      yield* cluster.setUpgradeFault(undefined)
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      const live = yield* cluster.awaitCounters((c) => c.activeSessions === 1).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(live.sessions.tunnel, 1)
      yield* fwd.kubectl.kill("SIGKILL")
      const gone = yield* cluster.awaitCounters((c) => c.activeSessions === 0).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(gone.activeSessions, 0)
      assert.strictEqual(gone.sessions.tunnel, 1)
    }))

  it.live("sees byte counters as they move", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      const fwd = yield* portForward(cluster, "1.30", "pod/web", 7)
      const waiting = yield* cluster.awaitCounters((c) => c.bytesFromPod >= 5).pipe(
        Effect.timeout("10 seconds"),
        Effect.forkChild({ startImmediately: true })
      )
      assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("bytes"))).toString(), "bytes")
      const seen = yield* Fiber.join(waiting)
      assert.strictEqual(seen.bytesFromPod, 5)
      assert.strictEqual(seen.connections, 1)
    }))

  it.live("interrupting it removes its listener", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make()
      let calls = 0
      const fiber = yield* cluster.awaitCounters(() => {
        calls++
        return false
      }).pipe(Effect.forkChild({ startImmediately: true }))
      assert.strictEqual(calls, 1) // the immediate check
      yield* Fiber.interrupt(fiber)
      // a change: every listener still registered is called before this one resumes
      const request = Effect.promise(() => fetch(`${cluster.url}/version`).then((r) => r.json()))
      yield* Effect.all([cluster.awaitCounters((c) => c.restRequests >= 1), request], { concurrency: 2 })
      assert.strictEqual(calls, 1)
    }))

  it.live("dies when the predicate throws", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make()
      const exit = yield* cluster.awaitCounters(() => {
        throw new Error("boom")
      }).pipe(Effect.exit)
      assert.isTrue(Exit.hasDies(exit))
    }))
})
