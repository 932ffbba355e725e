/**
 * The `kube-forward-testkit serve` binary: ready line, pods from flags and from a config file,
 * kubectl through it, and a clean exit 0 with its files removed on SIGTERM/SIGINT.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Child } from "../src/index.ts"
import { exchange, portForward } from "./helpers/kubectl.ts"

const bin = Path.join(import.meta.dirname, "..", "bin", "kube-forward-testkit.js")

const serve = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const server = yield* Child.spawn(process.execPath, [bin, "serve", ...args])
    const m = yield* server.awaitLine(/^KUBECONFIG=(.+)$/, "stdout").pipe(Effect.timeout("30 seconds"))
    const kubeconfig = m[1]!
    return {
      server,
      kubeconfig,
      env: { KUBECONFIG: kubeconfig, KUBECACHEDIR: Path.join(Path.dirname(kubeconfig), "cache") }
    }
  })

describe("kube-forward-testkit serve", () => {
  it.live("serves pods from --pod flags until SIGTERM, then exits 0 and cleans up", () =>
    Effect.gen(function*() {
      const { env, kubeconfig, server } = yield* serve([
        "--pod",
        "default/web:80=http",
        "--pod",
        "web:7=echo",
        "--transport",
        "spdy-only"
      ])
      assert.deepStrictEqual(server.lines("stdout"), [`KUBECONFIG=${kubeconfig}`])
      assert.isTrue(Fs.existsSync(kubeconfig))
      const echo = yield* portForward({ env }, "1.33", "pod/web", 7)
      assert.strictEqual((yield* exchange(echo.localPort, Buffer.from("cli"))).toString(), "cli")
      const http = yield* portForward({ env }, "1.27", "pod/web", 80)
      const health = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${http.localPort}/health`).then((r) => r.json())
      )
      assert.deepStrictEqual(health, { status: "ok" })
      yield* server.kill("SIGTERM")
      const exit = yield* server.awaitExit
      assert.deepStrictEqual(exit, { code: 0, signal: null })
      assert.isFalse(Fs.existsSync(Path.dirname(kubeconfig)))
      assert.deepStrictEqual(server.lines("stdout"), [`KUBECONFIG=${kubeconfig}`])
    }))

  it.live("reads --config JSON (pods, services, deployments) and stops on SIGINT", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "testkit-cli-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const config = Path.join(dir, "cluster.json")
      Fs.writeFileSync(
        config,
        JSON.stringify({
          pods: [{
            name: "api-0",
            labels: { app: "api" },
            containers: [{
              name: "app",
              ports: [{ name: "http", containerPort: 8080, backend: { http: { name: "api-0" } } }]
            }]
          }],
          services: [{ name: "api", selector: { app: "api" }, ports: [{ name: "web", port: 80, targetPort: "http" }] }],
          deployments: [{ name: "api", selector: { app: "api" } }]
        })
      )
      const { env, server } = yield* serve(["--config", config])
      const svc = yield* portForward({ env }, "1.33", "svc/api", 80)
      assert.strictEqual(svc.remotePort, 8080)
      const who = yield* Effect.promise(() => fetch(`http://127.0.0.1:${svc.localPort}/whoami`).then((r) => r.json()))
      assert.deepStrictEqual(who, { name: "api-0" })
      const deploy = yield* portForward({ env }, "1.30", "deployment/api", 8080)
      assert.strictEqual(deploy.remotePort, 8080)
      yield* server.kill("SIGINT")
      assert.strictEqual((yield* server.awaitExit).code, 0)
    }))

  it.live("rejects a malformed --pod with exit 1", () =>
    Effect.gen(function*() {
      const server = yield* Child.spawn(process.execPath, [bin, "serve", "--pod", "web=echo"])
      const exit = yield* server.awaitExit
      assert.strictEqual(exit.code, 1)
      assert.include(server.text("stderr"), `invalid --pod "web=echo"`)
      assert.deepStrictEqual(server.lines("stdout"), [])
    }))
})
