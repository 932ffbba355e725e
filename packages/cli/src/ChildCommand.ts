/**
 * The `--` mode: `kube-forward … -- COMMAND ARGS…` runs COMMAND once every forward is ready,
 * with the local ports in its environment and in its arguments.
 *
 * Environment (NAME is the forward's name, REMOTE a remote port as written, both upper-cased
 * with every character other than a letter or digit turned into `_`):
 *
 * | variable | value |
 * |---|---|
 * | `KUBE_FORWARD_HOST` | the host to connect to for the first forward (`127.0.0.1` unless `--address` says otherwise) |
 * | `KUBE_FORWARD_PORT` | the local port of the first port of the first forward |
 * | `KUBE_FORWARD_PORT_<REMOTE>` | the local port of the first forward's port REMOTE (`KUBE_FORWARD_PORT_80`, `KUBE_FORWARD_PORT_HTTP`) |
 * | `KUBE_FORWARD_<NAME>_HOST`, `KUBE_FORWARD_<NAME>_PORT`, `KUBE_FORWARD_<NAME>_PORT_<REMOTE>` | the same for forward NAME |
 *
 * Placeholders in ARGS (one argument may hold several): `{port}`, `{port.REMOTE}`, `{host}`, and
 * `{NAME.port}`, `{NAME.port.REMOTE}`, `{NAME.host}`. Any other text in braces is left as it is
 * (`{"a":1}` stays JSON); a placeholder that names an unknown forward or port is invalid input,
 * reported before anything connects. The command runs without a shell: each argument is passed
 * as it is.
 *
 * @since 0.1.0
 */
import type { PortForward } from "@kube-forward/core"
import { Clock, Effect, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as ExitCode from "./ExitCode.ts"
import * as Tree from "./internal/processTree.ts"
import type { Plan } from "./Plan.ts"

/**
 * A ready forward, as the command sees it.
 *
 * @category models
 * @since 0.1.0
 */
export interface ReadyForward {
  readonly name: string
  readonly ports: ReadonlyArray<PortForward.ForwardedPort>
}

const PLACEHOLDER = /\{(?:([A-Za-z0-9_-]+)\.)?(port|host)(?:\.([A-Za-z0-9_-]+))?\}/g

/** A placeholder's parts: the forward (first when absent), `port` or `host`, the remote port. */
interface Placeholder {
  readonly text: string
  readonly forward: string | undefined
  readonly what: "port" | "host"
  readonly remote: string | undefined
}

const placeholders = (arg: string): Array<Placeholder> =>
  [...arg.matchAll(PLACEHOLDER)].map((m) => ({
    text: m[0],
    forward: m[1],
    what: m[2] as "port" | "host",
    remote: m[3]
  }))

/**
 * What is wrong with the placeholders of `args` for `plan` (empty when nothing is): each must
 * name a forward of the plan and one of its remote ports.
 *
 * @category validation
 * @since 0.1.0
 */
export const checkPlaceholders = (args: ReadonlyArray<string>, plan: Plan): Array<string> =>
  args.flatMap((arg) =>
    placeholders(arg).flatMap((p) => {
      const forward = p.forward === undefined ? plan.forwards[0] : plan.forwards.find((f) => f.name === p.forward)
      if (forward === undefined) {
        return [`-- ${JSON.stringify(arg)}: ${p.text} names no forward (forwards: ${
          plan.forwards.map((f) => f.name).join(", ")
        })`]
      }
      if (p.remote === undefined) {
        return []
      }
      if (p.what === "host") {
        return [
          `-- ${JSON.stringify(arg)}: ${p.text}: a host has no port part (write {${
            p.forward ? `${p.forward}.` : ""
          }host})`
        ]
      }
      const remotes = forward.spec.ports.map((port) =>
        String(typeof port === "object" ? port.remote : port)
      )
      return remotes.includes(p.remote)
        ? []
        : [
          `-- ${JSON.stringify(arg)}: ${p.text}: forward ${
            JSON.stringify(forward.name)
          } has no remote port ${p.remote} (it has ${remotes.join(", ")})`
        ]
    })
  )

/** Where a client connects to reach a port listening on `address`. */
const connectHost = (address: string): string =>
  address === "localhost" || address === "0.0.0.0" ? "127.0.0.1" : address === "::" ? "::1" : address

const valueOf = (p: Placeholder, forwards: ReadonlyArray<ReadyForward>): string | undefined => {
  const forward = p.forward === undefined ? forwards[0] : forwards.find((f) => f.name === p.forward)
  const port = p.remote === undefined ? forward?.ports[0] : forward?.ports.find((q) => String(q.remote) === p.remote)
  if (port === undefined) return undefined
  return p.what === "host" ? connectHost(port.address) : String(port.local)
}

/**
 * `args` with every placeholder replaced by its value (checked beforehand with
 * {@link checkPlaceholders}; one that cannot be resolved is left as it is).
 *
 * @category substitution
 * @since 0.1.0
 */
export const substitute = (args: ReadonlyArray<string>, forwards: ReadonlyArray<ReadyForward>): Array<string> =>
  args.map((arg) =>
    arg.replace(
      PLACEHOLDER,
      (text, forward, what, remote) => valueOf({ text, forward, what, remote }, forwards) ?? text
    )
  )

const envKey = (text: string) => text.toUpperCase().replace(/[^A-Z0-9]/g, "_")

/**
 * What is wrong with the names of `plan` for the command's environment (empty when nothing
 * is): two forwards whose names differ only in case or in `-` and `_` (`db-main`, `db_main`)
 * would both be `KUBE_FORWARD_DB_MAIN_*`, one overwriting the other.
 *
 * @category validation
 * @since 0.1.0
 */
export const checkNames = (plan: Plan): Array<string> => {
  const byKey = new Map<string, string>()
  const problems: Array<string> = []
  for (const { name } of plan.forwards) {
    const key = envKey(name)
    const other = byKey.get(key)
    if (other === undefined) byKey.set(key, name)
    else {
      problems.push(
        `forwards ${JSON.stringify(other)} and ${
          JSON.stringify(name)
        } would both be KUBE_FORWARD_${key}_* in the command's environment: rename one`
      )
    }
  }
  return problems
}

const forwardVariables = (prefix: string, forward: ReadyForward): Record<string, string> => {
  const vars: Record<string, string> = {}
  if (forward.ports.length === 0) return vars
  vars[`${prefix}HOST`] = connectHost(forward.ports[0].address)
  vars[`${prefix}PORT`] = String(forward.ports[0].local)
  for (const port of forward.ports) vars[`${prefix}PORT_${envKey(String(port.remote))}`] = String(port.local)
  return vars
}

/**
 * The environment variables of the command: `KUBE_FORWARD_HOST`, `KUBE_FORWARD_PORT`,
 * `KUBE_FORWARD_PORT_<REMOTE>` for the first forward, and `KUBE_FORWARD_<NAME>_…` for each.
 *
 * @category substitution
 * @since 0.1.0
 */
export const environment = (forwards: ReadonlyArray<ReadyForward>): Record<string, string> =>
  Object.assign(
    {},
    ...forwards.map((f) => forwardVariables(`KUBE_FORWARD_${envKey(f.name)}_`, f)),
    forwards.length > 0 ? forwardVariables("KUBE_FORWARD_", forwards[0]) : {}
  )

/**
 * A running command.
 *
 * @category models
 * @since 0.1.0
 */
export interface Running {
  readonly pid: number | undefined
  /** Whether it is still running (it has neither exited nor failed to start). */
  readonly running: () => boolean
  /**
   * Sends `signal` to the command and to every process it started that is still alive (found
   * at this moment by their parent ids, or, once they outlived it, as the members of its process
   * group started after it; and remembered). Nothing when none of them is left.
   */
  readonly kill: (signal: NodeJS.Signals) => void
  /**
   * Finds and remembers, without signalling, the processes it started that are alive now (so
   * that they are known when the run ends, even if nothing was signalled: a Ctrl-C of the
   * terminal reached them directly).
   */
  readonly track: () => void
  /** How many of the processes it started that were signalled are still alive. */
  readonly leftovers: () => number
  /** Its exit code: its own, 128 + n when signal n ended it, 126/127 when it could not be run. */
  readonly exitCode: Effect.Effect<number>
  /** Why it could not be run, when it could not (after `exitCode` completed). */
  readonly failure: () => string | undefined
}

/** How long a command may take to exit after SIGTERM when the run has to end it. */
const TERM_GRACE_MS = 5000

/** Why `command` could not be run, in words, and the shell's code for it (127 not found, else 126). */
const spawnFailure = (error: NodeJS.ErrnoException, command: string) => {
  const why = error.code === "ENOENT"
    ? "command not found (ENOENT)"
    : error.code === "EACCES"
    ? "permission denied (EACCES)"
    : `${error.message}${error.code === undefined ? "" : ` (${error.code})`}`
  return {
    code: error.code === "ENOENT" ? ExitCode.CommandNotFound : ExitCode.CommandNotExecutable,
    message: `cannot run ${command}: ${why}`
  }
}

/**
 * Signals for a process and its descendants, remembering every one found: those it started,
 * by parent id while it runs, and, once they outlived it, as the processes of its group that
 * started after it (see `Tree.outlived`).
 */
const treeKiller = (child: ChildProcess, running: () => boolean) => {
  const from = child.pid === undefined ? undefined : Tree.origin(child.pid)
  let seen: Array<Tree.Proc> = []
  const track = () => {
    // one look at the process table for all three questions
    const all = Tree.snapshot()
    const left = Tree.alive(seen, all).map((p) => p.pid)
    const roots = [...(running() && child.pid !== undefined ? [child.pid] : []), ...left]
    const found = new Map<number, Tree.Proc>()
    for (const p of [...Tree.tree(roots, all), ...(from === undefined ? [] : Tree.outlived(from, all))]) {
      if (p.pid !== child.pid) found.set(p.pid, p)
    }
    seen = [...seen.filter((p) => !found.has(p.pid)), ...found.values()]
    return [...found.values()]
  }
  return {
    track: () => {
      track()
    },
    kill: (signal: NodeJS.Signals) => {
      const found = track()
      // the command itself through Node, which knows whether it was reaped
      if (running()) child.kill(signal)
      Tree.signal(found, signal)
    },
    leftovers: () => seen.length === 0 ? 0 : Tree.alive(seen).length
  }
}

/**
 * Starts `command` (no shell; stdin, stdout and stderr are this process's, and it stays in this
 * process group, so an interactive program has the terminal) with `env` added to this process's
 * environment. It belongs to the current scope: closing the scope while it runs sends it and
 * its descendants SIGTERM, then SIGKILL after 5 seconds, and waits for its exit.
 *
 * @category running
 * @since 0.1.0
 */
export const start = (
  command: ReadonlyArray<string>,
  env: Record<string, string>
): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(command[0], command.slice(1), { stdio: "inherit", env: { ...process.env, ...env } })
      let failure: string | undefined
      let code: number | undefined
      const waiters = new Set<(code: number) => void>()
      const settle = (c: number) => {
        if (code !== undefined) return
        code = c
        for (const w of waiters) w(c)
      }
      child.once("error", (error) => {
        const f = spawnFailure(error as NodeJS.ErrnoException, command[0])
        failure = f.message
        settle(f.code)
      })
      child.once("exit", (c, signal) => settle(c ?? ExitCode.ofSignal(signal ?? "SIGKILL")))
      const isRunning = () => code === undefined && child.exitCode === null && child.signalCode === null
      const running: Running = {
        pid: child.pid,
        running: isRunning,
        ...treeKiller(child, isRunning),
        exitCode: Effect.callback<number>((resume) => {
          if (code !== undefined) return resume(Effect.succeed(code))
          const waiter = (c: number) => resume(Effect.succeed(c))
          waiters.add(waiter)
          return Effect.sync(() => waiters.delete(waiter))
        }),
        failure: () => failure
      }
      return running
    }),
    (running) => stop(running)
  )

/**
 * SIGTERM to the command and its descendants, SIGKILL after the grace period, and the exit
 * awaited; what it started and outlived it (signalled before, still alive) gets the rest of
 * the grace period, then SIGKILL.
 */
const stop = (running: Running): Effect.Effect<void> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    running.kill("SIGTERM")
    const exited = yield* running.exitCode.pipe(Effect.timeoutOption(TERM_GRACE_MS))
    if (exited._tag === "None") {
      running.kill("SIGKILL")
      yield* running.exitCode
    }
    if (running.leftovers() === 0) return
    const left = TERM_GRACE_MS - ((yield* Clock.currentTimeMillis) - start)
    // no event tells when a process that is not our child exits: look every 50 ms
    yield* Effect.sync(running.leftovers).pipe(
      Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("50 millis") }),
      Effect.timeoutOption(Math.max(0, left))
    )
    running.kill("SIGKILL")
  })
