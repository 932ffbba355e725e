import { Effect } from "effect"
import { NodeRuntime } from "@effect/platform-node"
import { Smoke } from "@kube-forward/core"
NodeRuntime.runMain(Effect.gen(function* () { const s = yield* Smoke.hello; yield* Effect.log(s, process.version) }))
