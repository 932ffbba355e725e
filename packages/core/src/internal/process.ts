/**
 * Process mechanics for kubectl: spawning it in a process group of its own, reading its pipes
 * as lines, knowing when it has really ended, and ending its whole tree.
 *
 * One handle builder ({@link makeHandle}) serves both the real runner ({@link spawn}) and the
 * scripted one of `Kubectl.layerTest`, so the two cannot drift apart in how output ends, how
 * the exit is settled once, or how a kill waits.
 *
 * Why execa and not Effect's own `effect/process` ChildProcess: Effect's module can start a
 * process group and signal it, but it is marked unstable in 4.1, and what a forward needs goes
 * beyond it anyway: an exit that waits for both pipes but not for ever (a descendant in a
 * session of its own may hold them), a group reap that tells zombies from live members (slow
 * init in containers), escalation on the real clock even under a `TestClock`, and a watchdog
 * registration. Those are ours either way; execa adds the PATH lookup, the spawn-error texts
 * (`ENOENT` …) and, with the watchdog off, its exit hook that ends the group when this process
 * exits. Swapping it stays a change of {@link spawn} alone.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Option, Queue, Stream } from "effect"
import { execa } from "execa"
import * as Fs from "node:fs"
import type { ExitStatus, KubectlProcess, OutputLine } from "../Kubectl.ts"
import { LineSplitter } from "./lines.ts"
import { realSleep } from "./time.ts"
import * as Watchdog from "./watchdog.ts"

/** How a process is asked to stop, made to stop, and cleaned up after. */
export interface Controls {
  readonly pid: number
  /** Asks the process (tree) to stop: SIGTERM to the group, or a script's own kill. */
  readonly terminate: Effect.Effect<void>
  /** Makes it stop: SIGKILL to the group. */
  readonly forceKill: Effect.Effect<void>
  /** How long `terminate` may take before `forceKill`, in milliseconds. */
  readonly graceMs: number
  /** Runs once after the exit is settled (reaping what is left of the group, say). */
  readonly afterExit: Effect.Effect<void>
}

/** A process handle and the two ways its owner feeds it. */
export interface Handle {
  readonly process: KubectlProcess
  /** Adds one output line (ignored after the exit was settled). */
  readonly offer: (line: OutputLine) => void
  /** Settles the exit, once: ends the output and wakes every waiter. */
  readonly settle: (status: ExitStatus) => void
}

/** Builds the {@link KubectlProcess} handle around `controls`. */
export const makeHandle = (controls: Controls): Effect.Effect<Handle> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<OutputLine, Cause.Done>()
    const exited = yield* Deferred.make<ExitStatus>()
    let status: ExitStatus | undefined
    // cleaned up once: signalling the group again later could hit a reused process group id
    const exit = yield* Effect.cached(Deferred.await(exited).pipe(Effect.tap(() => controls.afterExit)))
    const escalate = realSleep(controls.graceMs).pipe(Effect.andThen(controls.forceKill), Effect.andThen(Effect.never))
    const kill = Effect.suspend(() =>
      Deferred.isDoneUnsafe(exited)
        ? exit
        : controls.terminate.pipe(
          Effect.andThen(Effect.raceFirst(Deferred.await(exited), escalate)),
          Effect.andThen(exit)
        )
    )
    const process: KubectlProcess = {
      pid: controls.pid,
      output: Stream.fromQueue(queue),
      exit,
      exitStatus: Effect.sync(() => Option.fromUndefinedOr(status)),
      kill
    }
    return {
      process,
      offer: (line) => {
        if (status === undefined) Queue.offerUnsafe(queue, line)
      },
      settle: (s) => {
        if (status !== undefined) return
        status = s
        Queue.endUnsafe(queue)
        Deferred.doneUnsafe(exited, Effect.succeed(s))
      }
    }
  })

// ---------------------------------------------------------------------------------------------
// process groups
// ---------------------------------------------------------------------------------------------

/** The live (non-zombie) members of process group `pgid`, read from /proc on Linux. */
export const liveMembers = (pgid: number): ReadonlyArray<number> | "unknown" => {
  try {
    process.kill(-pgid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM" ? "unknown" : []
  }
  if (process.platform !== "linux") return "unknown"
  try {
    const members: Array<number> = []
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
      if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") members.push(Number(entry))
    }
    return members
  } catch {
    return "unknown"
  }
}

const isGroupAlive = (pgid: number): boolean => {
  const members = liveMembers(pgid)
  return members === "unknown" || members.length > 0
}

/** Sends `signal` to process group `pgid`; a group that is gone already is fine. */
export const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // the group is gone already
  }
}

/** How long the wait for a group to empty after SIGKILL may take. */
export const REAP_LIMIT_MS = 2000

/**
 * After the leader exited: make sure no member of its group outlives it (a wrapper's child that
 * ignored SIGTERM, say). SIGKILLs what is left and waits for it, up to {@link REAP_LIMIT_MS};
 * the group is normally empty on the first look. A member still alive after that (one stuck
 * in the kernel, in uninterruptible sleep) is reported with a warning naming its pids.
 */
export const reapGroup = (pgid: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (!isGroupAlive(pgid)) return
    signalGroup(pgid, "SIGKILL")
    for (let waited = 0; waited < REAP_LIMIT_MS && isGroupAlive(pgid); waited += 5) yield* realSleep(5)
    const left = liveMembers(pgid)
    if (left === "unknown" || left.length === 0) return
    yield* Effect.logWarning(
      `kubectl's process group ${pgid} still has live members ${REAP_LIMIT_MS} ms after SIGKILL: ${left.join(", ")}`
    )
  })

// ---------------------------------------------------------------------------------------------
// spawning with execa
// ---------------------------------------------------------------------------------------------

/**
 * How long kubectl's pipes may stay open after kubectl exited (something it started, in a
 * session of its own, may have inherited them) before they are closed from our side.
 */
const PIPE_DRAIN_MS = 250

/** Spawn errors that mean the binary cannot be run at all (as opposed to a momentary shortage). */
const NOT_RUNNABLE = new Set(["ENOENT", "EACCES", "ENOTDIR", "ELOOP", "ENAMETOOLONG", "ENOEXEC"])

/** What to start and how. */
export interface SpawnOptions {
  readonly binary: string
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>> | undefined
  readonly graceMs: number
  readonly watchdog: boolean
}

/** Why a spawn did not produce a process. */
export type SpawnFailure =
  | { readonly _tag: "NotRunnable"; readonly detail: string }
  | { readonly _tag: "Failed"; readonly detail: string }

/**
 * Starts `binary` in a process group of its own, stdin closed, stdout and stderr read as lines.
 * The handle's exit is settled when the process exited and both pipes closed (a pipe held open
 * after the exit is closed from our side after {@link PIPE_DRAIN_MS}).
 */
export const spawn = (options: SpawnOptions): Effect.Effect<KubectlProcess, SpawnFailure> =>
  Effect.gen(function*() {
    const subprocess = execa(options.binary, [...options.args], {
      // its own process group, signalled as a whole by subprocess.kill
      killDescendants: true,
      // the grace period and SIGKILL are ours; with the watchdog on, it also covers this process
      // exiting without finalizers, which is what execa's cleanup hook does
      forceKillAfterDelay: false,
      cleanup: !options.watchdog,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      buffer: false,
      reject: false,
      env: options.env,
      extendEnv: true
    })
    const pid = subprocess.pid
    if (pid === undefined) return yield* spawnFailure(options.binary, subprocess)
    if (options.watchdog) Watchdog.guard(pid)
    const handle = yield* makeHandle({
      pid,
      terminate: Effect.sync(() => subprocess.kill("SIGTERM")),
      forceKill: Effect.sync(() => signalGroup(pid, "SIGKILL")),
      graceMs: options.graceMs,
      afterExit: reapGroup(pid).pipe(Effect.tap(() => Effect.sync(() => options.watchdog && Watchdog.release(pid))))
    })
    wirePipes(subprocess, handle)
    return handle.process
  })

const spawnFailure = (binary: string, subprocess: PromiseLike<unknown>): Effect.Effect<never, SpawnFailure> =>
  Effect.promise(() => subprocess).pipe(Effect.flatMap((result) => {
    const r = result as { readonly code?: string; readonly shortMessage?: string; readonly message?: string }
    const detail = r.code === "ENOENT"
      ? `${binary} was not found on PATH (set the binary in Kubectl.layer or KUBE_FORWARD_KUBECTL)`
      : r.shortMessage ?? r.message ?? "spawn failed"
    return Effect.fail<SpawnFailure>(
      r.code === undefined || NOT_RUNNABLE.has(r.code) ? { _tag: "NotRunnable", detail } : { _tag: "Failed", detail }
    )
  }))

type Readable = NodeJS.ReadableStream & { destroy?: () => void }

interface Subprocess {
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  readonly nodeChildProcess: { once(event: "exit", f: (code: number | null, signal: string | null) => void): void }
  then(onOk: () => void, onError: () => void): unknown
}

/** Feeds both pipes into the handle as lines and settles its exit when all has ended. */
const wirePipes = (subprocess: Subprocess, handle: Handle): void => {
  let exitInfo: ExitStatus | undefined
  let openPipes = 0
  let drainTimer: ReturnType<typeof setTimeout> | undefined
  const settle = () => {
    if (exitInfo === undefined || openPipes > 0) return
    if (drainTimer !== undefined) clearTimeout(drainTimer)
    handle.settle(exitInfo)
  }
  const pipe = (stream: Readable | null, name: OutputLine["stream"]) => {
    if (stream === null) return
    openPipes++
    const splitter = new LineSplitter()
    let open = true
    stream.on("data", (chunk: Uint8Array | string) => {
      for (const text of splitter.push(chunk)) handle.offer({ stream: name, text })
    })
    stream.on("error", () => {})
    stream.on("close", () => {
      if (!open) return
      open = false
      for (const text of splitter.end()) handle.offer({ stream: name, text })
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
      subprocess.stdout?.destroy?.()
      subprocess.stderr?.destroy?.()
    }, PIPE_DRAIN_MS)
    drainTimer.unref()
  })
  // execa's own result is not used (reject: false, so it never rejects)
  subprocess.then(() => undefined, () => undefined)
}
