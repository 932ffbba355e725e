/**
 * One run of the command: open every forward of a plan, report what happens to them, write the
 * ports file, run the `--` command or wait for a stop, and close everything.
 *
 * - Every forward is a `PortForward.make` of `@kube-forward/core`: start-up retried on transient
 *   errors (`Retry.policy()`, within a minute), and, unless turned off, reconnected after a loss
 *   for as long as it takes (backoff from 200 ms, at most 5 s between attempts; a forward gives
 *   up only on errors no reconnect can fix: `Forbidden`, `Unauthorized`, `KubectlNotFound`, …).
 * - They open concurrently; if one fails to start, the others are closed and the run fails with
 *   `ForwardFailed` (exit code 3), and so it does when a ready forward is lost for good.
 * - With a `--` command, it starts once every forward is ready, and its exit ends the run. A
 *   forward that fails for good meanwhile ends it too: the command gets SIGTERM (SIGKILL after
 *   5 s) and the run fails with `ForwardFailed`.
 * - Closing: every forward is closed at once, and the close waits for each carrier (kubectl's
 *   whole process tree) to be gone.
 *
 * @since 0.1.0
 */
import { type Forwarder, type PortAllocator, PortForward, PortForwardError, Retry } from "@kube-forward/core"
import { Clock, Deferred, Effect, Fiber, Schedule, Schema, type Scope, Stream } from "effect"
import * as FsSync from "node:fs"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import type * as Board from "./Board.ts"
import * as ChildCommand from "./ChildCommand.ts"
import type { Output } from "./Output.ts"
import type { Forward, Plan } from "./Plan.ts"

/**
 * A forward failed for good: it could not start, or it was lost and not brought back.
 *
 * @category errors
 * @since 0.1.0
 */
export class ForwardFailed
  extends Schema.TaggedError<ForwardFailed>("@kube-forward/cli/ForwardFailed")("ForwardFailed", {
    forward: Schema.String,
    error: Schema.declare(
      (u: unknown): u is PortForwardError.PortForwardError => PortForwardError.isPortForwardError(u),
      { expected: "a PortForwardError" }
    )
  })
{
  /** @since 0.1.0 */
  override get message(): string {
    return `forward ${JSON.stringify(this.forward)} failed: ${this.error.message}`
  }
}

/**
 * The ports file could not be written once the forwards were ready (they are closed again).
 *
 * @category errors
 * @since 0.1.0
 */
export class PortsFileFailed
  extends Schema.TaggedError<PortsFileFailed>("@kube-forward/cli/PortsFileFailed")("PortsFileFailed", {
    path: Schema.String,
    reason: Schema.String
  })
{
  /** @since 0.1.0 */
  override get message(): string {
    return `cannot write the ports file ${this.path}: ${this.reason}`
  }
}

/**
 * Why a ports file could never be written at `path` (its directory is missing, not a
 * directory, or not writable), or `undefined`: checked before anything starts.
 *
 * @category validation
 * @since 0.1.0
 */
export const checkPortsFile = (path: string): string | undefined => {
  const dir = Path.dirname(Path.resolve(path))
  const where = `--ports-file ${JSON.stringify(path)}`
  try {
    if (!FsSync.statSync(dir).isDirectory()) return `${where}: ${dir} is not a directory`
    FsSync.accessSync(dir, FsSync.constants.W_OK)
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === "ENOENT"
      ? `${where}: the directory ${dir} does not exist`
      : `${where}: cannot write to the directory ${dir} (${code ?? String(error)})`
  }
}

/**
 * How a run ended when it did not fail.
 *
 * @category models
 * @since 0.1.0
 */
export type Outcome =
  | { readonly _tag: "Stopped" }
  | { readonly _tag: "CommandExited"; readonly code: number; readonly failure: string | undefined }

/**
 * What a run is asked to do besides opening the forwards.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly output: Output
  /** The `--` command (its arguments may hold placeholders). */
  readonly command: ReadonlyArray<string> | undefined
  /** Where to write the resolved ports as JSON once every forward is ready. */
  readonly portsFile: string | undefined
  /**
   * Called with the command once it runs (for the signal handling), and with `undefined` once it
   * and what it left behind have been stopped (its leftovers may be awaited after its exit).
   */
  readonly onCommand: (running: ChildCommand.Running | undefined) => void
}

/**
 * The reconnect schedule of the command: jittered backoff from 200 ms, at most 5 s between
 * attempts, without an end (a person or a script stops the command; errors no reconnect can fix
 * end a forward at once).
 *
 * @category schedules
 * @since 0.1.0
 */
export const reconnectPolicy: Schedule.Schedule<unknown, PortForwardError.PortForwardError> = Schedule.min([
  Schedule.exponential("200 millis").pipe(Schedule.jittered),
  Schedule.spaced("5 seconds")
]).pipe(Schedule.setInputType<PortForwardError.PortForwardError>())

interface Opened {
  readonly forward: Forward
  readonly value: PortForward.PortForward
  readonly watcher: Fiber.Fiber<void>
}

const report = (output: Output, change: (at: number) => Board.Change) =>
  Clock.currentTimeMillis.pipe(Effect.flatMap((at) => output.change(change(at))))

/** Opens one forward and follows its status; a loss for good completes `failed`. */
const open = (
  forward: Forward,
  output: Output,
  failed: Deferred.Deferred<never, ForwardFailed>
): Effect.Effect<Opened, ForwardFailed, Scope.Scope | Forwarder.Forwarder | PortAllocator.PortAllocator> =>
  Effect.gen(function*() {
    const name = forward.name
    const retry = Retry.policy().pipe(
      Schedule.tap(({ input }) => report(output, (at) => ({ _tag: "AttemptFailed", name, at, error: input })))
    )
    const value = yield* PortForward.make({
      ...forward.spec,
      retry,
      reconnect: forward.reconnect ? reconnectPolicy : undefined
    }).pipe(
      Effect.tapError((error) => report(output, (at) => ({ _tag: "StartFailed", name, at, error }))),
      Effect.mapError((error) => new ForwardFailed({ forward: name, error }))
    )
    yield* report(output, (at) => ({ _tag: "Status", name, at, status: { _tag: "Ready", ports: value.ports } }))
    const watcher = yield* value.status.pipe(
      Stream.runForEach((status) => report(output, (at) => ({ _tag: "Status", name, at, status }))),
      Effect.andThen(value.currentStatus),
      Effect.flatMap((s) =>
        s._tag === "Failed" ? Deferred.fail(failed, new ForwardFailed({ forward: name, error: s.error })) : Effect.void
      ),
      Effect.asVoid,
      Effect.forkScoped
    )
    return { forward, value, watcher }
  })

/** Stops following the forwards, closes them all at once, and reports each as closed. */
const closeAll = (opened: ReadonlyArray<Opened>, output: Output) =>
  Effect.gen(function*() {
    yield* Effect.forEach(opened, (o) => Fiber.interrupt(o.watcher), { discard: true })
    yield* Effect.forEach(opened, (o) => o.value.close, { concurrency: "unbounded", discard: true })
  }).pipe(Effect.andThen(markClosed(output)))

/** Reports every forward that is neither closed nor failed as closed. */
const markClosed = (output: Output) =>
  Effect.gen(function*() {
    for (const row of yield* output.rows) {
      if (row.state === "Closed" || row.state === "Failed") continue
      yield* report(output, (at) => ({ _tag: "Status", name: row.name, at, status: { _tag: "Closed" } }))
    }
  })

/**
 * The ports file: `{ "forwards": [{ "name", "target", "namespace", "ports": [{ "address",
 * "local", "remote", "targetPort" }] }] }`, in the plan's order.
 *
 * @category encoding
 * @since 0.1.0
 */
export const portsFileJson = (
  opened: ReadonlyArray<{ readonly forward: Forward; readonly value: PortForward.PortForward }>
) =>
  JSON.stringify(
    {
      forwards: opened.map(({ forward, value }) => ({
        name: forward.name,
        target: forward.target,
        namespace: value.namespace ?? null,
        ports: value.ports.map((p) => ({
          address: p.address,
          local: p.local,
          remote: p.remote,
          targetPort: p.targetPort
        }))
      }))
    },
    null,
    2
  ) + "\n"

/** Why a write failed, in words, without the temporary file's name. */
const writeFailure = (error: NodeJS.ErrnoException): string => {
  const words: Record<string, string> = {
    EISDIR: "it is a directory",
    ENOTEMPTY: "it is a directory",
    EEXIST: "it is a directory",
    EACCES: "permission denied",
    EPERM: "permission denied",
    ENOENT: "its directory is gone",
    ENOSPC: "no space left on the device",
    EROFS: "a read-only file system"
  }
  return error.code === undefined ? String(error) : `${words[error.code] ?? error.code} (${error.code})`
}

/**
 * Writes the ports file atomically (a temporary file renamed over it) and removes it at the end;
 * a failure (the temporary file removed again) is a `PortsFileFailed` naming the path.
 */
const writePortsFile = (file: string, content: string) => {
  const temporary = Path.join(Path.dirname(file), `.${Path.basename(file)}.${process.pid}.tmp`)
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        await Fs.writeFile(temporary, content)
        await Fs.rename(temporary, file)
      },
      catch: (error) => new PortsFileFailed({ path: file, reason: writeFailure(error as NodeJS.ErrnoException) })
    }).pipe(Effect.tapError(() => Effect.promise(() => Fs.rm(temporary, { force: true }).catch(() => {})))),
    () => Effect.promise(() => Fs.rm(file, { force: true }).catch(() => {}))
  )
}

/** Runs the `--` command until it exits, or until a forward fails for good. */
const runCommand = (
  command: ReadonlyArray<string>,
  opened: ReadonlyArray<Opened>,
  options: Options,
  failed: Deferred.Deferred<never, ForwardFailed>
): Effect.Effect<Outcome, ForwardFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const ready = opened.map((o) => ({ name: o.forward.name, ports: o.value.ports }))
    const args = ChildCommand.substitute(command, ready)
    // forgotten only once its stop is over (finalizers run in reverse): until then a second
    // signal must reach what it left behind
    yield* Effect.addFinalizer(() => Effect.sync(() => options.onCommand(undefined)))
    const running = yield* ChildCommand.start(args, ChildCommand.environment(ready))
    options.onCommand(running)
    const code = yield* Effect.raceFirst(running.exitCode, Deferred.await(failed))
    return { _tag: "CommandExited", code, failure: running.failure() } as const
  })

/**
 * Runs `plan` (validated beforehand) until it is stopped (interrupted), the `--` command exits,
 * or a forward fails for good.
 *
 * @category running
 * @since 0.1.0
 */
export const run = (
  plan: Plan,
  options: Options
): Effect.Effect<
  Outcome,
  ForwardFailed | PortsFileFailed,
  Scope.Scope | Forwarder.Forwarder | PortAllocator.PortAllocator
> =>
  Effect.gen(function*() {
    const { output } = options
    yield* Effect.addFinalizer(() => markClosed(output))
    const failed = yield* Deferred.make<never, ForwardFailed>()
    const opened = yield* Effect.forEach(plan.forwards, (f) => open(f, output, failed), { concurrency: "unbounded" })
    yield* Effect.addFinalizer(() => closeAll(opened, output))
    // the file first: whoever sees "ready" finds it
    if (options.portsFile !== undefined) yield* writePortsFile(options.portsFile, portsFileJson(opened))
    yield* output.ready
    if (options.command !== undefined) return yield* runCommand(options.command, opened, options, failed)
    return yield* Deferred.await(failed)
  })
