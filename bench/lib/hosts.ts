/**
 * Memory per open forward and N forwards at once, each in a fresh application process of its own
 * (bench/host.ts) that loads one contender only: its RSS is then that contender's, and the fixed
 * cost of loading the library can be told apart from the cost of each forward. kubectl processes
 * (and kube-forward's watchdog) are measured from here, from /proc.
 */
import * as Processes from "@kube-forward/testkit/Processes"
import * as Path from "node:path"
import { type Bench, type Counters, errorText, pods } from "./context.ts"
import { type Helper, startHelper } from "./ipc.ts"
import { canBind, sleep, treeMemory } from "./proc.ts"
import { findWatchdogs } from "./ready.ts"
import type { HostMemory, MemoryResult, ScaleResult } from "./results.ts"

/** What bench/host.ts can hold. */
export type HostKind = "native-tunnel" | "native-spdy" | "kube-forward" | "kubectl" | "client-node"

const startHost = async (b: Bench): Promise<Helper> => {
  const host = await startHelper(Path.join(b.here, "host.ts"), [], [...b.execArgv, "--expose-gc"])
  b.track(host.pid)
  return host
}

const load = async (b: Bench, host: Helper, kind: HostKind) =>
  host.call<{ readonly loadMs: number; readonly memory: HostMemory }>("load", {
    kind,
    settings: b.s,
    target: pods.echo
  })

/** Live processes the host left: kubectl port-forwards of the bench cluster, and any child but kube-forward's watchdog. */
const leftoverProcesses = (b: Bench, host: Helper): number => {
  const watchdogs = new Set(findWatchdogs(host.pid))
  const children = Processes.descendants(host.pid).filter((p) => !watchdogs.has(p))
  const kubectl = Processes.portForwards(b.s.kubeconfigPath).map((p) => p.pid)
  return new Set([...children, ...kubectl]).size
}

const unbindable = async (ports: ReadonlyArray<number>): Promise<number> => {
  let n = 0
  for (const port of ports) if (!(await canBind(port))) n++
  return n
}

const kubectlRss = (b: Bench): Array<number> =>
  Processes.portForwards(b.s.kubeconfigPath).map((p) => treeMemory(p.pid).rssKiB)

/** `n` forwards opened one after another (each carrying one echo round trip), then closed. */
const memoryPhase = async (
  b: Bench,
  host: Helper,
  kind: HostKind,
  n: number,
  bare: HostMemory,
  loaded: { readonly loadMs: number; readonly memory: HostMemory }
): Promise<MemoryResult> => {
  const open = await host.call<{ readonly memory: HostMemory }>("openSeq", { n, target: pods.echo }, 600_000)
  const kubectl = kubectlRss(b)
  const helperRssKiB = findWatchdogs(host.pid).reduce((sum, pid) => sum + treeMemory(pid).rssKiB, 0)
  const closed = await host.call<{ readonly memory: HostMemory }>("closeAll", undefined, 600_000)
  b.log(
    `memory ${kind}: ${((open.memory.rssKiB - loaded.memory.rssKiB) / n).toFixed(0)} KiB RSS per forward in the process`
  )
  return {
    contender: kind,
    n,
    ok: true,
    bare,
    loaded: loaded.memory,
    loadMs: loaded.loadMs,
    open: open.memory,
    closed: closed.memory,
    kubectlRssKiB: kubectl,
    helperRssKiB
  }
}

interface OpenAll {
  readonly ms: number
  readonly failed: number
  readonly firstError?: string
  readonly ports: ReadonlyArray<number>
  readonly memory: HostMemory
}

interface RoundTrips {
  readonly ok: number
  readonly failed: number
  readonly firstError?: string
  readonly ms: number
}

const failedScale = (kind: HostKind, n: number, e: unknown, strategy?: "sequential" | "parallel"): ScaleResult => ({
  contender: kind,
  ...(strategy === undefined ? {} : { strategy }),
  n,
  ok: false,
  error: errorText(e),
  openAllMs: Number.NaN,
  failedToOpen: Number.NaN,
  roundTripsOk: Number.NaN,
  roundTripsMs: Number.NaN,
  closeAllMs: Number.NaN,
  rssLoadedKiB: Number.NaN,
  rssOpenKiB: Number.NaN,
  kubectlRssKiB: Number.NaN,
  leftoverProcessesAtClose: Number.NaN,
  leftoverProcessesAfter1s: Number.NaN,
  unbindablePortsAtClose: Number.NaN,
  unbindablePortsAfter1s: Number.NaN,
  serverSessionsAtClose: Number.NaN,
  serverSessionsAfter1s: Number.NaN
})

/** `n` forwards opened at once, one echo round trip through each, all closed at once; then what is left. */
const scalePhase = async (
  b: Bench,
  host: Helper,
  kind: HostKind,
  n: number,
  strategy: "sequential" | "parallel" | undefined
): Promise<ScaleResult> => {
  const before = await host.call<HostMemory>("memory")
  const open = await host.call<OpenAll>("openAll", { n, target: pods.echo, strategy }, 600_000)
  if (open.failed > 0) b.errors.push(`scale ${kind}: ${open.failed}/${n} failed to open: ${open.firstError}`)
  const kubectl = kubectlRss(b).reduce((a, x) => a + x, 0)
  const trips = await host.call<RoundTrips>("roundTrips", { concurrency: 50 }, 600_000)
  if (trips.failed > 0) b.errors.push(`scale ${kind}: ${trips.failed} echo round trips failed: ${trips.firstError}`)
  const closed = await host.call<{ readonly ms: number }>("closeAll", undefined, 600_000)
  const sessions = async () => (await b.server.call<Counters>("counters")).activeSessions
  const at = { procs: leftoverProcesses(b, host), ports: await unbindable(open.ports), sessions: await sessions() }
  await sleep(1000)
  const after = { procs: leftoverProcesses(b, host), ports: await unbindable(open.ports), sessions: await sessions() }
  const label = `${kind}${strategy === undefined ? "" : ` (${strategy} scope)`}`
  b.log(
    `scale ${label}: ${n} open in ${open.ms.toFixed(0)} ms, closed in ${
      closed.ms.toFixed(0)
    } ms, leftovers ${at.procs}/${at.ports}/${at.sessions}`
  )
  return {
    contender: kind,
    ...(strategy === undefined ? {} : { strategy }),
    n,
    ok: open.failed === 0 && trips.failed === 0,
    openAllMs: open.ms,
    failedToOpen: open.failed,
    roundTripsOk: trips.ok,
    roundTripsMs: trips.ms,
    closeAllMs: closed.ms,
    rssLoadedKiB: before.rssKiB,
    rssOpenKiB: open.memory.rssKiB,
    kubectlRssKiB: kubectl,
    leftoverProcessesAtClose: at.procs,
    leftoverProcessesAfter1s: after.procs,
    unbindablePortsAtClose: at.ports,
    unbindablePortsAfter1s: after.ports,
    serverSessionsAtClose: at.sessions,
    serverSessionsAfter1s: after.sessions
  }
}

/** What one host process measures: memory with `memoryN` forwards, then each of `scale` (N at once). */
export interface HostPlan {
  readonly kind: HostKind
  readonly memoryN: number | undefined
  readonly scale: ReadonlyArray<{ readonly n: number; readonly strategy?: "sequential" | "parallel" }>
}

/** Runs `plan` in a fresh host process: the memory phase first (before anything raised the RSS), then N at once. */
export const runHost = async (
  b: Bench,
  plan: HostPlan
): Promise<{ readonly memory: Array<MemoryResult>; readonly scale: Array<ScaleResult> }> => {
  const memory: Array<MemoryResult> = []
  const scale: Array<ScaleResult> = []
  let host: Helper | undefined
  let phase = "start"
  try {
    host = await startHost(b)
    const bare = (host.hello as { readonly bare: HostMemory }).bare
    phase = "load"
    const loaded = await load(b, host, plan.kind)
    if (plan.memoryN !== undefined) {
      phase = "memory"
      memory.push(await memoryPhase(b, host, plan.kind, plan.memoryN, bare, loaded))
    }
    for (const s of plan.scale) {
      phase = "scale"
      scale.push(await scalePhase(b, host, plan.kind, s.n, s.strategy))
    }
  } catch (e) {
    b.errors.push(`${phase} ${plan.kind}: ${errorText(e)}`)
    if (phase !== "scale" && plan.memoryN !== undefined && memory.length === 0) {
      memory.push({
        contender: plan.kind,
        n: plan.memoryN,
        ok: false,
        error: errorText(e),
        kubectlRssKiB: [],
        helperRssKiB: 0
      })
    }
    for (const s of plan.scale.slice(scale.length)) scale.push(failedScale(plan.kind, s.n, e, s.strategy))
  } finally {
    await host?.stop()
  }
  return { memory, scale }
}
