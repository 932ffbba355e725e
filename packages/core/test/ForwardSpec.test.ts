import { assert, describe, it } from "@effect/vitest"
import { ForwardSpec } from "@kube-forward/core"
import { Duration, Effect, Schedule } from "effect"

const decodeOk = (input: unknown) => ForwardSpec.decode(input)
const issuesOf = (input: unknown) =>
  ForwardSpec.decode(input).pipe(
    Effect.flip,
    Effect.map((e) => {
      assert.strictEqual(e._tag, "InvalidSpec")
      return e.issues
    })
  )

describe("ForwardSpec.decode", () => {
  it.effect("normalises targets, ports, addresses and defaults", () =>
    Effect.gen(function*() {
      const spec = yield* decodeOk({
        target: "svc/web",
        namespace: "prod",
        ports: [{ local: 8080, remote: "http" }, 9090]
      })
      assert.deepStrictEqual(spec.target, { kind: "service", name: "web" })
      assert.strictEqual(spec.resource, "service/web")
      assert.deepStrictEqual(spec.ports, [{ local: 8080, remote: "http" }, { local: undefined, remote: 9090 }])
      assert.deepStrictEqual(spec.addresses, ["127.0.0.1"])
      assert.strictEqual(Duration.toMillis(spec.readyTimeout), 30_000)
      assert.strictEqual(spec.verify, true)
      assert.strictEqual(spec.retry, undefined)
    }))

  it.effect.each(
    [
      ["pod/web", "pod", "web"],
      ["po/web", "pod", "web"],
      ["web", "pod", "web"],
      ["service/a.b", "service", "a.b"],
      ["deploy/api-1", "deployment", "api-1"],
      ["deployment/api", "deployment", "api"],
      ["sts/db", "statefulset", "db"],
      ["statefulsets/db", "statefulset", "db"]
    ] as const
  )("target %s", ([target, kind, name]) =>
    Effect.gen(function*() {
      const spec = yield* decodeOk({ target, ports: [80] })
      assert.deepStrictEqual(spec.target, { kind, name })
    }))

  it.effect("keeps schedules, durations, several addresses and the keepalive", () =>
    Effect.gen(function*() {
      const retry = Schedule.recurs(3)
      const spec = yield* decodeOk({
        target: { kind: "deployment", name: "api" },
        ports: [80],
        address: ["127.0.0.1", "::1"],
        readyTimeout: "5 seconds",
        retry,
        keepalive: { interval: 1000 }
      })
      assert.strictEqual(spec.retry, retry)
      assert.deepStrictEqual(spec.addresses, ["127.0.0.1", "::1"])
      assert.strictEqual(Duration.toMillis(spec.readyTimeout), 5000)
      assert.strictEqual(Duration.toMillis(spec.keepalive!.interval), 1000)
      assert.strictEqual(Duration.toMillis(spec.keepalive!.timeout), 5000)
    }))

  it.effect("lists every problem with its field", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf({ target: "pod/-rf", ports: [0, "x--y"], namespace: "Prod", address: "1.2.3" })
      const paths = issues.map((i) => i.path).sort()
      assert.deepStrictEqual(paths, ["address", "namespace", "ports.0", "ports.1", "target"])
      const target = issues.find((i) => i.path === "target")!
      assert.include(target.message, "must not start with \"-\"")
    }))
})
