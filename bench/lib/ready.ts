/**
 * Time to ready and close → port free: every contender opens a forward to the echo pod, round
 * after round, interleaved (round-robin, the starting contender rotated each round), each run
 * fully cleaned up before the next.
 */
import * as Processes from "@kube-forward/testkit/Processes"
import * as Fs from "node:fs"
import { checkConnection, type Contender, echoRoundTrip, type Opened, type Target } from "./contenders/common.ts"
import { type Bench, errorText, pods } from "./context.ts"
import { cpuMsOf, sleep, treeCpuMs, treeMemory, waitBindable } from "./proc.ts"
import type { ReadyRun } from "./results.ts"

const cpuSince = (u: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(u)
  return (d.user + d.system) / 1000
}

/** kube-forward keeps its kubectl's pid to itself: the only live port-forward of the cluster is it. */
const kubectlOf = (b: Bench, c: Contender, opened: Opened): number | undefined =>
  opened.kubectlPid ?? (c.carrier === "kubectl" ? Processes.portForwards(b.s.kubeconfigPath)[0]?.pid : undefined)

const failedRun = (c: Contender, round: number, e: unknown): ReadyRun => ({
  contender: c.id,
  round,
  ok: false,
  error: errorText(e),
  openMs: Number.NaN,
  firstReplyMs: Number.NaN,
  closeReturnMs: Number.NaN,
  freeMs: Number.NaN,
  phases: {},
  appCpuOpenMs: Number.NaN,
  appCpuReplyMs: Number.NaN
})

/** One forward: open, (check), one echo round trip, close, wait until the port is free. */
export const readyRun = async (
  b: Bench,
  c: Contender,
  target: Target,
  round: number,
  instrumented: boolean
): Promise<ReadyRun> => {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  let opened: Opened | undefined
  try {
    opened = await c.open(target)
    const tOpen = performance.now()
    const appCpuOpenMs = cpuSince(c0)
    let checkMs: number | undefined
    if (instrumented) {
      const s = performance.now()
      await checkConnection(opened.port)
      checkMs = performance.now() - s
    }
    const tCheck = performance.now()
    await echoRoundTrip(opened.port, opened.hosts[0])
    const tReply = performance.now()
    const appCpuReplyMs = cpuSince(c0)
    const pid = kubectlOf(b, c, opened)
    const kubectlCpuMs = pid === undefined ? undefined : treeCpuMs(pid)
    // without the separate check the reply came right after open; with it, leave the check out
    const firstReplyMs = tOpen - t0 + (tReply - tCheck)
    const kubectlRssKiB = pid === undefined ? undefined : treeMemory(pid).rssKiB
    const tc0 = performance.now()
    await opened.close()
    const tc1 = performance.now()
    const freeMs = c.carrier === "none" ? Number.NaN : await waitBindable(opened.port, opened.hosts, tc0)
    await opened.exited()
    const phases: Record<string, number> = {}
    const cpu0 = (c0.user + c0.system) / 1000
    for (const [k, v] of Object.entries(opened.marks)) {
      phases[k] = v - (k.startsWith("cpu:") ? cpu0 : k.startsWith("kill") ? tc0 : t0)
    }
    if (c.carrier !== "none" && Number.isNaN(freeMs)) {
      throw new Error(`port ${opened.port} not bindable 10 s after close`)
    }
    return {
      contender: c.id,
      round,
      ok: true,
      openMs: tOpen - t0,
      firstReplyMs,
      closeReturnMs: tc1 - tc0,
      freeMs,
      phases,
      appCpuOpenMs,
      appCpuReplyMs,
      ...(kubectlCpuMs === undefined ? {} : { kubectlCpuMs }),
      ...(checkMs === undefined ? {} : { checkMs }),
      ...(kubectlRssKiB === undefined ? {} : { kubectlRssKiB })
    }
  } catch (e) {
    if (opened !== undefined) {
      await opened.close().catch(() => {})
      await opened.exited().catch(() => {})
    }
    return failedRun(c, round, e)
  }
}

/** kube-forward's watchdog: a child `/bin/sh -c <script>` of `pid` (its script tracks `groups`). */
export const findWatchdogs = (pid: number = process.pid): Array<number> =>
  Processes.descendants(pid).filter((p) => {
    try {
      const cmd = Fs.readFileSync(`/proc/${p}/cmdline`, "latin1").split("\0")
      return cmd[1] === "-c" && cmd[2]?.includes("groups") === true
    } catch {
      return false
    }
  })

export interface ReadyResults {
  readonly ready: Array<ReadyRun>
  readonly cold: Array<ReadyRun>
  readonly watchdogCpuPerForwardMs: number | undefined
}

/**
 * Warm-up rounds (the first kept as "cold": each contender's first forward in this process), then
 * the measured rounds. `instrumented` is the contender whose check connection is also timed alone.
 */
export const readyRounds = async (
  b: Bench,
  contenders: ReadonlyArray<Contender>,
  instrumented: Contender | undefined,
  onWarm: () => void
): Promise<ReadyResults> => {
  const cold: Array<ReadyRun> = []
  for (let w = 0; w < b.settings.warmups; w++) {
    for (const c of contenders) {
      const r = await readyRun(b, c, pods.echo, -1 - w, c === instrumented)
      if (!r.ok) throw new Error(`warm-up of ${c.id} failed: ${r.error}`)
      if (w === 0) cold.push(r)
    }
  }
  onWarm()
  // kube-forward's watchdogs (one per kubectl layer): their CPU per kubectl-carried forward
  const watchdogs = findWatchdogs()
  const watchdogCpu = () => watchdogs.reduce((sum, pid) => sum + (cpuMsOf(pid) ?? 0), 0)
  const watchdogCpu0 = watchdogCpu()
  const ready: Array<ReadyRun> = []
  for (let round = 0; round < b.settings.readyRuns; round++) {
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length])
    for (const c of order) {
      const r = await readyRun(b, c, pods.echo, round, c === instrumented)
      if (!r.ok) b.errors.push(`ready run ${round} of ${c.id}: ${r.error}`)
      ready.push(r)
      await sleep(10)
    }
    if (round % 10 === 9 || round === b.settings.readyRuns - 1) {
      b.log(`ready: ${round + 1}/${b.settings.readyRuns} rounds`)
    }
  }
  const kubectlForwards = contenders.filter((c) => c.carrier === "kubectl" && c.id.startsWith("kube-forward")).length
  const watchdogCpuPerForwardMs = watchdogs.length === 0 || kubectlForwards === 0
    ? undefined
    : (watchdogCpu() - watchdogCpu0) / (kubectlForwards * b.settings.readyRuns)
  const stray = Processes.portForwards(b.s.kubeconfigPath)
  if (stray.length > 0) {
    b.errors.push(`after the ready runs, ${stray.length} kubectl still alive: ${stray.map((p) => p.pid).join(", ")}`)
  }
  return { ready, cold, watchdogCpuPerForwardMs }
}
