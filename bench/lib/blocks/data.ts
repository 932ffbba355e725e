/** The blocks about where time goes, throughput and CPU, concurrency, memory, scale, and the run's problems. */
import { MiB } from "../context.ts"
import type { ReadyRun, ThroughputRun } from "../results.ts"
import { fmt, ratio, summarize } from "../stats.ts"
import * as Svg from "../svg.ts"
import { mib, table, View } from "../view.ts"
import { CN, COLORS, KF, KFI, NS, NT, RAW, XEC } from "./ids.ts"

// ---------------------------------------------------------------------------------------------
// where kube-forward's (kubectl carrier) time goes, and CPU per forward

export const phases = (v: View): string => {
  const of = (id: string) => v.runs(id)
  const med = (xs: ReadonlyArray<number>) => summarize(xs).median
  const d = (id: string, a: string, b: string) => med(of(id).map((x) => x.phases[b] - x.phases[a]))
  const preSpawn = v.ready(KFI, (x) => x.phases.spawnStart).median
  const kfSpawn = d(KFI, "spawnStart", "spawnEnd")
  const rawSpawn = d(RAW, "spawnStart", "spawnEnd")
  const kfToLine = d(KFI, "spawnEnd", "firstLine")
  const rawToLine = d(RAW, "spawnEnd", "firstLine")
  const kfVerify = med(of(KFI).map((x) => x.openMs - x.phases.firstLine))
  const rawRt = med(of(RAW).map((x) => x.firstReplyMs - x.openMs))
  const rawLineToOpen = med(of(RAW).map((x) => x.openMs - x.phases.firstLine))
  const cpuWait = (id: string) => d(id, "cpu:spawnEnd", "cpu:firstLine")
  const cpuSpawn = (id: string) => v.ready(id, (x) => x.phases["cpu:spawnEnd"]).median
  const total = v.ready(KFI, (x) => x.openMs).median
  const raw = v.ready(RAW, (x) => x.firstReplyMs).median
  const row = (what: string, a: number, b: number | string, digits = 2) => [
    what,
    fmt(a, digits),
    typeof b === "string" ? b : fmt(b, digits),
    typeof b === "string" ? "" : fmt(a - b, digits)
  ]
  return table(["phase", "kube-forward ms", "raw kubectl ms", "difference ms"], [
    row("call → kubectl spawn starts (decode spec, allocator, scopes, runtime)", preSpawn, 0),
    row("spawn call (execa / `child_process.spawn`)", kfSpawn, rawSpawn),
    row("spawn returned → first `Forwarding from` line read", kfToLine, rawToLine, 1),
    row("  application-process CPU during that wait", cpuWait(KFI), cpuWait(RAW)),
    row("  application-process CPU from the call to spawn returned", cpuSpawn(KFI), cpuSpawn(RAW)),
    row(
      "line → ready (kube-forward: check connection + bookkeeping; raw: 1 echo round trip)",
      kfVerify,
      rawRt + rawLineToOpen
    ),
    row(
      "  of which: a check connection on its own (timed after ready)",
      v.ready(KFI, (x) => x.checkMs).median,
      `${fmt(rawRt, 2)} (echo RT)`
    ),
    row("**total**", total, raw, 1),
    row("close call → kill finalizer starts", v.ready(KFI, (x) => x.phases.killStart).median, 0),
    row("close call → close returned", v.ready(KFI, (x) => x.closeReturnMs).median, "0 (kill is async)"),
    row("close call → port bindable", v.ready(KFI, (x) => x.freeMs).median, v.ready(RAW, (x) => x.freeMs).median)
  ])
}

export const readyCpu = (v: View): string => {
  const ids = [NT, NS, KF, v.abId, RAW, XEC, CN].filter((id): id is string => id !== undefined && v.runs(id).length > 0)
  const appCpu = (id: string) => {
    const verifies = v.r.contenders.find((c) => c.id === id)?.verifies ?? false
    return v.ready(id, (x: ReadyRun) => (verifies ? x.appCpuOpenMs : x.appCpuReplyMs)).median
  }
  const rows = ids.map((id) => {
    const app = appCpu(id)
    const kubectl = v.ready(id, (x) => x.kubectlCpuMs)
    return [
      id,
      fmt(app, 2),
      kubectl.n > 0 ? fmt(kubectl.median, 1) : "– (none)",
      fmt(app + (kubectl.n > 0 ? kubectl.median : 0), 1)
    ]
  })
  return [
    table([
      "contender",
      "application process CPU, call → ready ms (verifying: `make` returned; others: first echo reply)",
      "kubectl process CPU, exec → first echo reply ms (all threads)",
      "total ms"
    ], rows),
    "",
    v.r.watchdogCpuPerForwardMs === undefined
      ? ""
      : `kube-forward's watchdog process (kubectl carrier only): ${
        fmt(v.r.watchdogCpuPerForwardMs, 2)
      } ms CPU per forward opened and closed.`
  ].join("\n").trim()
}

// ---------------------------------------------------------------------------------------------
// throughput and CPU per MiB

const verified = (runs: ReadonlyArray<ThroughputRun>) =>
  runs.length === 0
    ? "–"
    : runs.every((x) => x.ok)
    ? `✓ ${runs.length}/${runs.length}`
    : `**✗ ${runs.filter((x) => x.ok).length}/${runs.length}**`

export const throughput = (v: View, charts: Record<string, string>): string => {
  const direct = { up: v.mibps("direct", "upload").median, down: v.mibps("direct", "download").median }
  const rows = v.r.throughputRows.map((row) => {
    const up = v.mibps(row.id, "upload")
    const down = v.mibps(row.id, "download")
    const runs = v.transfers(row.id)
    const hwm = summarize(runs.flatMap((x) => (x.kubectlHwmKiB === undefined ? [] : [x.kubectlHwmKiB / 1024])))
    const host = summarize(runs.flatMap((x) => (x.hostRssPeakKiB === undefined ? [] : [x.hostRssPeakKiB / 1024])))
    const base = row.baseline
    const hasUp = row.directions.includes("upload")
    return [
      row.label,
      row.expectSession === null ? "none" : `${row.transport} (${row.expectSession})`,
      hasUp ? fmt(up.median) : "–",
      fmt(down.median),
      hasUp ? ratio(up.median, direct.up) : "–",
      ratio(down.median, direct.down),
      base === undefined
        ? ""
        : `${ratio(up.median, v.mibps(base, "upload").median)} / ${
          ratio(down.median, v.mibps(base, "download").median)
        }`,
      hwm.n > 0 ? `kubectl ${fmt(hwm.median)}` : host.n > 0 ? `our process +${fmt(host.median)}` : "–",
      verified(runs)
    ]
  })
  const shown = v.r.throughputRows.filter((row) => row.directions.length === 2)
  charts.throughput = Svg.render({
    title: "One connection's throughput, against direct loopback",
    axis: "MiB/s, median",
    series: [{ name: "upload", color: COLORS.up }, { name: "download", color: COLORS.down }],
    groups: shown.map((row) => ({
      label: row.id === "direct" ? "direct loopback (the limit)" : `${row.id}`,
      strong: row.id.startsWith("native") || row.id === "direct",
      bars: [v.mibps(row.id, "upload").median, v.mibps(row.id, "download").median].map((x) => ({
        value: x,
        text: fmt(x, 0)
      }))
    }))
  })
  return [
    table([
      "path",
      "fake server transport (session seen)",
      "upload MiB/s",
      "download MiB/s",
      "upload vs loopback",
      "download vs loopback",
      "vs raw kubectl, same transport (up / down)",
      "forwarder peak RSS MiB",
      "verified"
    ], rows),
    "",
    "![throughput against loopback](charts/throughput.svg)"
  ].join("\n")
}

export const cpu = (v: View): string => {
  const rows = v.r.throughputRows.flatMap((row) =>
    row.directions.map((dir) => {
      const per = (pick: (x: ThroughputRun) => number | undefined) => v.cpuPerMiB(row.id, dir, pick).median
      const fwd = per((x) => (x.cpu === undefined ? undefined : x.cpu.benchMs + (x.cpu.kubectlMs ?? 0)))
      const kubectl = per((x) => x.cpu?.kubectlMs)
      const ours = per((x) => x.cpu?.benchMs)
      const server = per((x) => x.cpu?.serverMs)
      const loadgen = per((x) => x.cpu?.loadgenMs)
      const busy = busiest(v.transfers(row.id, dir).filter((x) => x.ok))
      const forwarder = row.expectSession === null ? "0 (none)" : fmt(fwd, 2)
      return [
        `${row.id} ${dir}`,
        forwarder,
        Number.isFinite(kubectl) ? fmt(kubectl, 2) : "–",
        row.expectSession === null ? "–" : fmt(ours, 2),
        fmt(server, 2),
        fmt(loadgen, 2),
        fmt((row.expectSession === null ? 0 : fwd) + server + loadgen, 2),
        busy
      ]
    })
  )
  return table([
    "path, direction",
    "forwarder ms/MiB (our process + kubectl)",
    "of which kubectl",
    "of which our process",
    "fake API server + pods ms/MiB",
    "load generator ms/MiB",
    "all processes ms/MiB",
    "busiest process, % of one core"
  ], rows)
}

/** Which process was closest to saturating a core during the transfers (median utilisation). */
const busiest = (runs: ReadonlyArray<ThroughputRun>): string => {
  const use = (pick: (x: ThroughputRun) => number | undefined) =>
    summarize(runs.flatMap((x) => {
      const c = pick(x)
      return c === undefined || !Number.isFinite(x.ms) ? [] : [(100 * c) / x.ms]
    })).median
  const all = [
    { who: "fake server", u: use((x) => x.cpu?.serverMs) },
    { who: "load generator", u: use((x) => x.cpu?.loadgenMs) },
    { who: "kubectl", u: use((x) => x.cpu?.kubectlMs) },
    { who: "our process", u: use((x) => x.cpu?.benchMs) }
  ].filter((x) => Number.isFinite(x.u)).sort((a, b) => b.u - a.u)
  return all.length === 0 ? "–" : `${all[0].who} ${fmt(all[0].u, 0)} %`
}

// ---------------------------------------------------------------------------------------------
// concurrency, memory, scale

export const concurrent = (v: View): string =>
  table(
    [
      "contender",
      "fake server transport",
      "connections × size",
      "byte-identical (count + CRC-32 each)",
      "sessions the server saw",
      "connections it dialled to the pod",
      "all done, ms",
      "aggregate MiB/s"
    ],
    v.r.concurrent.map((c) => [
      c.contender + (c.error === undefined ? "" : ` (failed: ${c.error})`),
      c.transport,
      `${c.connections} × ${fmt(c.bytesPerConnection / 1024, 0)} KiB`,
      `${c.ok ? "" : "**"}${c.identical}/${c.connections}${c.ok ? "" : "**"}`,
      Object.entries(c.sessions ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(", ") || "none",
      String(c.serverConnections ?? "–"),
      fmt(c.ms, 0),
      fmt((c.connections * c.bytesPerConnection) / MiB / (c.ms / 1000), 0)
    ])
  )

export const memory = (v: View, charts: Record<string, string>): string => {
  const rows = v.r.memory.map((m) => {
    const per = v.perForwardKiB(m.contender)
    const heap = m.open === undefined || m.loaded === undefined
      ? undefined
      : (m.open.heapUsedKiB - m.loaded.heapUsedKiB) / m.n
    const retained = m.closed === undefined || m.loaded === undefined
      ? undefined
      : (m.closed.heapUsedKiB - m.loaded.heapUsedKiB) / m.n
    return [
      m.contender + (m.ok ? "" : ` (failed: ${m.error ?? "?"})`),
      String(m.n),
      mib(m.bare?.rssKiB),
      mib(v.fixedKiB(m.contender)),
      fmt(per?.process, 0),
      per === undefined || per.kubectl === 0 ? "– (none)" : fmt(per.kubectl / 1024, 1),
      per === undefined ? "–" : `${fmt(per.total, 0)} KiB (${fmt(per.total / 1024, 2)} MiB)`,
      fmt(heap, 1),
      fmt(retained, 1)
    ]
  })
  const ids = v.r.memory.filter((m) => m.ok).map((m) => m.contender)
  charts.rss = Svg.render({
    title: "RSS per open forward (application process growth + its kubectl)",
    axis: "KiB per forward",
    series: [{ name: "per forward", color: COLORS.one }],
    log: true,
    groups: ids.map((id) => {
      const per = v.perForwardKiB(id)
      const total = per?.total ?? Number.NaN
      return {
        label: id,
        strong: id.startsWith("native"),
        bars: [{ value: total, text: total >= 1024 ? `${fmt(total / 1024, 1)} MiB` : `${fmt(total, 0)} KiB` }]
      }
    }),
    lines: [{ value: 1024, label: "goal: 1 MiB", color: COLORS.goal }]
  })
  return [
    table([
      "contender",
      "N open",
      "bare Node process RSS MiB",
      "fixed cost MiB (library loaded, one forward used; + helper processes)",
      "process RSS per open forward KiB",
      "kubectl RSS per forward MiB",
      "total per forward",
      "JS heap per open forward KiB",
      "JS heap still held after all closed, KiB per forward"
    ], rows),
    "",
    "![RSS per open forward](charts/rss.svg)"
  ].join("\n")
}

export const scale = (v: View): string =>
  table(
    [
      "contender",
      "N",
      "open all s",
      "failed",
      "echo round trips ok",
      "close all ms",
      "process RSS loaded → N open MiB",
      "per forward KiB",
      "kubectl RSS, all MiB",
      "leftover processes at close / 1 s",
      "ports still bound at close / 1 s",
      "server sessions at close / 1 s"
    ],
    v.r.scale.map((s) => [
      `${s.contender}${s.strategy === undefined ? "" : ` (${s.strategy} scope)`}${
        s.error === undefined ? "" : ` (failed: ${s.error})`
      }`,
      String(s.n),
      fmt(s.openAllMs / 1000, 2),
      String(s.failedToOpen),
      `${s.roundTripsOk}/${s.n}`,
      fmt(s.closeAllMs, 0),
      `${mib(s.rssLoadedKiB, 0)} → ${mib(s.rssOpenKiB, 0)}`,
      fmt((s.rssOpenKiB - s.rssLoadedKiB) / s.n, 0),
      s.kubectlRssKiB === 0 ? "– (none)" : mib(s.kubectlRssKiB, 0),
      `${s.leftoverProcessesAtClose} / ${s.leftoverProcessesAfter1s}`,
      `${s.unbindablePortsAtClose} / ${s.unbindablePortsAfter1s}`,
      `${s.serverSessionsAtClose} / ${s.serverSessionsAfter1s}`
    ])
  )

// ---------------------------------------------------------------------------------------------
// facts of the run

export const argv = (v: View): string =>
  `kube-forward's kubectl argv (checked at run time) is \`${
    v.r.argvCheck.kubeForward.join(" ")
  }\`; raw kubectl was started with ${
    v.r.argvCheck.same ? "exactly the same argv" : `a DIFFERENT argv: \`${v.r.argvCheck.raw.join(" ")}\``
  }.`

export const problems = (v: View): string => {
  if (v.r.errors.length === 0 && v.r.leaksAtEnd.length === 0) {
    return "None: every run succeeded and verified, nothing leaked."
  }
  return [...v.r.errors.map((e) => `- ${e}`), ...v.r.leaksAtEnd.map((l) => `- leaked at the end: ${l}`)].join("\n")
}
