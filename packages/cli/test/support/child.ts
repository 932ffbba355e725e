/**
 * Runs a command as a child process and follows it: its output as lines, a wait for a line or
 * for its exit (both bounded), SIGKILL at the end of the scope if it is still running.
 *
 * A small local helper until the shared testkit module for this lands; the suites only use
 * `start`, `waitForLine`, `exit`, `lines` and `stderr`.
 */
import { type Duration, Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"

/** The `kube-forward` binary of this checkout. */
export const bin = Path.join(import.meta.dirname, "..", "..", "bin", "kube-forward.js")

/** How a child ended. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A running child. */
export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  /** Every complete stdout line so far. */
  readonly lines: () => ReadonlyArray<string>
  /** Everything printed on stderr so far. */
  readonly stderr: () => string
  /** The first stdout line (already printed or to come) that matches; fails if the child exits first or after `within`. */
  readonly waitForLine: (match: RegExp, within?: Duration.Input) => Effect.Effect<RegExpExecArray, Error>
  /** Waits for the exit (bounded by `within`, default 30 s). */
  readonly exit: (within?: Duration.Input) => Effect.Effect<Exit, Error>
  readonly kill: (signal: NodeJS.Signals) => void
}

const bounded = <A>(effect: Effect.Effect<A, Error>, within: Duration.Input, what: () => string) =>
  effect.pipe(Effect.timeoutOrElse({
    duration: within,
    orElse: () => Effect.fail(new Error(`${what()} not seen within ${String(within)}`))
  }))

/** Starts `command args` with `env` added to this process's environment. */
export const start = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}
): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(command, args, {
        env: { ...process.env, ...options.env },
        cwd: options.cwd,
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<string> = []
      let partial = ""
      let err = ""
      let exit: Exit | undefined
      const listeners = new Set<() => void>()
      const notify = () => listeners.forEach((l) => l())
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        const parts = (partial + d).split("\n")
        partial = parts.pop()!
        lines.push(...parts)
        notify()
      })
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d))
      child.once("exit", (code, signal) => {
        exit = { code, signal }
        notify()
      })
      const describe = () =>
        `(stdout: ${JSON.stringify(lines.slice(-20))}, stderr: ${JSON.stringify(err.slice(-2000))})`
      const waitFor = <A>(check: () => A | undefined, what: string) =>
        Effect.callback<A, Error>((resume) => {
          const listener = () => {
            const found = check()
            if (found !== undefined) resume(Effect.succeed(found))
            else if (exit !== undefined) {
              resume(Effect.fail(new Error(`exited (${JSON.stringify(exit)}) before ${what} ${describe()}`)))
            }
          }
          listeners.add(listener)
          listener()
          return Effect.sync(() => listeners.delete(listener))
        })
      const handle: Child = {
        process: child,
        pid: child.pid!,
        lines: () => lines,
        stderr: () => err,
        waitForLine: (match, within: Duration.Input = "30 seconds") => {
          const find = () => lines.map((l) => match.exec(l)).find((m) => m !== null) ?? undefined
          return bounded(waitFor(find, `a line matching ${match}`), within, () =>
            `a line matching ${match} ${describe()}`)
        },
        exit: (within: Duration.Input = "30 seconds") =>
          bounded(
            Effect.callback<Exit>((resume) => {
              const listener = () =>
                exit !== undefined && resume(Effect.succeed(exit))
              listeners.add(listener)
              listener()
              return Effect.sync(() => listeners.delete(listener))
            }),
            within,
            () => `the exit ${describe()}`
          ),
        kill: (signal) => {
          if (exit === undefined) child.kill(signal)
        }
      }
      return handle
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** Starts the `kube-forward` binary with `args`. */
export const kubeForward = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}
) => start(process.execPath, [bin, ...args], options)
