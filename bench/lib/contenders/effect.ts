/**
 * Contenders that are kube-forward's `PortForward.make` over some carrier layer: the kubectl
 * carrier (plain and instrumented), the native carrier (either transport), and the kubectl
 * carrier of an older revision of the library loaded from a checkout of its own (the A/B of
 * issue 8). One shape for all: `make` in a fresh `Scope` per forward, verified by the library.
 */
import type { PortForward as CurrentPortForward } from "@kube-forward/core"
import type { Forwarder } from "@kube-forward/core/Forwarder"
import type { PortAllocator } from "@kube-forward/core/PortAllocator"
import type { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import type { Carrier, Contender, Many, Target } from "./common.ts"

/** The modules a contender runs with: this checkout's, or an older revision's own copies. */
export interface Modules {
  readonly Effect: typeof Effect
  readonly Exit: typeof Exit
  readonly ManagedRuntime: typeof ManagedRuntime
  readonly Scope: typeof Scope
  readonly PortForward: Pick<typeof CurrentPortForward, "make">
}

/** What `PortForward.make` needs from its layer. */
export type ForwardLayer = Layer.Layer<Forwarder | PortAllocator, unknown>

/** Phase stamps written by an instrumented layer while a forward opens (absolute `performance.now()`). */
export interface Recorder {
  current: Record<string, number>
  readonly args: Array<ReadonlyArray<string>>
}

export interface EffectContender extends Contender {
  /** Opens `n` forwards at once in one scope (`Effect.forEach`, unbounded concurrency); their ports and a close. */
  readonly openMany: (target: Target, n: number, strategy: "sequential" | "parallel") => Promise<Many>
}

export interface Options {
  readonly id: string
  readonly label: string
  readonly carrier: Carrier
  readonly layer: ForwardLayer
  readonly modules: Modules
  readonly recorder?: Recorder | undefined
}

const spec = (t: Target) => ({ target: `pod/${t.pod}`, namespace: t.namespace, ports: [t.port] })

/** A contender that opens forwards with `PortForward.make` on `layer`. */
export const effectContender = (o: Options): EffectContender => {
  const { Effect, Exit, ManagedRuntime, PortForward, Scope } = o.modules
  const runtime = ManagedRuntime.make(o.layer)
  return {
    id: o.id,
    label: o.label,
    carrier: o.carrier,
    verifies: true,
    open: async (t) => {
      const marks: Record<string, number> = {}
      if (o.recorder !== undefined) o.recorder.current = marks
      const { forward, scope } = await runtime.runPromise(Effect.gen(function*() {
        const scope = yield* Scope.make()
        const forward = yield* PortForward.make(spec(t)).pipe(
          Scope.provide(scope),
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        return { forward, scope }
      }))
      const pid = marks.pid
      delete marks.pid
      return {
        port: forward.localPort,
        hosts: ["127.0.0.1"],
        marks,
        kubectlPid: pid,
        close: () => runtime.runPromise(Scope.close(scope, Exit.void)),
        exited: () => Promise.resolve()
      }
    },
    openMany: async (t, n, strategy) => {
      const { forwards, scope } = await runtime.runPromise(Effect.gen(function*() {
        const scope = yield* Scope.make(strategy)
        const forwards = yield* Effect.forEach(Array.from({ length: n }), () => PortForward.make(spec(t)), {
          concurrency: "unbounded"
        }).pipe(Scope.provide(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
        return { forwards, scope }
      }))
      return { ports: forwards.map((f) => f.localPort), close: () => runtime.runPromise(Scope.close(scope, Exit.void)) }
    },
    dispose: () => runtime.dispose()
  }
}
