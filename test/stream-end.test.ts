/**
 * How forwarded connections end on a real node, where containerd does not pass a half-close on
 * (the fake cluster's `streamEnd: { _tag: "containerd" }`): a client's FIN never reaches the pod,
 * and once one side has ended, both are closed when the other ends too or after containerd's
 * grace. Both carriers still verify, still carry request and answer, and the cost of the check
 * connection on such a node (it half-closes, then waits for the pod's side) is the grace.
 */
import { assert, describe, it } from "@effect/vitest"
import { PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Backend, FakeCluster, KubectlBinaries } from "@kube-forward/testkit"
import { Duration, Effect } from "effect"
import * as Net from "node:net"

const GRACE = Duration.millis(300)

/**
 * A pod port that echoes each chunk and records, per connection, how long after it was accepted
 * it read EOF (on containerd that is its close, never the client's half-close).
 */
const recordingEcho = () => {
  const eofAfterMs: Array<number> = []
  const backend = Backend.handler((socket) => {
    const accepted = performance.now()
    socket.on("data", (chunk) => socket.write(chunk))
    socket.on("end", () => void eofAfterMs.push(performance.now() - accepted))
    socket.on("error", () => undefined)
  })
  return { eofAfterMs, backend }
}

/** Sends `payload`, half-closes, and waits for the answer and the end: the answer and how long the end took. */
const halfClosedExchange = (port: number, payload: string) =>
  Effect.callback<{ readonly answer: string; readonly endedAfterMs: number }, Error>((resume) => {
    const chunks: Array<Buffer> = []
    let halfClosedAt = 0
    const socket = Net.connect({ host: "127.0.0.1", port }, () => {
      socket.end(payload)
      halfClosedAt = performance.now()
    })
    socket.on("data", (d) => chunks.push(d))
    socket.once("end", () =>
      resume(Effect.succeed({
        answer: Buffer.concat(chunks).toString(),
        endedAfterMs: performance.now() - halfClosedAt
      })))
    socket.once("error", (e) => resume(Effect.fail(e)))
    return Effect.sync(() => socket.destroy())
  })

const carriers = (cluster: FakeCluster.FakeCluster, kubectl: string) =>
  [
    ["kubectl", PortForward.layer({ binary: kubectl, kubeconfig: cluster.kubeconfigPath, env: cluster.env })],
    ["native", NativeForwarder.layer({ kubeconfig: cluster.kubeconfigPath })]
  ] as const

describe("forwarded connections ending as on containerd", () => {
  it.live("verify still passes on both carriers, after the grace; the pod never reads EOF; the answer arrives", () =>
    Effect.gen(function*() {
      const echo = recordingEcho()
      const cluster = yield* FakeCluster.make({
        streamEnd: { _tag: "containerd", grace: GRACE },
        pods: [{ name: "web", containers: [{ name: "c", ports: [{ containerPort: 7, backend: echo.backend }] }] }]
      })
      const kubectl = (yield* KubectlBinaries.find("1.33")).path
      for (const [name, layer] of carriers(cluster, kubectl)) {
        yield* Effect.gen(function*() {
          const [took, fwd] = yield* PortForward.make({ target: "pod/web", ports: [7] }).pipe(Effect.timed)
          // the check connection half-closed and waited for the pod's side: containerd's grace
          assert.isAtLeast(Duration.toMillis(took), Duration.toMillis(GRACE), `${name}: verified only after the grace`)
          const exchange = yield* halfClosedExchange(fwd.localPort, "hello")
          assert.strictEqual(exchange.answer, "hello", `${name}: the answer to a half-closed request arrives`)
          assert.isAtLeast(exchange.endedAfterMs, Duration.toMillis(GRACE) - 5, `${name}: the end comes with the grace`)
        }).pipe(Effect.scoped, Effect.provide(layer))
      }
      // two checks and two exchanges; each half-closed at once, and the pod read EOF only when
      // the connection was closed, a grace later
      assert.strictEqual(echo.eofAfterMs.length, 4)
      for (const ms of echo.eofAfterMs) {
        assert.isAtLeast(ms, Duration.toMillis(GRACE) - 5, "no half-close reached the pod")
      }
    }))

  it.live("an HTTP request and answer go through a forward on both carriers as usual", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({
        streamEnd: { _tag: "containerd", grace: GRACE },
        pods: [{
          name: "api",
          containers: [{ name: "c", ports: [{ containerPort: 80, backend: Backend.http({ name: "api" }) }] }]
        }]
      })
      const kubectl = (yield* KubectlBinaries.find("1.33")).path
      for (const [name, layer] of carriers(cluster, kubectl)) {
        const body = yield* PortForward.make({ target: "pod/api", ports: [80] }).pipe(
          Effect.flatMap((fwd) =>
            Effect.promise(() => fetch(`http://127.0.0.1:${fwd.localPort}/whoami`).then((r) => r.json()))
          ),
          Effect.scoped,
          Effect.provide(layer)
        )
        assert.deepStrictEqual(body, { name: "api" }, name)
      }
    }))
})
