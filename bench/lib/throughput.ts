/**
 * One connection's throughput through each forward, each way, checked end to end (byte count,
 * CRC-32, the fake server's counters), with the CPU every process spent on it.
 */
import * as Processes from "@kube-forward/testkit/Processes"
import type { Contender, Opened, Target } from "./contenders/common.ts"
import { type Bench, type Counters, errorText, MiB, pods } from "./context.ts"
import { processCpuMs, treeCpuMs, treeMemory } from "./proc.ts"
import type { ThroughputRow, ThroughputRun, TransferCpu } from "./results.ts"

/** A row of the table and what drives it (`undefined`: the pods reached directly). */
export interface Row extends ThroughputRow {
  readonly driver: Contender | undefined
  /** Downloads from the testkit's own `Backend.source` instead of the bench's source. */
  readonly tkSource?: boolean
}

interface Transfer {
  readonly ok: boolean
  readonly bytes: number
  readonly ms: number
  readonly crcOk: boolean
  readonly error?: string
}

const targetOf = (row: Row, direction: "upload" | "download"): Target =>
  row.tkSource === true ? pods.tkSource : direction === "upload" ? pods.sink : pods.source

const kubectlPidOf = (b: Bench, row: Row, o: Opened | undefined): number | undefined => {
  if (o === undefined || row.driver?.carrier !== "kubectl") return undefined
  if (o.kubectlPid !== undefined) return o.kubectlPid
  const live = Processes.portForwards(b.s.kubeconfigPath)
  return live.length === 1 ? live[0].pid : undefined
}

/** CPU counters of every process that can be on the path, read before and after a transfer. */
const cpuReader = (b: Bench, kubectlPid: number | undefined) => {
  const read = () => {
    const u = process.cpuUsage()
    return {
      bench: (u.user + u.system) / 1000,
      kubectl: kubectlPid === undefined ? undefined : treeCpuMs(kubectlPid),
      server: processCpuMs(b.server.pid) ?? Number.NaN,
      loadgen: processCpuMs(b.loadgen.pid) ?? Number.NaN
    }
  }
  const start = read()
  return (): TransferCpu => {
    const end = read()
    return {
      benchMs: end.bench - start.bench,
      ...(start.kubectl === undefined || end.kubectl === undefined ? {} : { kubectlMs: end.kubectl - start.kubectl }),
      serverMs: end.server - start.server,
      loadgenMs: end.loadgen - start.loadgen
    }
  }
}

const countersAgree = (b: Bench, row: Row, direction: "upload" | "download", c: Counters): boolean => {
  const minTo = direction === "upload" ? b.settings.bytes + 16 : row.tkSource === true ? 0 : 16
  const minFrom = direction === "upload" ? 16 : b.settings.bytes
  if (row.expectSession === null) return c.bytesToPod === 0 && c.bytesFromPod === 0
  const sessions = row.expectSession
  // a verifying contender's check connection is on the same session: one session either way
  return c.sessions[sessions] === 1 && Object.entries(c.sessions).every(([k, v]) => k === sessions || v === 0) &&
    c.bytesToPod >= minTo && c.bytesFromPod >= minFrom
}

const failedRun = (row: Row, direction: "upload" | "download", rep: number, e: unknown): ThroughputRun => ({
  row: row.id,
  rep,
  direction,
  ok: false,
  bytes: 0,
  ms: Number.NaN,
  mibps: Number.NaN,
  crcOk: false,
  error: errorText(e),
  countersOk: false
})

/** Where the load generator connects: a fresh forward of the row's contender, or the pod's service directly. */
const endpoint = async (b: Bench, row: Row, direction: "upload" | "download") => {
  if (row.driver === undefined) {
    const direct = direction === "upload" ? b.hello.sink : b.hello.source
    return { host: direct.host, port: direct.port, opened: undefined }
  }
  const opened = await row.driver.open(targetOf(row, direction))
  return { host: opened.hosts[0], port: opened.port, opened }
}

/** One measured transfer through a fresh forward. */
const measure = async (b: Bench, row: Row, direction: "upload" | "download", rep: number): Promise<ThroughputRun> => {
  let opened: Opened | undefined
  let peak = 0
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 20)
  try {
    await b.server.call("setTransport", row.transport)
    await b.server.call("resetCounters")
    const to = await endpoint(b, row, direction)
    opened = to.opened
    const kubectlPid = kubectlPidOf(b, row, opened)
    peak = process.memoryUsage.rss()
    const base = peak
    const cpu = cpuReader(b, kubectlPid)
    const op = row.tkSource === true ? "stream" : direction
    const t = await b.loadgen.call<Transfer>(op, { host: to.host, port: to.port, bytes: b.settings.bytes })
    const cpuUsed = cpu()
    const hwm = kubectlPid === undefined ? undefined : treeMemory(kubectlPid).hwmKiB
    const counters = await b.server.call<Counters>("counters")
    const countersOk = countersAgree(b, row, direction, counters)
    const run: ThroughputRun = {
      row: row.id,
      rep,
      direction,
      ok: t.ok && countersOk,
      bytes: t.bytes,
      ms: t.ms,
      mibps: t.bytes / MiB / (t.ms / 1000),
      crcOk: t.crcOk,
      ...(t.error === undefined ? {} : { error: t.error }),
      countersOk,
      sessions: counters.sessions,
      bytesToPod: counters.bytesToPod,
      bytesFromPod: counters.bytesFromPod,
      cpu: cpuUsed,
      ...(hwm === undefined ? {} : { kubectlHwmKiB: hwm }),
      ...(row.driver?.carrier === "in-process" ? { hostRssPeakKiB: Math.round((peak - base) / 1024) } : {})
    }
    if (!run.ok) {
      b.errors.push(
        `throughput ${row.id} ${direction} rep ${rep}: ${t.error ?? ""} crc ${t.crcOk} counters ${
          JSON.stringify(counters)
        }`
      )
    }
    b.log(`throughput ${row.id} ${direction}: ${run.mibps.toFixed(0)} MiB/s ${run.ok ? "verified" : "FAILED"}`)
    return run
  } catch (e) {
    b.errors.push(`throughput ${row.id} ${direction} rep ${rep}: ${errorText(e)}`)
    return failedRun(row, direction, rep, e)
  } finally {
    clearInterval(sampler)
    if (opened !== undefined) {
      await opened.close().catch(() => {})
      await opened.exited().catch(() => {})
    }
  }
}

/** One small transfer per row and direction first (JIT of the fake server's transports, kubectl's first stream). */
const warmUp = async (b: Bench, rows: ReadonlyArray<Row>) => {
  const bytes = Math.min(b.settings.bytes, b.quick ? 2 * MiB : 8 * MiB)
  for (const row of rows) {
    if (row.tkSource === true) continue
    await b.server.call("setTransport", row.transport)
    for (const direction of row.directions) {
      const direct = direction === "upload" ? b.hello.sink : b.hello.source
      const o = row.driver === undefined ? undefined : await row.driver.open(targetOf(row, direction))
      try {
        const t = await b.loadgen.call<Transfer>(direction, { host: direct.host, port: o?.port ?? direct.port, bytes })
        if (!t.ok) b.errors.push(`throughput warm-up ${row.id} ${direction}: ${t.error ?? "not verified"}`)
      } finally {
        if (o !== undefined) {
          await o.close()
          await o.exited()
        }
      }
    }
  }
}

/** Every row, rep after rep, the rows' order rotated each rep. */
export const runThroughput = async (b: Bench, rows: ReadonlyArray<Row>): Promise<Array<ThroughputRun>> => {
  await warmUp(b, rows)
  b.log("throughput warm-up done")
  const runs: Array<ThroughputRun> = []
  for (let rep = 0; rep < b.settings.reps; rep++) {
    const order = rows.map((_, i) => rows[(i + rep) % rows.length])
    for (const row of order) {
      for (const direction of row.directions) runs.push(await measure(b, row, direction, rep))
    }
  }
  await b.server.call("setTransport", "tunnel")
  return runs
}
