/**
 * Leak checks for tests: which processes are alive, which kubectl port-forwards are still
 * running, whether a port can be bound again.
 *
 * "Alive" means running, not a zombie: a process that exited but was not reaped yet (in a
 * container whose init reaps slowly, a reparented child can stay a zombie for a while) holds
 * no ports and no files, so it does not count as a leftover. Reads `/proc` and `ps`
 * (Linux, and `ps` on other Unixes).
 *
 * @example
 * ```ts
 * import { Processes } from "@kube-forward/testkit"
 *
 * // after the scope of the forwards closed:
 * assert.deepStrictEqual(Processes.portForwards(cluster.kubeconfigPath), [])
 * assert.isTrue(yield* Processes.canBind(fwd.localPort))
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"

/**
 * One process as `ps` shows it.
 *
 * @category models
 * @since 0.1.0
 */
export interface ProcessInfo {
  readonly pid: number
  readonly ppid: number
  readonly pgid: number
  /** `ps`'s STAT column (`Z…` for a zombie). */
  readonly stat: string
  /** The command line. */
  readonly args: string
}

const stateOf = (pid: number): { readonly state: string; readonly ppid: number; readonly pgid: number } | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0], ppid: Number(fields[1]), pgid: Number(fields[2]) }
  } catch {
    return undefined
  }
}

const isLiveState = (state: string): boolean => state !== "Z" && state !== "X" && !state.startsWith("Z")

/**
 * Whether `pid` is a live process (exists and is not a zombie).
 *
 * @category checks
 * @since 0.1.0
 */
export const isAlive = (pid: number): boolean => {
  const s = stateOf(pid)
  if (s !== undefined) return isLiveState(s.state)
  if (process.platform === "linux") return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Every process, as `ps -eo pid,ppid,pgid,stat,args` lists it (zombies included; see
 * {@link live}).
 *
 * @category listing
 * @since 0.1.0
 */
export const list = (): Array<ProcessInfo> =>
  execFileSync("ps", ["-eo", "pid=,ppid=,pgid=,stat=,args="], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), stat: m[4], args: m[5] }))

/**
 * The live processes (no zombies) whose command line contains every one of `needles`,
 * this process excluded.
 *
 * @category listing
 * @since 0.1.0
 */
export const live = (...needles: ReadonlyArray<string>): Array<ProcessInfo> =>
  list().filter((p) =>
    p.pid !== process.pid && isLiveState(p.stat) && needles.every((needle) => p.args.includes(needle))
  )

/**
 * The live `kubectl port-forward` processes whose command line contains `marker` (for
 * example the fake cluster's kubeconfig path, when it is passed as `--kubeconfig=`).
 *
 * @category listing
 * @since 0.1.0
 */
export const portForwards = (marker: string): Array<ProcessInfo> => live("port-forward", marker)

/**
 * The live members of process group `pgid` (a kubectl started in its own group, and whatever
 * it started).
 *
 * @category listing
 * @since 0.1.0
 */
export const group = (pgid: number): Array<ProcessInfo> => list().filter((p) => p.pgid === pgid && isLiveState(p.stat))

/**
 * The live descendants of `pid`: children, grandchildren, and so on.
 *
 * @category listing
 * @since 0.1.0
 */
export const descendants = (pid: number): Array<number> => {
  const byParent = new Map<number, Array<number>>()
  for (const p of list()) {
    if (!isLiveState(p.stat)) continue
    const children = byParent.get(p.ppid) ?? []
    children.push(p.pid)
    byParent.set(p.ppid, children)
  }
  const out: Array<number> = []
  const walk = (parent: number) => {
    for (const child of byParent.get(parent) ?? []) {
      out.push(child)
      walk(child)
    }
  }
  walk(pid)
  return out
}

/**
 * Whether `port` can be bound at `host` right now (exclusively, then released at once): the
 * check that a closed forward really gave its port back.
 *
 * @category checks
 * @since 0.1.0
 */
export const canBind = (port: number, host = "127.0.0.1"): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const server = Net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resume(Effect.succeed(true)))
    })
  })

/**
 * Waits for processes that are already on their way out (a kill was sent, their connections
 * closed) to finish exiting, and answers which of them are still alive after `within` (default
 * 500 ms). There is no event for the exit of a process that is not our child, so this looks
 * at `/proc` every 5 ms; use it after the event that says the processes are ending, not
 * instead of one.
 *
 * @category checks
 * @since 0.1.0
 */
export const awaitExit = (
  pids: ReadonlyArray<number>,
  options: { readonly within?: Duration.Input } = {}
): Effect.Effect<Array<number>> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(options.within ?? 500))
    while (pids.some(isAlive) && Date.now() < deadline) yield* Effect.sleep("5 millis")
    return pids.filter(isAlive)
  })
