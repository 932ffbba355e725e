/**
 * Port forwards in your own tests: an `@effect/vitest` suite that starts the testkit's fake
 * cluster (a real API server for kubectl, in-process), points the forward's services at it,
 * and uses `PortForward.make` as a scoped resource — `it.effect` gives each test a scope, so
 * every forward is closed when its test ends, passed or failed.
 *
 * The fake cluster's controls make the unhappy paths testable too: a pod that is not running,
 * a pod restart that the forward must survive (with `reconnect`).
 *
 * Needs: kubectl on PATH (the fake cluster is built in). Run with:
 *
 *     npx vitest run --config vitest.workspace.ts --project examples
 */
import { assert, layer } from "@effect/vitest"
import { PortForward } from "@kube-forward/core"
import { Backend, FakeCluster } from "@kube-forward/testkit"
import { Effect, Fiber, Layer, Schedule, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpIncomingMessage } from "effect/http"

/** The fake cluster: one pod `orders` serving HTTP on its port `http`. */
const Cluster = FakeCluster.FakeClusterService.layer({
  pods: [{
    name: "orders",
    containers: [{
      name: "api",
      ports: [{
        name: "http",
        containerPort: 8080,
        backend: Backend.http({ items: [{ id: 1, sku: "A-100" }, { id: 2, sku: "B-200" }] })
      }]
    }]
  }]
})

/** The forward's services (real kubectl from PATH, OS-chosen ports), pointed at the fake cluster. */
const Forwarding = Layer.unwrap(
  Effect.gen(function*() {
    const cluster = yield* FakeCluster.FakeClusterService
    return PortForward.layer({ kubeconfig: cluster.kubeconfigPath, env: { KUBECACHEDIR: cluster.cacheDir } })
  })
)

const Env = Layer.mergeAll(Forwarding, FetchHttpClient.layer).pipe(Layer.provideMerge(Cluster))

const Items = Schema.Struct({ items: Schema.Array(Schema.Struct({ id: Schema.Number, sku: Schema.String })) })

layer(Env, { excludeTestServices: true, timeout: "60 seconds" })("orders API through a port forward", (it) => {
  it.effect("GET /items lists the orders", () =>
    Effect.gen(function*() {
      const fwd = yield* PortForward.make({ target: "pod/orders", ports: ["http"] }) // closed when the test ends
      const { items } = yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/items`).pipe(
        Effect.flatMap(HttpIncomingMessage.schemaBodyJson(Items))
      )
      assert.deepStrictEqual(items.map((i) => i.sku), ["A-100", "B-200"])
    }))

  it.effect("a pod that is not running fails with PodNotRunning", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.FakeClusterService
      yield* cluster.setPodPhase("default", "orders", "Pending")
      yield* Effect.addFinalizer(() => cluster.setPodPhase("default", "orders", "Running"))
      const error = yield* PortForward.make({ target: "pod/orders", ports: ["http"] }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "PodNotRunning")
      assert.include(error.message, "Pending")
    }))

  it.effect("with reconnect, the forward survives a pod restart on the same local port", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.FakeClusterService
      const fwd = yield* PortForward.make({
        target: "pod/orders",
        ports: ["http"],
        reconnect: Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 50 }))
      })
      // watch for the forward noticing the restart (subscribed before the restart, so it can't be missed)
      const reconnecting = yield* fwd.status.pipe(
        Stream.filter((s) => s._tag === "Reconnecting"),
        Stream.runHead,
        Effect.forkScoped({ startImmediately: true })
      )
      yield* cluster.restartPod("default", "orders", { downFor: "300 millis" })
      yield* Fiber.join(reconnecting)
      yield* PortForward.awaitOpen(fwd) // and back
      assert.isTrue(yield* fwd.isOpen)
      const health = yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/health`)
      assert.strictEqual(health.status, 200)
    }))
})
