/**
 * The library's own scenarios on every kubectl from 1.27 to 1.35 (`KubectlBinaries.findAll`,
 * computed at collection time so each version is a block of its own and a missing one fails
 * the run), against a cluster with HTTPS and bearer tokens: ready on a fixed and on a dynamic
 * local port, PodNotFound, PodNotRunning, RemoteRefused, Unauthorized, Forbidden,
 * ClusterUnreachable, KubeconfigInvalid, a service port and PortNotFound, Timeout, ForwardLost
 * and reconnection after a pod restart, and close leaving nothing. What is checked is the library's reading of each kubectl's output (its klog lines
 * changed at 1.31, its transport too), not the fake cluster: that has its own conformance suite.
 *
 * Each version has its own fake cluster; the versions run side by side, the scenarios of one
 * version one after the other (the Timeout scenario holds every upgrade of its cluster). Every
 * scenario ends with `leakFree`: no kubectl left, every local port it listened on free.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { PortForward } from "@kube-forward/core"
import { Backend, FakeCluster, KubectlBinaries, Processes, TcpClient } from "@kube-forward/testkit"
import { Effect, Fiber, Schedule, Stream } from "effect"
import * as Fs from "node:fs"
import { Cluster, clusterLayer, freePort, leakFree } from "./support/index.ts"

/** Every kubectl found, one per minor version, at collection time. */
const binaries = await Effect.runPromise(KubectlBinaries.findAll)

/** The versions the library is tested with (README: "tested with 1.27 – 1.35"). */
const expected = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"]

const minorOf = (version: string): number => Number(version.split(".")[1])

const echo = (name: string, phase?: "Pending") => ({
  name,
  labels: { app: name },
  ...(phase === undefined ? {} : { phase }),
  containers: [{ name: "c", ports: [{ containerPort: 7000, backend: Backend.echo() }] }]
})

const options: FakeCluster.Options = {
  // as a real cluster: HTTPS, a bearer token, and a user RBAC does not let forward ports
  tls: true,
  auth: {
    users: [{ name: "alice", token: "alice-token-7c1e" }, { name: "bob", token: "bob-token-5a90", portForward: false }]
  },
  services: [{ name: "web", selector: { app: "web" }, ports: [{ port: 80, targetPort: 7000 }] }],
  pods: [
    echo("web"),
    echo("restart-me"),
    echo("pending", "Pending"),
    // nothing listens on port 1: the pod refuses the connection, as a dead container does
    {
      name: "refuser",
      containers: [{ name: "c", ports: [{ containerPort: 7000, backend: Backend.address("127.0.0.1", 1) }] }]
    }
  ]
}

const reconnect = Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 100 }))

/** The scenarios of one version run in order (they share a cluster and its faults). */
const inOrder = { concurrent: false, timeout: 60_000 } as const

describe("kubectl versions", () => {
  it("finds every kubectl 1.27 … 1.35", () => {
    const found = binaries.map((b) => b.version)
    assert.deepStrictEqual(expected.filter((v) => !found.includes(v)), [], `found: ${found.join(", ")}`)
  })
})

const byMinor = new Map(binaries.map((b) => [b.version, b] as const))
const lines = [...new Set([...expected, ...byMinor.keys()])].sort((a, b) => minorOf(a) - minorOf(b))

// the versions side by side (at most vitest's maxConcurrency at once)
describe("the library on each kubectl", { concurrent: true }, () => {
  for (const line of lines) {
    const binary = byMinor.get(line)
    if (binary === undefined) {
      describe.skip(`kubectl ${line} (not found on this machine)`, () => {
        it("runs the library's scenarios", () => undefined)
      })
      continue
    }
    const label = `kubectl ${binary.version} (${binary.gitVersion}, ${binary.source})`

    layer(clusterLayer(options, "kubectl", { binary: binary.path }), {
      concurrent: true,
      excludeTestServices: true,
      timeout: 60_000
    })(
      label,
      (it) => {
        it.effect("ready on a fixed local port; bytes reach the pod", () =>
          leakFree(Effect.gen(function*() {
            const port = yield* freePort
            yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 7000 }] })
            assert.strictEqual((yield* TcpClient.roundTrip(port, "fixed")).toString(), "fixed")
          })), inOrder)

        it.effect("ready on a dynamic local port; bytes reach the pod", () =>
          leakFree(Effect.gen(function*() {
            const t = yield* Cluster
            const fwd = yield* PortForward.make({ target: "pod/web", ports: [7000] })
            assert.isFalse(yield* Processes.canBind(fwd.localPort), "kubectl listens on the port it reported")
            const before = (yield* t.cluster.counters).bytesToPod
            assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "dynamic")).toString(), "dynamic")
            assert.strictEqual((yield* t.cluster.counters).bytesToPod - before, "dynamic".length)
          })), inOrder)

        it.effect("PodNotFound", () =>
          leakFree(Effect.gen(function*() {
            const error = yield* PortForward.make({ target: "pod/nope", ports: [7000] }).pipe(Effect.flip)
            assert.strictEqual(error._tag, "PodNotFound", error.message)
            assert.include(error.message, `pods "nope" not found`)
          })), inOrder)

        it.effect("PodNotRunning, with the phase", () =>
          leakFree(Effect.gen(function*() {
            const error = yield* PortForward.make({ target: "pod/pending", ports: [7000] }).pipe(Effect.flip)
            assert.isTrue(error._tag === "PodNotRunning" && error.phase === "Pending", error.message)
          })), inOrder)

        it.effect("RemoteRefused when the pod refuses the port", () =>
          leakFree(Effect.gen(function*() {
            const error = yield* PortForward.make({ target: "pod/refuser", ports: [7000] }).pipe(Effect.flip)
            assert.strictEqual(error._tag, "RemoteRefused", error.message)
            assert.include(error.message, "connection refused")
          })), inOrder)

        it.effect(
          "Unauthorized with a wrong token; Forbidden for a user RBAC denies port forwarding",
          () =>
            leakFree(Effect.gen(function*() {
              const t = yield* Cluster
              const wrong = yield* t.cluster.writeKubeconfig({ token: "wrong-token-0000" })
              const unauthorized = yield* PortForward.make({ target: "pod/web", ports: [7000], kubeconfig: wrong })
                .pipe(
                  Effect.flip
                )
              assert.strictEqual(unauthorized._tag, "Unauthorized", unauthorized.message)
              const bob = yield* t.cluster.writeKubeconfig({ user: "bob" })
              const forbidden = yield* PortForward.make({ target: "pod/web", ports: [7000], kubeconfig: bob }).pipe(
                Effect.flip
              )
              assert.strictEqual(forbidden._tag, "Forbidden", forbidden.message)
              assert.include(forbidden.message, `User "bob" cannot create resource "pods/portforward"`)
            })),
          inOrder
        )

        it.effect(
          "ClusterUnreachable when nothing answers at the server; KubeconfigInvalid for a missing kubeconfig",
          () =>
            leakFree(Effect.gen(function*() {
              const t = yield* Cluster
              const nowhere = `${t.cluster.kubeconfigPath}-nowhere`
              Fs.writeFileSync(
                nowhere,
                Fs.readFileSync(t.cluster.kubeconfigPath, "utf8").replace(t.cluster.url, "https://127.0.0.1:1"),
                { mode: 0o600 }
              )
              const unreachable = yield* PortForward.make({ target: "pod/web", ports: [7000], kubeconfig: nowhere })
                .pipe(
                  Effect.flip
                )
              assert.strictEqual(unreachable._tag, "ClusterUnreachable", unreachable.message)
              const missing = yield* PortForward.make({
                target: "pod/web",
                ports: [7000],
                kubeconfig: `${t.cluster.kubeconfigPath}-missing`
              }).pipe(Effect.flip)
              assert.strictEqual(missing._tag, "KubeconfigInvalid", missing.message)
            })),
          inOrder
        )

        it.effect(
          "a service port maps to its target; PortNotFound for a port the service does not have",
          () =>
            leakFree(Effect.gen(function*() {
              const fwd = yield* PortForward.make({ target: "svc/web", ports: [80] })
              assert.deepStrictEqual(fwd.ports.map((p) => p.targetPort), [7000])
              assert.strictEqual((yield* TcpClient.roundTrip(fwd.localPort, "via svc")).toString(), "via svc")
              const error = yield* PortForward.make({ target: "svc/web", ports: [9999] }).pipe(Effect.flip)
              assert.strictEqual(error._tag, "PortNotFound", error.message)
            })),
          inOrder
        )

        it.effect("Timeout when the upgrade is never answered", () =>
          leakFree(Effect.gen(function*() {
            const t = yield* Cluster
            yield* t.cluster.setUpgradeFault({ _tag: "Hang" })
            const error = yield* PortForward.make({ target: "pod/web", ports: [7000], readyTimeout: "1 second" }).pipe(
              Effect.flip,
              Effect.ensuring(t.cluster.setUpgradeFault(undefined))
            )
            assert.isTrue(error._tag === "Timeout" && error.stage === "ready", error.message)
          })), inOrder)

        it.effect(
          "ForwardLost when the pod restarts; with reconnect, back on the same local port",
          () =>
            leakFree(Effect.gen(function*() {
              const t = yield* Cluster
              const plain = yield* PortForward.make({ target: "pod/restart-me", ports: [7000] })
              const healing = yield* PortForward.make({ target: "pod/restart-me", ports: [7000], reconnect })
              const states = yield* healing.status.pipe(
                Stream.map((s) => s._tag),
                Stream.changes,
                Stream.take(3),
                Stream.runCollect,
                Effect.forkChild({ startImmediately: true })
              )
              yield* t.cluster.restartPod("default", "restart-me", { downFor: "200 millis" })
              const lost = yield* Effect.flip(plain.awaitClosed)
              assert.strictEqual(lost._tag, "ForwardLost")
              assert.include(lost.reason, "lost connection to pod")
              assert.isFalse(yield* plain.isOpen)
              assert.deepStrictEqual(yield* Fiber.join(states), ["Ready", "Reconnecting", "Ready"])
              assert.strictEqual((yield* TcpClient.roundTrip(healing.localPort, "again")).toString(), "again")
              assert.strictEqual(t.leftovers().length, 1, "only the reconnected kubectl runs")
            })),
          inOrder
        )

        it.effect(
          "close leaves nothing: kubectl's process group gone, the port free",
          () =>
            leakFree(Effect.gen(function*() {
              const t = yield* Cluster
              const fwd = yield* PortForward.make({ target: "pod/web", ports: [7000] })
              const [kubectl] = t.leftovers()
              assert.isDefined(kubectl)
              yield* fwd.close
              assert.isFalse(Processes.isAlive(kubectl.pid))
              assert.deepStrictEqual(Processes.group(kubectl.pgid), [])
              assert.deepStrictEqual(t.leftovers(), [])
              assert.isTrue(yield* Processes.canBind(fwd.localPort))
              assert.strictEqual((yield* fwd.currentStatus)._tag, "Closed")
            })),
          inOrder
        )
      }
    )
  }
})
