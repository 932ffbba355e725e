/**
 * The fault controls (drop, delete, restart, phase) and the other target kinds kubectl resolves
 * through the REST API (svc/, deployment/, statefulset/, including the pod watch).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
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
      const exit = yield* fwd.kubectl.exit
      assert.strictEqual(exit.code, 1)
      assert.include(fwd.kubectl.stderr(), "lost connection to pod")
      assert.strictEqual((yield* cluster.counters).activeSessions, 0)
    }))

  it.live("deletePod drops its sessions and then 404s", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" }), pod("other", { app: "other" })] })
      const doomed = yield* portForward(cluster, "1.27", "pod/web", 7)
      const survivor = yield* portForward(cluster, "1.27", "pod/other", 7)
      yield* cluster.deletePod("default", "web")
      const exit = yield* doomed.kubectl.exit
      assert.strictEqual(exit.code, 1)
      assert.include(doomed.kubectl.stderr(), "lost connection to pod")
      // the other pod's forward is untouched
      assert.strictEqual((yield* exchange(survivor.localPort, Buffer.from("still here"))).toString(), "still here")
      const again = yield* startPortForward(cluster, "1.27", "pod/web", 7)
      assert.strictEqual((yield* again.exit).code, 1)
      assert.include(again.stderr(), `pods "web" not found`)
    }))

  it.live("restartPod drops sessions and keeps the pod Pending for downFor", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod("web", { app: "web" })] })
      const fwd = yield* portForward(cluster, "1.33", "pod/web", 7)
      yield* cluster.restartPod("default", "web", { downFor: "10 minutes" })
      assert.strictEqual((yield* fwd.kubectl.exit).code, 1)
      assert.include(fwd.kubectl.stderr(), "lost connection to pod")
      const next = yield* startPortForward(cluster, "1.33", "pod/web", 7)
      assert.strictEqual((yield* next.exit).code, 1)
      assert.include(next.stderr(), "unable to forward port because pod is not running. Current status=Pending")
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
      assert.strictEqual((yield* refused.exit).code, 1)
      assert.include(refused.stderr(), "pod is not running. Current status=Failed")
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
      const whoami = yield* Effect.promise(() => fetch(`http://127.0.0.1:${fwd.localPort}/whoami`).then((r) => r.json()))
      assert.deepStrictEqual(whoami, { name: "web-1" })
      const wrong = yield* startPortForward(cluster, "1.33", "svc/web", 9999)
      assert.strictEqual((yield* wrong.exit).code, 1)
      assert.include(wrong.stderr(), "error: Service web does not have a service port 9999")
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
      assert.strictEqual((yield* missing.exit).code, 1)
      assert.include(missing.stderr(), `deployments.apps "nope" not found`)
    }))

  it.live("a service without pods makes kubectl watch until one appears", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        services: [{ name: "late", selector: { app: "late" }, ports: [{ port: 7 }] }]
      })
      const kubectl = yield* startPortForward(cluster, "1.33", "svc/late", 7)
      yield* waitFor(cluster.counters, (c) => c.activeWatches === 1)
      yield* cluster.addPod(pod("unrelated", { app: "other" }))
      yield* cluster.addPod(pod("late-0", { app: "late" }))
      const m = yield* kubectl.waitForLine("stdout", /^Forwarding from 127\.0\.0\.1:(\d+) -> 7$/).pipe(
        Effect.timeout("20 seconds")
      )
      assert.strictEqual((yield* exchange(Number(m[1]), Buffer.from("watched"))).toString(), "watched")
      yield* waitFor(cluster.counters, (c) => c.activeWatches === 0)
    }))
})
