/**
 * The service that runs kubectl.
 *
 * `spawn` starts kubectl with an argument array (never a shell) in its own process group and
 * gives back its output as a stream of lines, its exit, and a `kill` that ends the whole
 * process tree (kubectl may be a wrapper that starts the real binary as a child): SIGTERM to
 * the group, SIGKILL after a grace period, and only then does `kill` return. The process
 * belongs to the scope `spawn` runs in; closing that scope kills it the same way.
 *
 * Layers:
 * - {@link layer}: runs a kubectl binary with execa, with optional kubeconfig, context and
 *   environment;
 * - {@link layerConfig}: the same, configured from the environment (`KUBE_FORWARD_KUBECTL`,
 *   `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`);
 * - {@link layerTest}: a scripted kubectl, for unit tests of code that uses this service.
 *
 * @since 0.1.0
 */
import { Config, Context, Duration, Effect, Layer, Option, type Scope, type Stream } from "effect"
import * as Process from "./internal/process.ts"
import * as Watchdog from "./internal/watchdog.ts"
import { KubectlFailed, KubectlNotFound } from "./PortForwardError.ts"

/**
 * One line kubectl printed, without its line ending, and which stream it came from.
 *
 * @category models
 * @since 0.1.0
 */
export interface OutputLine {
  readonly stream: "stdout" | "stderr"
  readonly text: string
}

/**
 * How a kubectl process ended: its exit code, or the signal that ended it.
 *
 * @category models
 * @since 0.1.0
 */
export interface ExitStatus {
  readonly exitCode: number | null
  readonly signal: string | null
}

/**
 * A running kubectl process.
 *
 * @category models
 * @since 0.1.0
 */
export interface KubectlProcess {
  /** The process id (also its process group id). */
  readonly pid: number
  /**
   * Everything kubectl prints, line by line, stdout and stderr interleaved in the order they
   * arrived. Ends when the process has exited and both pipes are closed. Meant for a single
   * consumer, which should keep reading: lines that are not taken are kept in memory.
   */
  readonly output: Stream.Stream<OutputLine>
  /** Waits for the process (and everything holding its pipes) to end. */
  readonly exit: Effect.Effect<ExitStatus>
  /** The exit status if the process has ended, without waiting. */
  readonly exitStatus: Effect.Effect<Option.Option<ExitStatus>>
  /**
   * Ends the whole process tree: SIGTERM to the process group, SIGKILL after the grace
   * period, then waits for the exit and for the group to empty (what is left of the group
   * gets SIGKILL too; the wait for it is bounded at 2 seconds). Idempotent.
   */
  readonly kill: Effect.Effect<ExitStatus>
}

/**
 * The kubectl runner.
 *
 * @category services
 * @since 0.1.0
 */
export class Kubectl extends Context.Service<Kubectl, {
  /** The binary (for messages). */
  readonly binary: string
  /** The namespace this runner applies when a forward names none (absent: kubectl's current one). */
  readonly namespace?: string | undefined
  /**
   * Starts kubectl with `args` (one array element per argument). The process lives until it
   * exits, `kill` is called, or the scope closes.
   *
   * The arguments of a forward are `port-forward [flags…] -- TARGET PORTS…`: everything after
   * `--` is positional. A wrapping service that adds flags must put them before `--` (at the
   * front is always safe: kubectl takes global flags before the command, and a later flag
   * overrides an earlier one).
   */
  readonly spawn: (
    args: ReadonlyArray<string>
  ) => Effect.Effect<KubectlProcess, KubectlNotFound | KubectlFailed, Scope.Scope>
}>()("@kube-forward/core/Kubectl") {}

/**
 * Options of the execa-backed kubectl runner.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The kubectl binary: a name looked up on `PATH` or a path. Default `"kubectl"`. */
  readonly binary?: string | undefined
  /** A kubeconfig file passed to every call (`--kubeconfig=`); a spec's own kubeconfig wins. */
  readonly kubeconfig?: string | undefined
  /** A context passed to every call (`--context=`); a spec's own context wins. */
  readonly context?: string | undefined
  /** A namespace passed to every call (`--namespace=`); a spec's own namespace wins. */
  readonly namespace?: string | undefined
  /** Extra environment variables for kubectl (added to this process's environment). */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** How long kubectl may take to exit after SIGTERM before it gets SIGKILL. Default 2 seconds. */
  readonly killGrace?: Duration.Input | undefined
  /**
   * Start a watchdog process that ends this process's kubectl processes if this process dies
   * without running its finalizers (SIGKILL). Default `true`.
   */
  readonly watchdog?: boolean | undefined
}

/** An optional variable, where an empty value counts as unset. */
const nonEmpty = (name: string): Config.Config<string | undefined> =>
  Config.option(Config.String(name)).pipe(
    Config.map((o) => Option.getOrUndefined(Option.filter(o, (v) => v.length > 0)))
  )

/** Merges the layer's global flags before the caller's arguments; a later flag overrides an earlier one. */
const globalFlags = (options: Options): Array<string> => [
  ...(options.kubeconfig !== undefined ? [`--kubeconfig=${options.kubeconfig}`] : []),
  ...(options.context !== undefined ? [`--context=${options.context}`] : []),
  ...(options.namespace !== undefined ? [`--namespace=${options.namespace}`] : [])
]

/**
 * Builds the execa-backed runner.
 *
 * @category constructors
 * @since 0.2.0
 */
export const make = (options: Options = {}): Kubectl["Service"] => {
  const binary = options.binary ?? "kubectl"
  const graceMs = Duration.toMillis(Duration.fromInputUnsafe(options.killGrace ?? Duration.seconds(2)))
  const watchdog = options.watchdog ?? true
  const flags = globalFlags(options)
  // the watchdog starts with the runner, off the first forward's way to ready
  if (watchdog) Watchdog.prepare()
  const spawn = (args: ReadonlyArray<string>) =>
    Effect.acquireRelease(
      Process.spawn({ binary, args: [...flags, ...args], env: options.env, graceMs, watchdog }).pipe(
        Effect.mapError((failure) =>
          failure._tag === "NotRunnable"
            ? new KubectlNotFound({ binary, detail: failure.detail })
            : new KubectlFailed({
              exitCode: null,
              signal: null,
              stderr: "",
              detail: `could not start ${binary}: ${failure.detail}`
            })
        )
      ),
      (process) => process.kill
    )
  return Kubectl.of({ binary, namespace: options.namespace, spawn })
}

/**
 * Runs kubectl with execa.
 *
 * @example
 * ```ts
 * import { Kubectl } from "@kube-forward/core"
 * const KubectlLive = Kubectl.layer({ binary: "/usr/local/bin/kubectl", context: "staging" })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Kubectl> => Layer.sync(Kubectl, () => make(options))

/**
 * Runs kubectl with execa, its options read from `Config`s (any `ConfigProvider`): pass a
 * `Config` of the whole {@link Options}, or a record with a `Config` per option.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * const KubectlLive = Kubectl.layerConfig({
 *   binary: Config.String("MY_KUBECTL").pipe(Config.withDefault("kubectl")),
 *   context: Config.String("MY_CONTEXT")
 * })
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const layerConfig = (options: Config.Wrap<Options>): Layer.Layer<Kubectl, Config.ConfigError> =>
  Layer.effect(Kubectl, Config.unwrap(options).pipe(Effect.map(make)))

/**
 * The {@link Options} read from kube-forward's environment variables:
 *
 * | variable | option | default |
 * |---|---|---|
 * | `KUBE_FORWARD_KUBECTL` | `binary` | `kubectl` |
 * | `KUBECONFIG` | `kubeconfig` (only when it names a single file; a list is left to kubectl) | kubectl's own |
 * | `KUBE_FORWARD_CONTEXT` | `context` | the kubeconfig's current context |
 * | `KUBE_FORWARD_NAMESPACE` | `namespace` | the context's namespace |
 * | `KUBE_FORWARD_KILL_GRACE` | `killGrace` (a duration, e.g. `500 millis`) | 2 seconds |
 * | `KUBE_FORWARD_WATCHDOG` | `watchdog` (`false` turns it off) | `true` |
 *
 * @category config
 * @since 0.2.0
 */
export const envConfig: Config.Config<Options> = Config.all({
  binary: Config.String("KUBE_FORWARD_KUBECTL").pipe(Config.withDefault("kubectl")),
  kubeconfig: nonEmpty("KUBECONFIG").pipe(Config.map((k) => k !== undefined && !k.includes(":") ? k : undefined)),
  context: nonEmpty("KUBE_FORWARD_CONTEXT"),
  namespace: nonEmpty("KUBE_FORWARD_NAMESPACE"),
  killGrace: Config.option(Config.Duration("KUBE_FORWARD_KILL_GRACE")).pipe(Config.map(Option.getOrUndefined)),
  watchdog: Config.option(Config.Boolean("KUBE_FORWARD_WATCHDOG")).pipe(Config.map(Option.getOrUndefined))
})

/**
 * Runs kubectl with execa, configured from kube-forward's environment variables
 * ({@link envConfig}): `layerConfig(envConfig)`.
 *
 * @category layers
 * @since 0.2.0
 */
export const layerFromEnv: Layer.Layer<Kubectl, Config.ConfigError> = layerConfig(envConfig)

/**
 * What a scripted kubectl does: print `output` (strings are stdout lines), then exit with
 * `exit` (or when that effect completes), or run until it is killed when `exit` is left out.
 *
 * @category models
 * @since 0.1.0
 */
export interface TestScript {
  readonly output?: ReadonlyArray<OutputLine | string> | undefined
  readonly exit?: ExitStatus | Effect.Effect<ExitStatus> | undefined
  /** Runs when the process is killed. */
  readonly onKill?: Effect.Effect<void> | undefined
}

let testPid = 900_000

/** One scripted process, on the same handle as a real one. */
const scriptedProcess = (s: TestScript): Effect.Effect<KubectlProcess> =>
  Effect.gen(function*() {
    const pid = testPid++
    const finish = (status: ExitStatus) => Effect.sync(() => handle.settle(status))
    const handle: Process.Handle = yield* Process.makeHandle({
      pid,
      terminate: Effect.suspend(() => s.onKill ?? Effect.void).pipe(
        Effect.andThen(finish({ exitCode: null, signal: "SIGTERM" }))
      ),
      forceKill: Effect.void,
      graceMs: 0,
      afterExit: Effect.void
    })
    for (const line of s.output ?? []) handle.offer(typeof line === "string" ? { stream: "stdout", text: line } : line)
    if (s.exit !== undefined) {
      const exit = s.exit
      yield* (Effect.isEffect(exit) ? exit : Effect.succeed(exit)).pipe(Effect.flatMap(finish), Effect.forkDetach)
    }
    return handle.process
  })

/**
 * A scripted kubectl for unit tests of code built on this service: `script` receives the
 * arguments of each spawn (and its number, from 0) and says what that process prints and how
 * it ends. Nothing is started.
 *
 * @example
 * ```ts
 * const KubectlTest = Kubectl.layerTest(() => ({
 *   output: ["Forwarding from 127.0.0.1:8080 -> 80"]
 * }))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerTest = (
  script: (args: ReadonlyArray<string>, index: number) => TestScript | Effect.Effect<TestScript>
): Layer.Layer<Kubectl> => {
  let index = 0
  return Layer.succeed(
    Kubectl,
    Kubectl.of({
      binary: "kubectl (test)",
      spawn: (args) =>
        Effect.acquireRelease(
          Effect.suspend(() => {
            const result = script(args, index++)
            return Effect.isEffect(result) ? result : Effect.succeed(result)
          }).pipe(Effect.flatMap(scriptedProcess)),
          (process) => process.kill
        )
    })
  )
}
