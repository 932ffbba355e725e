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
import {
  Cause,
  Config,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  Option,
  Queue,
  type Scope,
  Stream
} from "effect"
import { execa } from "execa"
import * as Fs from "node:fs"
import { LineSplitter } from "./internal/lines.ts"
import { realSleep } from "./internal/time.ts"
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

/**
 * Whether any live (non-zombie) process is left in group `pgid`. A zombie holds no port and
 * is only waiting for init to reap it, which in some containers takes a while; on Linux the
 * group's members are read from /proc so zombies can be told apart.
 */
const isGroupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
  if (process.platform !== "linux") return true
  try {
    for (const entry of Fs.readdirSync("/proc")) {
      if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue
      let stat: string
      try {
        stat = Fs.readFileSync(`/proc/${entry}/stat`, "latin1")
      } catch {
        continue
      }
      // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true
    }
    return false
  } catch {
    return true
  }
}

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // the group is gone already
  }
}

/** How long the longest wait for a group to empty after SIGKILL may take. */
const REAP_LIMIT_MS = 2000

/**
 * After the leader exited: make sure no member of its group outlives it (a wrapper's child that
 * ignored SIGTERM, say). Looks at the group, SIGKILLs what is left and waits for it, up to
 * {@link REAP_LIMIT_MS}; the group is normally empty on the first look.
 */
const reapGroup = (pgid: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (!isGroupAlive(pgid)) return
    signalGroup(pgid, "SIGKILL")
    for (let waited = 0; waited < REAP_LIMIT_MS && isGroupAlive(pgid); waited += 5) yield* realSleep(5)
  })

/**
 * How long kubectl's pipes may stay open after kubectl exited (something it started, in a
 * session of its own, may have inherited them) before they are closed from our side.
 */
const PIPE_DRAIN_MS = 250

/** Spawn errors that mean the binary cannot be run at all (as opposed to a momentary shortage). */
const NOT_RUNNABLE = new Set(["ENOENT", "EACCES", "ENOTDIR", "ELOOP", "ENAMETOOLONG", "ENOEXEC"])

/** Merges the layer's global flags before the caller's arguments; a later flag overrides an earlier one. */
const globalFlags = (options: Options): Array<string> => [
  ...(options.kubeconfig !== undefined ? [`--kubeconfig=${options.kubeconfig}`] : []),
  ...(options.context !== undefined ? [`--context=${options.context}`] : []),
  ...(options.namespace !== undefined ? [`--namespace=${options.namespace}`] : [])
]

const makeSpawner = (options: Options) => {
  const binary = options.binary ?? "kubectl"
  const grace = Duration.toMillis(options.killGrace ?? Duration.seconds(2))
  const useWatchdog = options.watchdog ?? true
  const flags = globalFlags(options)

  return (args: ReadonlyArray<string>): Effect.Effect<KubectlProcess, KubectlNotFound | KubectlFailed, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.gen(function*() {
        const queue = yield* Queue.unbounded<OutputLine, Cause.Done>()
        // completed once: the process exited and its output was read to the end
        const exited = yield* Deferred.make<ExitStatus>()
        const subprocess = execa(binary, [...flags, ...args], {
          // its own process group, signalled as a whole by subprocess.kill
          killDescendants: true,
          // the grace period and SIGKILL are ours (below); with the watchdog on, it also covers
          // this process exiting without finalizers, which is what execa's cleanup hooks do —
          // leaving both off saves ~0.85 ms of CPU per spawn
          forceKillAfterDelay: false,
          cleanup: !useWatchdog,
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
          buffer: false,
          reject: false,
          env: options.env,
          extendEnv: true
        })
        const pid = subprocess.pid
        if (pid === undefined) {
          const result = yield* Effect.promise(() => subprocess)
          const code = (result as { readonly code?: string }).code
          const detail = code === "ENOENT"
            ? `${binary} was not found on PATH (set the binary in Kubectl.layer or KUBE_FORWARD_KUBECTL)`
            : result.shortMessage ?? result.message ?? "spawn failed"
          return yield* (code === undefined || NOT_RUNNABLE.has(code)
            ? new KubectlNotFound({ binary, detail })
            : new KubectlFailed({ exitCode: null, signal: null, stderr: `could not start ${binary}: ${detail}` }))
        }
        if (useWatchdog) Watchdog.guard(pid)

        // The exit is known when the process has exited and both pipes are closed. A pipe
        // held open by something that escaped the process group is closed from our side after
        // PIPE_DRAIN_MS, so neither `exit` nor `kill` can wait for it forever.
        let exitInfo: ExitStatus | undefined
        let openPipes = 0
        let drainTimer: ReturnType<typeof setTimeout> | undefined
        const settle = () => {
          if (exitInfo === undefined || openPipes > 0 || Deferred.isDoneUnsafe(exited)) return
          if (drainTimer !== undefined) clearTimeout(drainTimer)
          Queue.endUnsafe(queue)
          Deferred.doneUnsafe(exited, Effect.succeed(exitInfo))
        }
        const pipe = (stream: NodeJS.ReadableStream & { destroy?: () => void } | null, name: OutputLine["stream"]) => {
          if (stream === null) return
          openPipes++
          const splitter = new LineSplitter()
          let open = true
          stream.on("data", (chunk: Uint8Array | string) => {
            for (const text of splitter.push(chunk)) Queue.offerUnsafe(queue, { stream: name, text })
          })
          stream.on("error", () => {})
          stream.on("close", () => {
            if (!open) return
            open = false
            for (const text of splitter.end()) Queue.offerUnsafe(queue, { stream: name, text })
            openPipes--
            settle()
          })
        }
        pipe(subprocess.stdout, "stdout")
        pipe(subprocess.stderr, "stderr")
        subprocess.nodeChildProcess.once("exit", (code, signal) => {
          exitInfo = { exitCode: code, signal }
          if (openPipes === 0) return settle()
          drainTimer = setTimeout(() => {
            subprocess.stdout?.destroy()
            subprocess.stderr?.destroy()
          }, PIPE_DRAIN_MS)
          drainTimer.unref()
        })
        // execa's own result is not used (reject: false, so it never rejects)
        subprocess.then(() => undefined, () => undefined)

        // reaped once: signalling the group again later could hit a reused process group id
        const exit = yield* Effect.cached(
          Deferred.await(exited).pipe(
            Effect.tap(() => reapGroup(pid)),
            Effect.tap(() => Effect.sync(() => useWatchdog && Watchdog.release(pid)))
          )
        )
        const escalate = realSleep(grace).pipe(
          Effect.andThen(Effect.sync(() => signalGroup(pid, "SIGKILL"))),
          Effect.andThen(Effect.never)
        )
        const kill = Effect.suspend(() => {
          if (Deferred.isDoneUnsafe(exited)) return exit
          subprocess.kill("SIGTERM")
          return Effect.raceFirst(Deferred.await(exited), escalate).pipe(Effect.andThen(exit))
        })
        const process: KubectlProcess = {
          pid,
          output: Stream.fromQueue(queue),
          exit,
          exitStatus: Effect.sync(() => Deferred.isDoneUnsafe(exited) ? Option.fromUndefinedOr(exitInfo) : Option.none()),
          kill
        }
        return process
      }),
      (process) => process.kill
    )
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
export const layer = (options: Options = {}): Layer.Layer<Kubectl> =>
  Layer.sync(Kubectl, () => {
    // the watchdog starts with the layer, off the first forward's way to ready
    if (options.watchdog ?? true) Watchdog.prepare()
    return Kubectl.of({ binary: options.binary ?? "kubectl", namespace: options.namespace, spawn: makeSpawner(options) })
  })

/**
 * Runs kubectl with execa, configured from the environment:
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
 * @category layers
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<Kubectl, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const nonEmpty = (name: string) =>
      Config.option(Config.String(name)).pipe(
        Config.map((o) => Option.getOrUndefined(Option.filter(o, (v) => v.length > 0)))
      )
    const binary = yield* Config.String("KUBE_FORWARD_KUBECTL").pipe(Config.withDefault("kubectl"))
    const kubeconfig = yield* nonEmpty("KUBECONFIG")
    return layer({
      binary,
      kubeconfig: kubeconfig !== undefined && !kubeconfig.includes(":") ? kubeconfig : undefined,
      context: yield* nonEmpty("KUBE_FORWARD_CONTEXT"),
      namespace: yield* nonEmpty("KUBE_FORWARD_NAMESPACE"),
      killGrace: Option.getOrUndefined(yield* Config.option(Config.Duration("KUBE_FORWARD_KILL_GRACE"))),
      watchdog: Option.getOrUndefined(yield* Config.option(Config.Boolean("KUBE_FORWARD_WATCHDOG")))
    })
  })
)

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
          Effect.gen(function*() {
            const result = script(args, index++)
            const s = Effect.isEffect(result) ? yield* result : result
            const queue = yield* Queue.unbounded<OutputLine, Cause.Done>()
            const exited = yield* Deferred.make<ExitStatus>()
            let ended: ExitStatus | undefined
            const finish = (status: ExitStatus) =>
              Effect.sync(() => {
                if (Deferred.isDoneUnsafe(exited)) return
                ended = status
                Queue.endUnsafe(queue)
                Deferred.doneUnsafe(exited, Effect.succeed(status))
              })
            for (const line of s.output ?? []) {
              Queue.offerUnsafe(queue, typeof line === "string" ? { stream: "stdout", text: line } : line)
            }
            if (s.exit !== undefined) {
              const exit = s.exit
              yield* (Effect.isEffect(exit) ? exit : Effect.succeed(exit)).pipe(
                Effect.flatMap(finish),
                Effect.forkDetach
              )
            }
            const kill = Effect.gen(function*() {
              if (!Deferred.isDoneUnsafe(exited)) {
                if (s.onKill !== undefined) yield* s.onKill
                yield* finish({ exitCode: null, signal: "SIGTERM" })
              }
              return yield* Deferred.await(exited)
            })
            const process: KubectlProcess = {
              pid: testPid++,
              output: Stream.fromQueue(queue),
              exit: Deferred.await(exited),
              exitStatus: Effect.sync(() => Option.fromUndefinedOr(ended)),
              kill
            }
            return process
          }),
          (process) => process.kill
        )
    })
  )
}
