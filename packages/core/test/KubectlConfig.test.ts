import { assert, describe, it } from "@effect/vitest"
import { Kubectl } from "@kube-forward/core"
import { Config, ConfigProvider, Effect, Layer, Stream } from "effect"

const withEnv = (env: Record<string, string>) =>
  Kubectl.Kubectl.pipe(
    Effect.provide(Kubectl.layerFromEnv.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))))
  )

describe("Kubectl.layerConfig (a Config.Wrap of the options)", () => {
  it.effect("takes a record with a Config per option, read from the ConfigProvider in context", () =>
    Effect.gen(function*() {
      const env = { MY_KUBECTL: "/opt/kubectl", MY_NS: "shop" }
      const kubectl = yield* Kubectl.Kubectl.pipe(
        Effect.provide(
          Kubectl.layerConfig({ binary: Config.String("MY_KUBECTL"), namespace: Config.String("MY_NS") }).pipe(
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
          )
        )
      )
      assert.strictEqual(kubectl.binary, "/opt/kubectl")
      assert.strictEqual(kubectl.namespace, "shop")
      const missing = yield* Kubectl.Kubectl.pipe(
        Effect.provide(
          Kubectl.layerConfig({ binary: Config.String("MY_KUBECTL") }).pipe(
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} })))
          )
        ),
        Effect.flip
      )
      assert.include(String(missing), "MY_KUBECTL")
    }))
})

describe("Kubectl.layerFromEnv", () => {
  it.effect("reads the binary from KUBE_FORWARD_KUBECTL, defaulting to kubectl", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* withEnv({})).binary, "kubectl")
      assert.strictEqual((yield* withEnv({ KUBE_FORWARD_KUBECTL: "/opt/k/kubectl" })).binary, "/opt/k/kubectl")
    }))

  it.effect("rejects a malformed kill grace with a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({ KUBE_FORWARD_KILL_GRACE: "soonish" }))
      assert.include(String(error), "KUBE_FORWARD_KILL_GRACE")
    }))

  it.live("passes KUBECONFIG (a single file), context and namespace as flags, a path list not", () =>
    Effect.gen(function*() {
      // /bin/echo as the binary prints back the arguments it was given
      const kubectl = yield* withEnv({
        KUBE_FORWARD_KUBECTL: "/bin/echo",
        KUBECONFIG: "/tmp/kc.yaml",
        KUBE_FORWARD_CONTEXT: "staging",
        KUBE_FORWARD_NAMESPACE: "shop",
        KUBE_FORWARD_WATCHDOG: "false",
        KUBE_FORWARD_KILL_GRACE: "500 millis"
      })
      assert.strictEqual(kubectl.namespace, "shop")
      const proc = yield* kubectl.spawn(["port-forward"])
      const lines = yield* Stream.runCollect(proc.output)
      assert.deepStrictEqual(lines.map((l) => l.text), [
        "--kubeconfig=/tmp/kc.yaml --context=staging --namespace=shop port-forward"
      ])
      const listed = yield* withEnv({ KUBE_FORWARD_KUBECTL: "/bin/echo", KUBECONFIG: "/a:/b" })
      const lines2 = yield* Stream.runCollect((yield* listed.spawn(["x"])).output)
      assert.deepStrictEqual(lines2.map((l) => l.text), ["x"], "a KUBECONFIG list is left to kubectl's own reading")
    }))
})
