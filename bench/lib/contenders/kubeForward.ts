/** kube-forward on its kubectl carrier: `PortForward.layer`, and a variant whose `Kubectl` layer stamps phases. */
import { Kubectl, PortForward } from "@kube-forward/core"
import { Effect, Exit, Layer, ManagedRuntime, Scope, Stream } from "effect"
import { cpuNow, type Settings } from "./common.ts"
import { type EffectContender, effectContender, type Modules, type Recorder } from "./effect.ts"

/** This checkout's modules. */
export const current: Modules = { Effect, Exit, ManagedRuntime, Scope, PortForward }

/** The options every kubectl-carried kube-forward contender uses. */
export const kubectlOptions = (s: Settings): Kubectl.Options => ({
  binary: s.kubectl,
  kubeconfig: s.kubeconfigPath,
  env: { KUBECACHEDIR: s.cacheDir }
})

/** A Kubectl layer that records when the library spawns kubectl, gets its pid, reads its first line, and starts killing it. */
const instrumentedKubectl = (options: Kubectl.Options, recorder: Recorder): Layer.Layer<Kubectl.Kubectl> =>
  Layer.effect(
    Kubectl.Kubectl,
    Effect.gen(function*() {
      const inner = yield* Kubectl.Kubectl
      return Kubectl.Kubectl.of({
        binary: inner.binary,
        spawn: (args) =>
          Effect.gen(function*() {
            const marks = recorder.current
            recorder.args.push(args)
            marks.spawnStart = performance.now()
            const proc = yield* inner.spawn(args)
            marks.spawnEnd = performance.now()
            marks["cpu:spawnEnd"] = cpuNow()
            marks.pid = proc.pid
            yield* Effect.addFinalizer(() => Effect.sync(() => void (marks.killStart = performance.now())))
            let first = true
            return {
              ...proc,
              output: proc.output.pipe(Stream.tap((line) =>
                Effect.sync(() => {
                  if (first && line.stream === "stdout") {
                    first = false
                    marks.firstLine = performance.now()
                    marks["cpu:firstLine"] = cpuNow()
                  }
                })
              ))
            }
          })
      })
    })
  ).pipe(Layer.provide(Kubectl.layer(options)))

export interface KubeForwardContender extends EffectContender {
  /** Argument arrays kubectl was spawned with (instrumented variant only). */
  readonly spawnedArgs: Array<ReadonlyArray<string>>
}

/** kube-forward `PortForward.make` on `PortForward.layer` (or on the instrumented Kubectl layer). */
export const kubeForward = (id: string, label: string, s: Settings, instrument: boolean): KubeForwardContender => {
  const recorder: Recorder = { current: {}, args: [] }
  const layer = instrument
    ? PortForward.layerWith(instrumentedKubectl(kubectlOptions(s), recorder))
    : PortForward.layer(kubectlOptions(s))
  return {
    ...effectContender({ id, label, carrier: "kubectl", layer, modules: current, recorder }),
    spawnedArgs: recorder.args
  }
}
