/**
 * End to end, on both carriers: the library drives real kubectl, or the native carrier, against
 * the fake cluster of the testkit. Every case runs once per carrier with the same assertions;
 * where one is about kubectl itself (its process), the native run checks the equivalent (no
 * process at all, one session on the cluster). Every test checks afterwards that no kubectl of
 * ours is left, that every local port a forward listened on can be bound again, and on native
 * that no process was started (`leakFree`).
 */
import { assert, layer } from "@effect/vitest"
import { K8s, PortAllocator, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Backend, type FakeCluster, Processes, TcpClient } from "@kube-forward/testkit"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  type BackendName,
  backends,
  childProcessesStarted,
  Cluster,
  clusterLayer,
  freePort,
  httpGet,
  leakFree,
  listeningAddresses,
  occupy
} from "./support/index.ts"

const closedPort = 1 // nothing listens on port 1: a backend there refuses like a dead container

const options: FakeCluster.Options = {
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
  services: [
    { name: "api", selector: { app: "api" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
    // its target port names a port its pod does not have
    { name: "broken", selector: { app: "api" }, ports: [{ name: "web", port: 80, targetPort: "nope" }] },
    // selects no pod at all
    { name: "empty", selector: { app: "none" }, ports: [{ port: 80 }] }
  ],
  deployments: [{ name: "api", selector: { app: "api" } }],
  statefulsets: [{ name: "api-db", selector: { app: "api" } }]
}

/** Port-forward sessions the cluster has accepted so far, whatever their transport. */
const sessionsAccepted = (c: { readonly sessions: Record<string, number> }) =>
  Object.values(c.sessions).reduce((a, b) => a + b, 0)

const suite = (backend: BackendName) =>
  layer(clusterLayer(options, backend), { timeout: 60_000, excludeTestServices: true })(
    `PortForward on ${backend}`,
    (it) => {
      it.effect("fixed local port: bytes reach the pod; close frees the port", () =>
        leakFree(Effect.gen(function*() {
          const port = yield* freePort
          const fwd = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 9000 }] })
          assert.strictEqual(fwd.localPort, port)
          assert.isTrue(yield* fwd.isOpen)
          const echoed = yield* TcpClient.roundTrip(port, "hello through the pod")
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
          assert.strictEqual(fwd.ports[0].targetPort, 80, "the carrier resolved the name to the container port")
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
          assert.strictEqual((yield* TcpClient.roundTrip(port, "x")).toString(), "x")
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
          const replies = yield* Effect.forEach(forwards, (f, i) => TcpClient.roundTrip(f.localPort, `to ${i}`), {
            concurrency: "unbounded"
          })
          assert.deepStrictEqual(replies.map(String), ["to 0", "to 1", "to 2"])
        })))

      it.effect("several ports of one multi-container pod on one session", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const [sessions, processes] = [sessionsAccepted(yield* t.cluster.counters), childProcessesStarted()]
          const fwd = yield* PortForward.make({ target: "pod/multi", ports: ["http", { remote: 9090 }] })
          assert.strictEqual(fwd.ports.length, 2)
          assert.strictEqual((yield* httpGet(fwd.ports[0].local, "/health")).status, 200)
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.ports[1].local, "metrics?")).toString(), "metrics?")
          assert.strictEqual(sessionsAccepted(yield* t.cluster.counters) - sessions, 1, "one upgrade for both ports")
          if (backend === "kubectl") assert.strictEqual(t.leftovers().length, 1, "one kubectl process for both ports")
          else assert.strictEqual(childProcessesStarted() - processes, 0, "no process at all")
        })))

      it.effect("two namespaces at once", () =>
        leakFree(Effect.gen(function*() {
          const [prod, staging] = yield* Effect.all([
            PortForward.make({ target: "pod/web", namespace: "default", ports: ["http"] }),
            PortForward.make({ target: "pod/web", namespace: "staging", ports: [80] })
          ], { concurrency: 2 })
          assert.strictEqual((yield* httpGet(prod.localPort, "/health")).status, 200)
          // the two pods differ (HTTP in default, echo in staging): each answer proves which one was reached
          assert.strictEqual((yield* TcpClient.roundTrip(staging.localPort, "staging echo")).toString(), "staging echo")
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

      it.effect("a forward's own kubeconfig and context, without any in the carrier's layer", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          // the carrier with no kubeconfig of its own (kubectl: nor a discovery cache but its own)
          const bare = t.observe(
            backend === "native"
              ? NativeForwarder.layer()
              : PortForward.layer({ env: { KUBECACHEDIR: t.cluster.cacheDir } })
          )
          const fwd = yield* PortForward.make({
            target: "pod/web",
            ports: [9000],
            kubeconfig: t.cluster.kubeconfigPath,
            context: "fake"
          }).pipe(Effect.provide(bare))
          assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "own kubeconfig")).toString(), "own kubeconfig")
          const error = yield* PortForward.make({
            target: "pod/web",
            ports: [9000],
            kubeconfig: t.cluster.kubeconfigPath,
            context: "no-such-context"
          }).pipe(Effect.provide(bare), Effect.flip)
          assert.strictEqual(error._tag, "KubeconfigInvalid")
          assert.include(error.message, "no-such-context")
        })))

      it.effect("ClusterUnreachable when nothing answers at the API server's address", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          // the cluster's kubeconfig, but the server on port 1 of loopback, where nothing listens
          const dir = yield* Effect.acquireRelease(
            Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "kf-unreachable-"))),
            (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
          )
          const kubeconfig = Path.join(dir, "kubeconfig")
          const text = Fs.readFileSync(t.cluster.kubeconfigPath, "utf8")
          Fs.writeFileSync(kubeconfig, text.replace(t.cluster.url, `http://127.0.0.1:${closedPort}`))
          const error = yield* PortForward.make({ target: "pod/web", ports: [80], kubeconfig }).pipe(Effect.flip)
          assert.strictEqual(error._tag, "ClusterUnreachable", error.message)
          assert.include(error.message, `connection to 127.0.0.1:${closedPort} refused`)
        })))

      it.effect("binds 127.0.0.1 only by default; \"localhost\" binds 127.0.0.1 and ::1, both carrying bytes", () =>
        leakFree(Effect.gen(function*() {
          const fwd = yield* PortForward.make({ target: "pod/web", ports: [9000] })
          // what the kernel has bound, not what the carrier says it did
          assert.deepStrictEqual(listeningAddresses(fwd.localPort), ["127.0.0.1"])
          const both = yield* PortForward.make({ target: "pod/web", ports: [9000], address: "localhost" })
          assert.sameMembers(listeningAddresses(both.localPort), ["127.0.0.1", "::1"])
          assert.strictEqual((yield* TcpClient.roundTrip(both.localPort, "v4", "127.0.0.1")).toString(), "v4")
          assert.strictEqual((yield* TcpClient.roundTrip(both.localPort, "v6", "::1")).toString(), "v6")
        })))

      it.effect("PortInUse for a taken fixed port, before anything is started or asked of the cluster", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const port = yield* freePort
          yield* occupy(port)
          const before = {
            processes: childProcessesStarted(),
            attempts: t.attempts(),
            counters: yield* t.cluster.counters
          }
          const error = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 80 }] }).pipe(
            Effect.flip
          )
          assert.isTrue(error._tag === "PortInUse" && error.port === port && error.address === "127.0.0.1")
          assert.strictEqual(error.message, `local port ${port} on 127.0.0.1 is already in use`)
          assert.strictEqual(childProcessesStarted(), before.processes, "no process was started")
          assert.strictEqual(t.attempts(), before.attempts, "the carrier was not started")
          const after = yield* t.cluster.counters
          assert.deepStrictEqual(
            { rest: after.restRequests, upgrades: after.upgradeRequests },
            { rest: before.counters.restRequests, upgrades: before.counters.upgradeRequests },
            "nothing was asked of the cluster"
          )
        })))

      it.effect(`PortInUse as the carrier reports it (no pre-check)`, () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const port = yield* freePort
          yield* occupy(port)
          const before = yield* t.cluster.counters
          const error = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 80 }] }).pipe(
            Effect.provide(Layer.succeed(
              PortAllocator.PortAllocator,
              PortAllocator.make({ allocate: () => Effect.succeed(0), isFree: () => Effect.succeed(true) })
            )),
            Effect.flip
          )
          assert.isTrue(error._tag === "PortInUse" && error.port === port, `got ${error._tag}: ${error.message}`)
          const after = yield* t.cluster.counters
          if (backend === "native") {
            // native binds its listeners before it asks the cluster anything
            assert.deepStrictEqual(
              [after.restRequests, after.upgradeRequests],
              [before.restRequests, before.upgradeRequests],
              "nothing was asked of the cluster"
            )
          } else {
            // kubectl binds after it got the pod and the upgrade (README of @kube-forward/native)
            assert.isAbove(after.upgradeRequests, before.upgradeRequests, "kubectl asked for the upgrade first")
          }
        })))

      it.effect("PodNotFound, with the API server's words", () =>
        leakFree(Effect.gen(function*() {
          const error = yield* PortForward.make({ target: "pod/nope", ports: [80] }).pipe(Effect.flip)
          assert.strictEqual(error._tag, "PodNotFound")
          assert.include(error.message, "pods \"nope\" not found")
          // no namespace in the spec: native knows the context's, kubectl's carrier only its layer's (none here)
          assert.strictEqual(
            error._tag === "PodNotFound" && error.namespace,
            backend === "native" ? "default" : undefined
          )
          const svc = yield* PortForward.make({ target: "svc/nope", namespace: "staging", ports: [80] }).pipe(
            Effect.flip
          )
          assert.isTrue(svc._tag === "PodNotFound" && svc.namespace === "staging")
        })))

      it.effect("PortNotFound: a named port the pod lacks, a service port the service lacks, a target port the pod lacks", () =>
        leakFree(Effect.gen(function*() {
          const cases = [
            [{ target: "pod/web", ports: ["nope"] }, "nope", "Pod 'web' does not have a named port 'nope'"],
            [{ target: "svc/api", ports: [81] }, 81, "Service api does not have a service port 81"],
            [{ target: "svc/api", ports: ["nope"] }, "nope", "Service 'api' does not have a named port 'nope'"],
            [{ target: "svc/broken", ports: [80] }, "nope", "Pod 'api-7d9f8' does not have a named port 'nope'"]
          ] as const
          for (const [spec, remotePort, detail] of cases) {
            const error = yield* PortForward.make({ ...spec, ports: [...spec.ports] }).pipe(Effect.flip)
            assert.deepStrictEqual(
              error._tag === "PortNotFound"
                ? { tag: error._tag, remotePort: error.remotePort, detail: error.detail }
                : { tag: error._tag, message: error.message },
              { tag: "PortNotFound", remotePort, detail },
              `${spec.target} ${spec.ports}`
            )
          }
        })))

      it.effect("a service that selects no pod: kubectl waits for one, native fails at once (README)", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const watches = (yield* t.cluster.counters).activeWatches
          const fiber = yield* PortForward.make({ target: "svc/empty", ports: [80], readyTimeout: "1500 millis" }).pipe(
            Effect.flip,
            Effect.forkChild({ startImmediately: true })
          )
          if (backend === "kubectl") {
            // kubectl watches the pods for one to appear (until its --pod-running-timeout, 1 min)
            yield* t.cluster.awaitCounters((c) => c.activeWatches > watches)
            const error = yield* Fiber.join(fiber)
            assert.isTrue(error._tag === "Timeout" && error.stage === "ready", error.message)
          } else {
            // native: retry and reconnect policies decide how long to wait for a pod
            const error = yield* Fiber.join(fiber)
            assert.isTrue(
              error._tag === "PodNotFound" && error.detail.includes("no pod matches the selector app=none"),
              error.message
            )
            assert.strictEqual((yield* t.cluster.counters).activeWatches, watches, "native did not wait")
          }
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

      it.effect("Timeout when the API server never answers the upgrade; nothing is left after", () =>
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
          const port = yield* freePort
          const fiber = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 80 }] }).pipe(
            Effect.forkChild
          )
          // wait for the event: the carrier has reached the upgrade (it is running and talking to us)
          yield* t.cluster.awaitCounters((c) => c.upgradeRequests > before)
          if (backend === "kubectl") assert.strictEqual(t.leftovers().length, 1)
          else assert.isFalse(yield* Processes.canBind(port), "native listens before it asks for the upgrade")
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(t.leftovers(), [], "interrupting make ends kubectl before it returns")
          assert.isTrue(yield* Processes.canBind(port), "interrupting make frees the local port before it returns")
          yield* t.cluster.setUpgradeFault(undefined)
        })))

      it.effect("leaving the scope closes the forward (on failure too)", () =>
        Effect.gen(function*() {
          const t = yield* Cluster
          // the sessions of the tests before are gone (the API server has seen them end)
          yield* t.cluster.awaitCounters((c) => c.activeSessions === 0).pipe(Effect.timeout("10 seconds"))
          const scope = yield* Scope.make()
          const fwd = yield* PortForward.make({ target: "pod/web", ports: [9000] }).pipe(Scope.provide(scope))
          if (backend === "kubectl") assert.strictEqual(t.leftovers().length, 1)
          assert.strictEqual((yield* t.cluster.counters).activeSessions, 1)
          yield* Scope.close(scope, Exit.fail("the work failed"))
          assert.deepStrictEqual(t.leftovers(), [])
          assert.isTrue(yield* Processes.canBind(fwd.localPort))
          assert.strictEqual((yield* fwd.currentStatus)._tag, "Closed")
          // the event: the API server sees the forward's session end
          yield* t.cluster.awaitCounters((c) => c.activeSessions === 0).pipe(Effect.timeout("10 seconds"))
        }))

      it.effect("the carrier ended from outside: isOpen turns false, ForwardLost is observable", () =>
        leakFree(Effect.gen(function*() {
          const t = yield* Cluster
          const fwd = yield* PortForward.make({ target: "pod/web", ports: [9000] })
          // kubectl: its process is killed; native has no process: its session is cut by the API server
          const [kubectl] = t.leftovers()
          if (backend === "kubectl") process.kill(kubectl.pid, "SIGKILL")
          else yield* t.cluster.dropSessions
          const lost = yield* Effect.flip(fwd.awaitClosed)
          assert.strictEqual(lost._tag, "ForwardLost")
          assert.include(lost.reason, backend === "kubectl" ? "SIGKILL" : "lost connection to pod")
          assert.isFalse(yield* fwd.isOpen)
          if (backend === "kubectl") assert.isFalse(Processes.isAlive(kubectl.pid))
          assert.isTrue(yield* Processes.canBind(fwd.localPort))
        })))
    }
  )

for (const backend of backends) suite(backend)
