/** Processes and ports: /proc readings, `ps` leak checks, bindability polls. */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Stat {
  readonly state: string
  readonly ppid: number
}

const readStat = (pid: number): Stat | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0], ppid: Number(fields[1]) }
  } catch {
    return undefined
  }
}

/** A live process: exists and is neither a zombie nor dead. */
export const isAlive = (pid: number): boolean => {
  const s = readStat(pid)
  return s !== undefined && s.state !== "Z" && s.state !== "X"
}

/** Every live descendant of `pid` (children, grandchildren, …). */
export const descendants = (pid: number): Array<number> => {
  const byParent = new Map<number, Array<number>>()
  for (const entry of Fs.readdirSync("/proc")) {
    const child = Number(entry)
    if (!Number.isInteger(child)) continue
    const s = readStat(child)
    if (s === undefined || s.state === "Z" || s.state === "X") continue
    const list = byParent.get(s.ppid) ?? []
    list.push(child)
    byParent.set(s.ppid, list)
  }
  const out: Array<number> = []
  const walk = (p: number) => {
    for (const c of byParent.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

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
export const treeMemory = (pid: number): { readonly rssKiB: number; readonly hwmKiB: number; readonly processes: number } => {
  let rssKiB = 0
  let hwmKiB = 0
  let processes = 0
  for (const p of [pid, ...descendants(pid)]) {
    const m = memoryOf(p)
    if (m === undefined) continue
    rssKiB += m.rssKiB
    hwmKiB += m.hwmKiB
    processes++
  }
  return { rssKiB, hwmKiB, processes }
}

export interface PsLine {
  readonly pid: number
  readonly stat: string
  readonly args: string
}

/** Live (non-zombie) processes whose command line contains every one of `needles` (via `ps`). */
export const psMatching = (...needles: ReadonlyArray<string>): Array<PsLine> =>
  execFileSync("ps", ["-eo", "pid=,stat=,args="], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => {
      const m = /^(\d+)\s+(\S+)\s+(.*)$/.exec(l)
      return m === null ? undefined : { pid: Number(m[1]), stat: m[2], args: m[3] }
    })
    .filter((l): l is PsLine => l !== undefined)
    .filter((l) => l.pid !== process.pid && !l.stat.startsWith("Z") && needles.every((n) => l.args.includes(n)))

/** Live kubectl port-forward processes talking to the bench cluster (its kubeconfig is on their command line). */
export const livePortForwards = (kubeconfigPath: string): Array<PsLine> =>
  psMatching("port-forward", kubeconfigPath)

/** Whether `port` can be bound at `host` right now (the same test the library uses). */
export const canBind = (port: number, host = "127.0.0.1"): Promise<boolean> =>
  new Promise((resolve) => {
    const server = Net.createServer()
    server.once("error", () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)))
  })

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
