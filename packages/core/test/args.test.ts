import { assert, describe, it } from "@effect/vitest"
import { ForwardSpec } from "@kube-forward/core"
import { Effect } from "effect"
import { portForwardArgs } from "../src/internal/args.ts"

describe("portForwardArgs", () => {
  it.effect("puts the target and ports after --, flag values joined with =", () =>
    Effect.gen(function*() {
      const spec = yield* ForwardSpec.decode({
        target: "svc/web",
        namespace: "shop",
        context: "--dry-run",
        kubeconfig: "/tmp/my config",
        ports: [{ local: 8080, remote: 80 }, "metrics"],
        address: ["127.0.0.1", "::1"]
      })
      const args = portForwardArgs(spec, [8080, 0])
      assert.deepStrictEqual(args, [
        "port-forward",
        "--kubeconfig=/tmp/my config",
        "--context=--dry-run",
        "--namespace=shop",
        "--address=127.0.0.1,::1",
        "--",
        "service/web",
        "8080:80",
        ":metrics"
      ])
    }))

  it.effect("no user value can stand alone as a flag", () =>
    Effect.gen(function*() {
      const spec = yield* ForwardSpec.decode({
        target: "pod/web",
        context: "-x",
        kubeconfig: "--kubeconfig",
        ports: [80]
      })
      const args = portForwardArgs(spec, [0])
      const dash = args.indexOf("--")
      // before --: only our own flags, each carrying its value after "="
      for (const arg of args.slice(1, dash)) assert.match(arg, /^--(kubeconfig|context|namespace|address)=/)
      // after --: positional only
      for (const arg of args.slice(dash + 1)) assert.isFalse(arg.startsWith("-"))
    }))
})
