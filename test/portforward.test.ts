/**
 * End to end: the library drives real kubectl against the fake cluster of the testkit.
 * Every test checks afterwards that no kubectl of ours is left and that every local port its
 * kubectl listened on can be bound again (`leakFree`).
 */
import { assert, layer } from "@effect/vitest"
import { K8s, PortAllocator, PortForward } from "@kube-forward/core"
import { Backend, Processes } from "@kube-forward/testkit"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import {
  Cluster,
  clusterLayer,
  freePort,
  httpGet,
  leakFree,
  listeningAddresses,
  occupy,
  roundTrip
} from "./support/index.ts"

const closedPort = 1 // nothing listens on port 1: a backend there refuses like a dead container

const Env = clusterLayer({
  pods: [
    {
      name: "web",
      containers: [{
        name: "web",
        ports: [
          { name: "http", containerPort: 80, backend: Backend.http() },
          { name: "echo", containerPort: 9000, backend: Backend.echo() }
        ]
      }]
    },
    {
      name: "multi",
      containers: [
        { name: "app", ports: [{ name: "http", containerPort: 8080, backend: Backend.http() }] },
        { name: "sidecar", ports: [{ name: "metrics", containerPort: 9090, backend: Backend.echo() }] }
      ]
    },
    ...["a", "b", "c"].map((n) => ({
      name: `echo-${n}`,
      containers: [{ name: "echo", ports: [{ containerPort: 7000, backend: Backend.echo() }] }]
    })),
    {
      name: "pending",
      phase: "Pending",
      containers: [{ name: "c", ports: [{ containerPort: 80, backend: Backend.echo() }] }]
    },
    {
      name: "refuser",
      containers: [{ name: "c", ports: [{ containerPort: 80, backend: Backend.address("127.0.0.1", closedPort) }] }]
    },
    {
      name: "api-7d9f8",
      labels: { app: "api" },
      containers: [{ name: "api", ports: [{ name: "http", containerPort: 8080, backend: Backend.http() }] }]
    },
    {
      name: "web",
      namespace: "staging",
      containers: [{ name: "web", ports: [{ containerPort: 80, backend: Backend.echo() }] }]
    }
  ],
  services: [{ name: "api", selector: { app: "api" }, ports: [{ name: "http", port: 80, targetPort: "http" }] }],
  deployments: [{ name: "api", selector: { app: "api" } }],
  statefulsets: [{ name: "api-db", selector: { app: "api" } }]
})

layer(Env, { timeout: 60_000, excludeTestServices: true })("PortForward against real kubectl", (it) => {
  it.effect("fixed local port: bytes reach the pod; close frees the port", () =>
    leakFree(Effect.gen(function*() {
      const port = yield* freePort
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 9000 }] })
      assert.strictEqual(fwd.localPort, port)
      assert.isTrue(yield* fwd.isOpen)
      const echoed = yield* roundTrip(port, "hello through the pod")
      assert.strictEqual(echoed.toString(), "hello through the pod")
      assert.isFalse(yield* Processes.canBind(port))
      yield* fwd.close
      assert.isFalse(yield* fwd.isOpen)
      assert.isTrue(yield* Processes.canBind(port), "the port is free once close returns")
    })))

  it.effect("dynamic local port, named remote port, HTTP through the forward", () =>
    leakFree(Effect.gen(function*() {
      const fwd = yield* PortForward.make({ target: "pod/web", ports: ["http"] })
      assert.isAbove(fwd.localPort, 0)
      assert.strictEqual(fwd.ports[0].targetPort, 80, "kubectl resolved the name to the container port")
      const res = yield* httpGet(fwd.localPort, "/health")
      assert.strictEqual(res.status, 200)
      assert.deepStrictEqual(JSON.parse(res.body), { status: "ok" })
    })))

  it.effect("the original API: pod(name).portForward / portForwardDynamic", () =>
    leakFree(Effect.gen(function*() {
      const k8s = K8s.make({ namespace: "default" })
      const port = yield* freePort
      const fixed = yield* k8s.pod("web").portForward(port, 9000)
      const dynamic = yield* k8s.pod("web").portForwardDynamic(80)
      assert.strictEqual(fixed.localPort, port)
      assert.notStrictEqual(dynamic.localPort, port)
      assert.strictEqual((yield* roundTrip(fixed.localPort, "x")).toString(), "x")
      assert.strictEqual((yield* httpGet(dynamic.localPort, "/health")).status, 200)
      yield* fixed.close
      assert.isFalse(yield* fixed.isOpen)
      assert.isTrue(yield* dynamic.isOpen)
    })))

  it.effect("three forwards at once", () =>
    leakFree(Effect.gen(function*() {
      const forwards = yield* Effect.forEach(
        ["a", "b", "c"],
        (n) => PortForward.make({ target: `pod/echo-${n}`, ports: [7000] }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(forwards.map((f) => f.localPort)).size, 3)
      const replies = yield* Effect.forEach(forwards, (f, i) => roundTrip(f.localPort, `to ${i}`), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(replies.map(String), ["to 0", "to 1", "to 2"])
    })))

  it.effect("several ports of one multi-container pod in one kubectl", () =>
    leakFree(Effect.gen(function*() {
      const fwd = yield* PortForward.make({ target: "pod/multi", ports: ["http", { remote: 9090 }] })
      assert.strictEqual(fwd.ports.length, 2)
      assert.strictEqual((yield* httpGet(fwd.ports[0].local, "/health")).status, 200)
      assert.strictEqual((yield* roundTrip(fwd.ports[1].local, "metrics?")).toString(), "metrics?")
      const t = yield* Cluster
      assert.strictEqual(t.leftovers().length, 1, "one kubectl process for both ports")
    })))

  it.effect("two namespaces at once", () =>
    leakFree(Effect.gen(function*() {
      const [prod, staging] = yield* Effect.all([
        PortForward.make({ target: "pod/web", namespace: "default", ports: ["http"] }),
        PortForward.make({ target: "pod/web", namespace: "staging", ports: [80] })
      ], { concurrency: 2 })
      assert.strictEqual((yield* httpGet(prod.localPort, "/health")).status, 200)
      // the two pods differ (HTTP in default, echo in staging): each answer proves which one was reached
      assert.strictEqual((yield* roundTrip(staging.localPort, "staging echo")).toString(), "staging echo")
    })))

  it.effect("svc/, deployment/ and statefulset/ targets resolve to a pod", () =>
    leakFree(Effect.gen(function*() {
      const svc = yield* PortForward.make({ target: "svc/api", ports: [80] })
      assert.strictEqual(svc.ports[0].targetPort, 8080, "service port 80 maps to the pod's named port")
      assert.strictEqual((yield* httpGet(svc.localPort, "/health")).status, 200)
      const deploy = yield* PortForward.make({ target: "deployment/api", ports: [8080] })
      assert.strictEqual((yield* httpGet(deploy.localPort, "/items")).status, 200)
      const sts = yield* PortForward.make({ target: { kind: "statefulset", name: "api-db" }, ports: ["http"] })
      assert.strictEqual(sts.target, "statefulset/api-db")
      assert.strictEqual((yield* httpGet(sts.localPort, "/health")).status, 200)
    })))

  it.effect("a forward's own kubeconfig and context, without any in the Kubectl layer", () =>
    leakFree(Effect.gen(function*() {
      const t = yield* Cluster
      const fwd = yield* PortForward.make({
        target: "pod/web",
        ports: [9000],
        kubeconfig: t.cluster.kubeconfigPath,
        context: "fake"
      }).pipe(Effect.provide(PortForward.layer({ env: { KUBECACHEDIR: t.cluster.cacheDir } })))
      assert.strictEqual((yield* roundTrip(fwd.localPort, "own kubeconfig")).toString(), "own kubeconfig")
      const error = yield* PortForward.make({
        target: "pod/web",
        ports: [9000],
        kubeconfig: t.cluster.kubeconfigPath,
        context: "no-such-context"
      }).pipe(Effect.provide(PortForward.layer()), Effect.flip)
      assert.strictEqual(error._tag, "KubeconfigInvalid")
      assert.include(error.message, "no-such-context")
    })))

  it.effect("binds 127.0.0.1 only by default; \"localhost\" binds 127.0.0.1 and ::1, both carrying bytes", () =>
    leakFree(Effect.gen(function*() {
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [9000] })
      // what the kernel has bound, not what kubectl says it did
      assert.deepStrictEqual(listeningAddresses(fwd.localPort), ["127.0.0.1"])
      const both = yield* PortForward.make({ target: "pod/web", ports: [9000], address: "localhost" })
      assert.sameMembers(listeningAddresses(both.localPort), ["127.0.0.1", "::1"])
      assert.strictEqual((yield* roundTrip(both.localPort, "v4", "127.0.0.1")).toString(), "v4")
      assert.strictEqual((yield* roundTrip(both.localPort, "v6", "::1")).toString(), "v6")
    })))

  it.effect("PortInUse for a taken fixed port, before kubectl is started", () =>
    leakFree(Effect.gen(function*() {
      const t = yield* Cluster
      const port = yield* freePort
      yield* occupy(port)
      const spawns = t.spawns()
      const error = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 80 }] }).pipe(
        Effect.flip
      )
      assert.isTrue(error._tag === "PortInUse" && error.port === port && error.address === "127.0.0.1")
      assert.strictEqual(error.message, `local port ${port} on 127.0.0.1 is already in use`)
      assert.strictEqual(t.spawns(), spawns, "no kubectl was started")
    })))

  it.effect("PortInUse as kubectl reports it (no pre-check)", () =>
    leakFree(Effect.gen(function*() {
      const port = yield* freePort
      yield* occupy(port)
      const error = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 80 }] }).pipe(
        Effect.provide(Layer.succeed(
          PortAllocator.PortAllocator,
          PortAllocator.make({ allocate: () => Effect.succeed(0), isFree: () => Effect.succeed(true) })
        )),
        Effect.flip
      )
      assert.isTrue(error._tag === "PortInUse" && error.port === port, `got ${error._tag}: ${error.message}`)
    })))

  it.effect("PodNotFound, with kubectl's words", () =>
    leakFree(Effect.gen(function*() {
      const error = yield* PortForward.make({ target: "pod/nope", ports: [80] }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "PodNotFound")
      assert.include(error.message, "pods \"nope\" not found")
      const svc = yield* PortForward.make({ target: "svc/nope", namespace: "staging", ports: [80] }).pipe(Effect.flip)
      assert.isTrue(svc._tag === "PodNotFound" && svc.namespace === "staging")
    })))

  it.effect("PodNotRunning with the phase", () =>
    leakFree(Effect.gen(function*() {
      const error = yield* PortForward.make({ target: "pod/pending", ports: [80] }).pipe(Effect.flip)
      assert.isTrue(error._tag === "PodNotRunning" && error.phase === "Pending", error.message)
    })))

  it.effect("the pod refusing the port fails verification with RemoteRefused", () =>
    leakFree(Effect.gen(function*() {
      const error = yield* PortForward.make({ target: "pod/refuser", ports: [80] }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "RemoteRefused", error.message)
      assert.include(error.message, "connection refused")
    })))

  it.effect("Timeout when the API server never answers the upgrade; kubectl is gone after", () =>
    leakFree(Effect.gen(function*() {
      const t = yield* Cluster
      yield* t.cluster.setUpgradeFault({ _tag: "Hang" })
      const error = yield* PortForward.make({ target: "pod/web", ports: [80], readyTimeout: "1500 millis" }).pipe(
        Effect.flip,
        Effect.ensuring(t.cluster.setUpgradeFault(undefined))
      )
      assert.isTrue(error._tag === "Timeout" && error.stage === "ready" && error.after === 1500, error.message)
    })))

  it.effect("interruption before ready leaves nothing behind", () =>
    leakFree(Effect.gen(function*() {
      const t = yield* Cluster
      yield* t.cluster.setUpgradeFault({ _tag: "Hang" })
      const before = (yield* t.cluster.counters).upgradeRequests
      const fiber = yield* PortForward.make({ target: "pod/web", ports: [80] }).pipe(Effect.forkChild)
      // wait for the event: kubectl has reached the upgrade (it is running and talking to us)
      yield* t.cluster.awaitCounters((c) => c.upgradeRequests > before)
      assert.strictEqual(t.leftovers().length, 1)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(t.leftovers(), [], "interrupting make kills kubectl before it returns")
      yield* t.cluster.setUpgradeFault(undefined)
    })))

  it.effect("leaving the scope closes the forward (on failure too)", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const scope = yield* Scope.make()
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [9000] }).pipe(Scope.provide(scope))
      assert.strictEqual(t.leftovers().length, 1)
      yield* Scope.close(scope, Exit.fail("the work failed"))
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* Processes.canBind(fwd.localPort))
      assert.strictEqual((yield* fwd.currentStatus)._tag, "Closed")
    }))

  it.effect("kubectl killed from outside: isOpen turns false, ForwardLost is observable", () =>
    leakFree(Effect.gen(function*() {
      const t = yield* Cluster
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [9000] })
      const [{ pid }] = t.leftovers()
      process.kill(pid, "SIGKILL")
      const lost = yield* Effect.flip(fwd.awaitClosed)
      assert.strictEqual(lost._tag, "ForwardLost")
      assert.include(lost.reason, "SIGKILL")
      assert.isFalse(yield* fwd.isOpen)
      assert.isFalse(Processes.isAlive(pid))
      assert.isTrue(yield* Processes.canBind(fwd.localPort))
    })))
})
