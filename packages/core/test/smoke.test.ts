import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { Smoke } from "@kube-forward/core"
it.effect("smoke", () => Effect.gen(function* () { assert.strictEqual(yield* Smoke.hello, "hello"); assert.strictEqual(process.version.slice(0,3), "v24") }))
