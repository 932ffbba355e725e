/** Processes and ports: /proc readings, `ps` leak checks, bindability polls. */
import { Processes } from "@kube-forward/testkit"
import { Effect } from "effect"
import * as Fs from "node:fs"

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** VmRSS and VmHWM (peak) of one process in KiB; `undefined` when it is gone. */
export const memoryOf = (pid: number): { readonly rssKiB: number; readonly hwmKiB: number } | undefined => {
  try {
    const status = Fs.readFileSync(`/proc/${pid}/status`, "latin1")
    const rss = /VmRSS:\s+(\d+) kB/.exec(status)
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
    if (rss === null || hwm === null) return undefined
    return { rssKiB: Number(rss[1]), hwmKiB: Number(hwm[1]) }
  } catch {
    return undefined
  }
}

/** Memory of a process and all its descendants (a kubectl that is a wrapper counts with its child). */
export const treeMemory = (
  pid: number
): { readonly rssKiB: number; readonly hwmKiB: number; readonly processes: number } => {
  let rssKiB = 0
  let hwmKiB = 0
  let processes = 0
  for (const p of [pid, ...Processes.descendants(pid)]) {
    const m = memoryOf(p)
    if (m === undefined) continue
    rssKiB += m.rssKiB
    hwmKiB += m.hwmKiB
    processes++
  }
  return { rssKiB, hwmKiB, processes }
}

/** Whether `port` can be bound at `host` right now (the same test the library uses). */
export const canBind = (port: number, host = "127.0.0.1"): Promise<boolean> =>
  Effect.runPromise(Processes.canBind(port, host))

/** Polls every millisecond until `port` can be bound on every host; the milliseconds it took, or NaN on timeout. */
export const waitBindable = async (
  port: number,
  hosts: ReadonlyArray<string>,
  since: number,
  timeoutMs = 10_000
): Promise<number> => {
  while (true) {
    let all = true
    for (const host of hosts) {
      if (!(await canBind(port, host))) {
        all = false
        break
      }
    }
    const now = performance.now()
    if (all) return now - since
    if (now - since > timeoutMs) return Number.NaN
    await sleep(1)
  }
}

/** CPU time a live process has used so far, in ms (from /proc/PID/schedstat, nanosecond resolution). */
export const cpuMsOf = (pid: number): number | undefined => {
  try {
    return Number(Fs.readFileSync(`/proc/${pid}/schedstat`, "latin1").split(" ")[0]) / 1e6
  } catch {
    return undefined
  }
}

/**
 * CPU time of every thread of a live process so far, in ms (the sum of /proc/PID/task/TID/schedstat:
 * nanosecond resolution; a Go or Node process does much of its work off its main thread). Threads
 * that already exited are not counted; `undefined` when the process is gone.
 */
export const processCpuMs = (pid: number): number | undefined => {
  try {
    let ns = 0
    for (const tid of Fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(Fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ")[0])
      } catch {
        // that thread just exited
      }
    }
    return ns / 1e6
  } catch {
    return undefined
  }
}

/** {@link processCpuMs} of a process and its descendants (a kubectl that is a wrapper counts with its child). */
export const treeCpuMs = (pid: number): number | undefined => {
  const own = processCpuMs(pid)
  if (own === undefined) return undefined
  return Processes.descendants(pid).reduce((sum, p) => sum + (processCpuMs(p) ?? 0), own)
}
