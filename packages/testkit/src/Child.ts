/**
 * Child processes for tests: spawn a program with an argument array (never a shell) as a
 * scoped resource, read what it prints line by line, and wait for a line or for its exit —
 * by the event, never on a timer.
 *
 * The child runs in a process group of its own. When the scope closes, the whole group is
 * ended: SIGTERM, SIGKILL after a grace period, and whatever of the group outlives its leader
 * (a grandchild, a wrapper's real program) gets SIGKILL too. So a test that fails halfway
 * leaves nothing behind, and a program that escapes its group is a leak the test can see.
 *
 * @example
 * ```ts
 * import { Child } from "@kube-forward/testkit"
 *
 * const server = yield* Child.spawn(process.execPath, ["server.js"], { env: cluster.env })
 * const [, port] = yield* server.awaitLine(/^listening on (\d+)$/, "stdout")
 * yield* server.kill("SIGTERM")
 * assert.deepStrictEqual(yield* server.awaitExit, { code: 0, signal: null })
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Effect, Queue, Schema, type Scope, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Processes from "./Processes.ts"

/**
 * The stream a line came from.
 *
 * @category models
 * @since 0.1.0
 */
export type StreamName = "stdout" | "stderr"

/**
 * One line a child printed, without its line ending.
 *
 * @category models
 * @since 0.1.0
 */
export interface Line {
  readonly stream: StreamName
  readonly text: string
}

/**
 * How a child ended: its exit code, or the signal that ended it (as Node reports them).
 *
 * @category models
 * @since 0.1.0
 */
export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/**
 * The program could not be started at all (not found, not executable).
 *
 * @category errors
 * @since 0.1.0
 */
export class SpawnError extends Schema.TaggedError<SpawnError>()("SpawnError", {
  command: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `could not start ${this.command}: ${this.detail}`
  }
}

/**
 * The child exited before it printed the line that was waited for. Carries its exit status
 * and everything it printed on stderr, for the test's failure message.
 *
 * @category errors
 * @since 0.1.0
 */
export class ExitedBeforeLine extends Schema.TaggedError<ExitedBeforeLine>()("ExitedBeforeLine", {
  command: Schema.String,
  waitingFor: Schema.String,
  code: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  stderr: Schema.String
}) {
  override get message(): string {
    const how = this.code !== null ? `with code ${this.code}` : `on ${this.signal}`
    return `${this.command} exited ${how} before printing a line matching ${this.waitingFor}; stderr:\n${this.stderr}`
  }
}

/**
 * Options of {@link spawn}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /**
   * Environment variables added to this process's environment; `undefined` removes one
   * (for example `{ KUBECONFIG: undefined }`).
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** The working directory. Default: this process's. */
  readonly cwd?: string | undefined
  /** How long the group may take to exit after SIGTERM, when the scope closes, before SIGKILL. Default 3 seconds. */
  readonly killGrace?: Duration.Input | undefined
}

/**
 * A running (or finished) child process.
 *
 * @category models
 * @since 0.1.0
 */
export interface Child {
  /** The process id; also the id of its process group. */
  readonly pid: number
  /** The program that was started (for messages). */
  readonly command: string
  /** Every complete line printed so far, on `stream` or on both in the order they arrived. */
  readonly lines: (stream?: StreamName) => ReadonlyArray<string>
  /** Everything printed on `stream` so far, as one text (the last line may be incomplete). */
  readonly text: (stream: StreamName) => string
  /**
   * Every line, from the first one printed (also those printed before the stream was run) to
   * the last one; the stream ends when the child has exited and its pipes are closed.
   */
  readonly output: Stream.Stream<Line>
  /**
   * Waits for the first line, printed before or after the call, that matches `pattern` (on
   * `stream`, or on either). Fails with {@link ExitedBeforeLine} if the child exits first.
   */
  readonly awaitLine: (pattern: RegExp, stream?: StreamName) => Effect.Effect<RegExpExecArray, ExitedBeforeLine>
  /** Waits until the child has exited and everything it printed has been read. */
  readonly awaitExit: Effect.Effect<ExitStatus>
  /** The exit status once the child has exited and its output was read, without waiting. */
  readonly exitStatus: () => ExitStatus | undefined
  /** Sends `signal` (default SIGTERM) to the child itself, not its group; nothing once it has exited. */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
  /** Sends `signal` (default SIGTERM) to every live process of the child's group. */
  readonly killGroup: (signal?: NodeJS.Signals) => Effect.Effect<void>
}

/** How long the pipes may stay open after the child exited (held by an escaped grandchild). */
const PIPE_DRAIN_MS = 1000
/** How long the scope's finalizer waits for the rest of the group after its last SIGKILL. */
const GROUP_REAP_MS = 2000

/** A setTimeout-based sleep: finalizers run on the real clock, even in tests under a TestClock. */
const realSleep = (millis: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // the group is gone
  }
}

/** Whether any live (non-zombie) process is left in group `pgid`. */
const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
  return Processes.group(pgid).length > 0
}

const environment = (env: Options["env"]): NodeJS.ProcessEnv => {
  const merged: NodeJS.ProcessEnv = { ...process.env }
  for (const [name, value] of Object.entries(env ?? {})) {
    if (value === undefined) delete merged[name]
    else merged[name] = value
  }
  return merged
}

/** What a child printed and how it ended, kept as it happens, with waits on both. */
interface Tracker {
  /** Every complete line, in arrival order. */
  readonly all: ReadonlyArray<Line>
  readonly texts: { readonly stdout: string; readonly stderr: string }
  /** Set when the process exited (its output may still be arriving). */
  readonly exited: () => ExitStatus | undefined
  /** Set when the process exited and its pipes are closed. */
  readonly finished: () => ExitStatus | undefined
  /** Calls `listener` on every new line and at the end, until the returned function is called. */
  readonly listen: (listener: () => void) => () => void
}

/** Reads a started process's pipes into lines and notes its exit. */
const track = (child: ChildProcess.ChildProcess): Tracker => {
  const all: Array<Line> = []
  const texts = { stdout: "", stderr: "" }
  const partial = { stdout: "", stderr: "" }
  const listeners = new Set<() => void>()
  const notify = () => {
    for (const listener of [...listeners]) listener()
  }
  let exited: ExitStatus | undefined
  let finished: ExitStatus | undefined
  for (const name of ["stdout", "stderr"] as const) {
    const stream = child[name]
    if (stream === null) continue
    stream.setEncoding("utf8")
    stream.on("data", (chunk: string) => {
      texts[name] += chunk
      const parts = (partial[name] + chunk).split("\n")
      partial[name] = parts.pop() ?? ""
      for (const text of parts) all.push({ stream: name, text })
      if (parts.length > 0) notify()
    })
    stream.on("error", () => {})
  }
  child.once("exit", (code, signal) => {
    exited = { code, signal }
    // a grandchild that escaped the group may hold the pipes: do not wait for it forever
    setTimeout(() => {
      child.stdout?.destroy()
      child.stderr?.destroy()
    }, PIPE_DRAIN_MS).unref()
  })
  child.once("close", (code, signal) => {
    for (const name of ["stdout", "stderr"] as const) {
      if (partial[name] !== "") all.push({ stream: name, text: partial[name] })
      partial[name] = ""
    }
    finished = exited ?? { code, signal }
    notify()
  })
  return {
    all,
    texts,
    exited: () => exited,
    finished: () => finished,
    listen: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    }
  }
}

/** Waits until `poll` answers; checked at once and on every line or exit. */
const when = <A, E>(tracker: Tracker, poll: () => Effect.Effect<A, E> | undefined): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    let stop = () => {}
    const check = () => {
      const outcome = poll()
      if (outcome === undefined) return false
      stop()
      resume(outcome)
      return true
    }
    if (check()) return
    stop = tracker.listen(check)
    return Effect.sync(stop)
  })

/** The first line (on `stream`, or either) matching `pattern`, past or future. */
const awaitLine = (command: string, tracker: Tracker) => (pattern: RegExp, stream?: StreamName) => {
  let next = 0
  return when(tracker, (): Effect.Effect<RegExpExecArray, ExitedBeforeLine> | undefined => {
    for (; next < tracker.all.length; next++) {
      const line = tracker.all[next]
      if (stream !== undefined && line.stream !== stream) continue
      const match = pattern.exec(line.text)
      if (match !== null) return Effect.succeed(match)
    }
    const finished = tracker.finished()
    if (finished === undefined) return undefined
    return Effect.fail(
      new ExitedBeforeLine({ command, waitingFor: String(pattern), ...finished, stderr: tracker.texts.stderr })
    )
  })
}

/** Every line from the first, then the new ones as they come; ends when the child is finished. */
const outputOf = (tracker: Tracker): Stream.Stream<Line> =>
  Stream.callback<Line>((queue) =>
    Effect.gen(function*() {
      let next = 0
      const push = () => {
        while (next < tracker.all.length) Queue.offerUnsafe(queue, tracker.all[next++])
        if (tracker.finished() !== undefined) Queue.endUnsafe(queue)
      }
      push()
      const stop = tracker.listen(push)
      yield* Effect.addFinalizer(() => Effect.sync(stop))
    })
  )

/** Follows a started process: its lines, its exit, and the waits on them. */
const follow = (command: string, child: ChildProcess.ChildProcess): Child => {
  const tracker = track(child)
  const pid = child.pid ?? -1
  return {
    pid,
    command,
    lines: (stream) => tracker.all.filter((l) => stream === undefined || l.stream === stream).map((l) => l.text),
    text: (stream) => tracker.texts[stream],
    output: outputOf(tracker),
    awaitLine: awaitLine(command, tracker),
    awaitExit: when(tracker, () => {
      const finished = tracker.finished()
      return finished === undefined ? undefined : Effect.succeed(finished)
    }),
    exitStatus: tracker.finished,
    kill: (signal = "SIGTERM") =>
      Effect.sync(() => {
        if (tracker.exited() === undefined) child.kill(signal)
      }),
    killGroup: (signal = "SIGTERM") => Effect.sync(() => signalGroup(pid, signal))
  }
}

/**
 * Starts the process and follows it at once (no event can come before the listeners);
 * succeeds once Node reports it spawned, fails with SpawnError if it could not be.
 */
const start = (command: string, args: ReadonlyArray<string>, options: Options) =>
  Effect.callback<Child, SpawnError>((resume) => {
    const child = ChildProcess.spawn(command, [...args], {
      cwd: options.cwd,
      env: environment(options.env),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    const followed = follow(command, child)
    const onError = (error: NodeJS.ErrnoException) =>
      resume(Effect.fail(new SpawnError({ command, detail: `${error.code ?? "error"}: ${error.message}` })))
    child.once("error", onError)
    child.once("spawn", () => {
      child.off("error", onError)
      child.on("error", () => {})
      resume(Effect.succeed(followed))
    })
  })

/** Ends the child's whole group: SIGTERM, SIGKILL after `grace`, then SIGKILL for what is left. */
const endGroup = (child: Child, grace: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (child.exitStatus() === undefined) {
      signalGroup(child.pid, "SIGTERM")
      const escalate = realSleep(grace).pipe(
        Effect.andThen(Effect.sync(() => signalGroup(child.pid, "SIGKILL"))),
        Effect.andThen(Effect.never)
      )
      yield* Effect.raceFirst(child.awaitExit, escalate)
    }
    if (!groupAlive(child.pid)) return
    signalGroup(child.pid, "SIGKILL")
    for (let waited = 0; waited < GROUP_REAP_MS && groupAlive(child.pid); waited += 10) yield* realSleep(10)
  })

/**
 * Starts `command` with `args` (one array element per argument; no shell) in a process group
 * of its own, stdin closed and stdout/stderr read as lines. Fails with {@link SpawnError}
 * when it cannot be started. When the scope closes, the whole group is ended (SIGTERM, then
 * SIGKILL after `killGrace`) and waited for.
 *
 * @category constructors
 * @since 0.1.0
 */
export const spawn: (
  command: string,
  args: ReadonlyArray<string>,
  options?: Options
) => Effect.Effect<Child, SpawnError, Scope.Scope> = Effect.fn("Child.spawn")(function*(
  command: string,
  args: ReadonlyArray<string>,
  options: Options = {}
) {
  const grace = Duration.toMillis(Duration.fromInputUnsafe(options.killGrace ?? Duration.seconds(3)))
  return yield* Effect.acquireRelease(
    start(command, args, options),
    (child) => endGroup(child, grace)
  )
})
