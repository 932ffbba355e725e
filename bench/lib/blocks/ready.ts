/** The blocks about the run itself, the goals, time to ready, close and the A/B of issue 8. */
import { MiB } from "../context.ts"
import type { ReadyRun } from "../results.ts"
import { fmt, ratio, summarize } from "../stats.ts"
import * as Svg from "../svg.ts"
import { bootstrapMedian, mib, pairedText, table, View, yes } from "../view.ts"
import { CN, COLORS, DIRECT, KF, KFI, NS, NT, RAW, XEC } from "./ids.ts"

// ---------------------------------------------------------------------------------------------
// the run and the machine

export const run = (v: View): string => {
  const r = v.r
  const m = r.machine
  const lines = [
    `Measured by \`npm run bench${r.mode === "quick" ? " -- --quick" : ""}\` on ${
      m.date.slice(0, 16).replace("T", " ")
    } UTC`
    + ` in ${fmt(r.durationMs / 1000, 0)} s (revision ${m.commit ?? "?"}); raw samples in \`${
      r.mode === "quick" ? "results.quick.json" : "results.json"
    }\`.`,
    ""
  ]
  if (r.mode === "quick") {
    lines.push(
      "> **Quick mode**: few runs and small transfers, a smoke test only. Do not quote these numbers; the prose",
      "> around the tables describes the last full run.",
      ""
    )
  }
  if (m.loadAvgStart[0] >= 1) {
    lines.push(
      `> **The machine was not quiet**: 1-minute load average ${
        m.loadAvgStart[0].toFixed(2)
      } at the start (${m.cores} cores);`,
      "> other work competed with the contenders, so read differences of a few milliseconds or percent as noise.",
      ""
    )
  }
  const s = r.settings
  lines.push(table(["", ""], [
    ["CPU", `${m.cpuModel} (${m.cores} cores as seen by Node)`],
    ["RAM", `${m.ramGiB} GiB`],
    ["OS", m.kernel],
    ["Node", m.node],
    ["kubectl", `${r.kubectl.gitVersion} (\`${r.kubectl.path}\`) for every kubectl-based contender`],
    [
      "kubectl (SPDY-only client)",
      r.kubectlSpdy === undefined ? "not used" : `${r.kubectlSpdy.gitVersion} (\`${r.kubectlSpdy.path}\`)`
    ],
    ["kube-forward revision", m.commit ?? "–"],
    ["A/B: older revision", r.ab === undefined ? "not run" : `${r.ab.commit.slice(0, 7)} (from \`${r.ab.dir}\`)`],
    [
      "load average (1/5/15 min) at start → end",
      `${m.loadAvgStart.map((x) => x.toFixed(2)).join(" / ")} → ${m.loadAvgEnd.map((x) => x.toFixed(2)).join(" / ")}`
    ],
    ["IPv6 loopback", m.ipv6Loopback ? "yes" : "no"],
    [
      "runs",
      `${s.readyRuns} rounds for ready/close (after ${s.warmups} warm-up rounds); ${
        s.bytes / MiB
      } MiB × ${s.reps} reps `
      + `per throughput row; ${s.concurrentConnections} × ${fmt(s.concurrentBytes / 1024, 0)} KiB concurrent; memory `
      + `N=${s.memoryInProcessN} in-process / N=${s.memoryN} kubectl; at once N=${s.scaleInProcessN} in-process / `
      + `N=${s.scaleN} kubectl`
    ]
  ]))
  return lines.join("\n")
}

// ---------------------------------------------------------------------------------------------
// goals

const readyGoal = (v: View, id: string): ReadonlyArray<string> => {
  const n = v.ready(id, (x) => x.openMs).median
  const raw = v.ready(RAW, (x) => x.firstReplyMs).median
  return [
    `time to ready ≤ 0.1× raw kubectl's (until bytes reached the pod) — ${id}`,
    "≤ 0.10×",
    `${fmt(n, 2)} ms vs ${fmt(raw)} ms = ${ratio(n, raw)} (paired per round: ${pairedText(v.pairedVsRaw(id))})`,
    yes(Number.isFinite(n / raw) ? n / raw <= 0.1 : undefined)
  ]
}

const rssGoal = (v: View, id: string): ReadonlyArray<string> => {
  const per = v.perForwardKiB(id)
  const s = v.scale(id)
  const atScale = s === undefined || !s.ok ? undefined : (s.rssOpenKiB - s.rssLoadedKiB) / s.n
  const kubectl = v.perForwardKiB(RAW)
  const worst = Math.max(per?.total ?? Number.NaN, atScale ?? Number.NaN)
  return [
    `RSS per open forward ≤ 1 MiB — ${id}`,
    "≤ 1024 KiB",
    `${fmt(per?.total, 0)} KiB (N=${v.memory(id)?.n ?? "–"} one after another), ${fmt(atScale, 0)} KiB (N=${
      s?.n ?? "–"
    } at once); fixed cost once: ${mib(v.fixedKiB(id))} MiB. Raw kubectl: ${mib(kubectl?.total)} MiB per forward`,
    yes(Number.isFinite(worst) ? worst <= 1024 : undefined)
  ]
}

const scaleGoal = (v: View, id: string): ReadonlyArray<string> => {
  const s = v.scale(id)
  if (s === undefined) {
    return [
      `${v.r.settings.scaleInProcessN} forwards open at once in one process — ${id}`,
      "",
      "did not run",
      yes(undefined)
    ]
  }
  const clean = s.leftoverProcessesAtClose === 0 && s.unbindablePortsAtClose === 0 && s.serverSessionsAfter1s === 0
  return [
    `${s.n} forwards open at once in one process, 0 leftovers after close — ${id}`,
    "all open; 0 processes, ports, sessions",
    s.ok || Number.isFinite(s.openAllMs)
      ? `opened in ${fmt(s.openAllMs / 1000, 2)} s, ${s.roundTripsOk}/${s.n} echo round trips, process RSS ${
        mib(s.rssOpenKiB, 0)
      } MiB; after close: ${s.leftoverProcessesAtClose} processes, ${s.unbindablePortsAtClose} ports bound, ${s.serverSessionsAfter1s} server sessions (1 s later)`
      : `failed: ${s.error ?? "?"}`,
    yes(s.ok && clean)
  ]
}

const throughputGoal = (v: View, row: string, base: string): ReadonlyArray<string> => {
  const up = v.mibps(row, "upload").median
  const down = v.mibps(row, "download").median
  const bUp = v.mibps(base, "upload").median
  const bDown = v.mibps(base, "download").median
  const dUp = v.mibps("direct", "upload").median
  const dDown = v.mibps("direct", "download").median
  return [
    `one connection's throughput ≥ raw kubectl's, each way — ${row} vs ${base}`,
    "≥ 1.00× both ways",
    `up ${fmt(up)} vs ${fmt(bUp)} MiB/s (${ratio(up, bUp)}), down ${fmt(down)} vs ${fmt(bDown)} MiB/s (${
      ratio(down, bDown)
    }); loopback ${fmt(dUp)} / ${fmt(dDown)}`,
    yes(Number.isFinite(up + down + bUp + bDown) ? up >= bUp && down >= bDown : undefined)
  ]
}

const concurrentGoal = (v: View, id: string): ReadonlyArray<string> => {
  const c = v.r.concurrent.find((x) => x.contender === id)
  return [
    `${v.r.settings.concurrentConnections} concurrent connections on one forward, every byte identical — ${id}`,
    "all identical",
    c === undefined
      ? "did not run"
      : `${c.identical}/${c.connections} identical (count + CRC-32 each), carried by ${
        Object.values(c.sessions ?? {}).reduce((a, x) => a + x, 0)
      } session(s)`,
    yes(c?.ok)
  ]
}

const cpuGoal = (v: View): ReadonlyArray<string> => {
  const fwd = (row: string, dir: "upload" | "download") =>
    v.cpuPerMiB(row, dir, (x) => x.cpu === undefined ? undefined : x.cpu.benchMs + (x.cpu.kubectlMs ?? 0)).median
  const pair = (row: string) => `${fmt(fwd(row, "upload"), 2)} / ${fmt(fwd(row, "download"), 2)}`
  return [
    "CPU per MiB carried (forwarder: our process + kubectl), up / down",
    "reported (no target)",
    `native tunnel ${pair("native/tunnel")}, native SPDY ${pair("native/spdy")}, raw kubectl ${
      pair("kubectl/tunnel")
    } ms/MiB; loopback 0 (no forwarder)`,
    "–"
  ]
}

export const goals = (v: View): string =>
  table(["goal", "target", "measured (medians)", "met"], [
    readyGoal(v, NT),
    readyGoal(v, NS),
    rssGoal(v, NT),
    rssGoal(v, NS),
    scaleGoal(v, NT),
    scaleGoal(v, NS),
    throughputGoal(v, "native/tunnel", "kubectl/tunnel"),
    throughputGoal(v, "native/spdy", "kubectl/spdy-only"),
    concurrentGoal(v, NT),
    concurrentGoal(v, NS),
    cpuGoal(v)
  ])

// ---------------------------------------------------------------------------------------------
// time to ready, cold start, close

const MEANS: Record<string, string> = {
  [NT]: "`make` returned (it verified: check connection on the session)",
  [NS]: "`make` returned (it verified: check connection on the session)",
  [KF]: "`make` returned (check connection passed)",
  [RAW]: "`Forwarding from` line + 1 echo round trip",
  [XEC]: "promise resolved + 1 echo round trip",
  [CN]: "listening + 1 echo round trip (opens the WebSocket)",
  [DIRECT]: "1 echo round trip on a fresh connection (no forward)"
}

const headlineIds = (v: View): Array<string> =>
  [NT, NS, KF, v.abId, RAW, XEC, CN, DIRECT].filter((id): id is string => id !== undefined && v.runs(id).length > 0)

const readyRow = (v: View, id: string, label: string, means: string, f: (x: ReadyRun) => number) => {
  const s = v.ready(id, f)
  const fails = v.failures(id)
  const baseline = id === RAW && means === MEANS[RAW]
  return [
    label,
    means,
    fmt(s.median, 2),
    fmt(s.p95, 2),
    fmt(s.min, 2),
    `${s.n}${fails > 0 ? ` (+${fails} failed)` : ""}`,
    baseline ? "1.00× (baseline)" : ratio(s.median, v.ready(RAW, (x) => x.firstReplyMs).median),
    baseline ? "1.00×" : pairedText(v.pairedVsRaw(id, f))
  ]
}

export const ready = (v: View, charts: Record<string, string>): string => {
  const ids = headlineIds(v)
  const rows = [
    ...ids.map((id) => readyRow(v, id, `**${id}**`, `**${MEANS[id] ?? MEANS[KF]}**`, v.headline(id))),
    readyRow(v, RAW, RAW, "`Forwarding from` line only (unverified)", (x) => x.openMs),
    readyRow(v, XEC, XEC, "promise resolved only (unverified, what xec reports)", (x) => x.openMs),
    readyRow(v, CN, CN, "`listen` done only (nothing dialled yet)", (x) => x.openMs),
    readyRow(v, NT, NT, "`make` + 1 more echo round trip", (x) => x.firstReplyMs),
    readyRow(v, KF, KF, "`make` + 1 more echo round trip", (x) => x.firstReplyMs),
    readyRow(v, KFI, "kube-forward (instrumented layer)", "`make` returned", (x) => x.openMs)
  ].filter((row) => row[5] !== "0")
  const raw = v.ready(RAW, (x) => x.firstReplyMs).median
  charts.ready = Svg.render({
    title: "Time to ready (call → bytes reached the pod)",
    axis: "ms, median; whisker: p95",
    series: [{ name: "ready", color: COLORS.one }],
    log: true,
    groups: ids.map((id) => {
      const s = v.ready(id, v.headline(id))
      return {
        label: id,
        strong: id.startsWith("native"),
        bars: [{ value: s.median, whisker: s.p95, text: `${fmt(s.median, 2)} ms` }]
      }
    }),
    lines: Number.isFinite(raw) ? [{ value: raw / 10, label: "goal: 0.1× raw kubectl", color: COLORS.goal }] : []
  })
  return [
    table([
      "contender",
      "ready means",
      "median ms",
      "p95 ms",
      "min ms",
      "n",
      "vs raw kubectl (ratio of medians)",
      "vs raw kubectl, paired (median of per-round ratios)"
    ], rows),
    "",
    "![time to ready per contender](charts/ready.svg)"
  ].join("\n")
}

export const cold = (v: View): string => {
  const coldOf = (id: string) => v.r.cold.find((x) => x.contender === id)
  return table(
    ["contender", "first forward in this process, ms (same meaning as the bold rows)", "steady-state median ms"],
    headlineIds(v).map((id) => {
      const c = coldOf(id)
      return [id, c === undefined ? "–" : fmt(v.headline(id)(c), 2), fmt(v.ready(id, v.headline(id)).median, 2)]
    })
  )
}

const CLOSE_CALL: Record<string, string> = {
  [NT]: "`Scope.close` (listeners and session closed)",
  [NS]: "`Scope.close` (listeners and session closed)",
  [KF]: "`Scope.close` (waits for kubectl's exit)",
  [KFI]: "`Scope.close`",
  [RAW]: "`child.kill('SIGTERM')`",
  [XEC]: "`pf.close()` (SIGTERM, does not wait)",
  [CN]: "`server.close()` + WebSockets closed"
}

export const close = (v: View): string => {
  const rawFree = v.ready(RAW, (x) => x.freeMs).median
  const ids = [NT, NS, KF, v.abId, RAW, XEC, CN, KFI].filter((id): id is string =>
    id !== undefined && v.runs(id).length > 0
  )
  return table(
    [
      "contender",
      "close call",
      "close returned, median ms",
      "bindable, median ms",
      "p95 ms",
      "max ms",
      "vs raw kubectl"
    ],
    ids.map((id) => {
      const c = v.ready(id, (x) => x.closeReturnMs)
      const f = v.ready(id, (x) => x.freeMs)
      return [
        id,
        CLOSE_CALL[id] ?? CLOSE_CALL[KF],
        fmt(c.median, 2),
        fmt(f.median, 2),
        fmt(f.p95, 2),
        fmt(f.max, 2),
        ratio(f.median, rawFree)
      ]
    })
  )
}

// ---------------------------------------------------------------------------------------------
// the A/B of issue 8

const abRow = (v: View, old: string, what: string, f: (x: ReadyRun) => number): ReadonlyArray<string> => {
  const pairs = v.pairs(KF, f, old, f)
  const diffs = pairs.map(([now, before]) => now - before)
  const d = summarize(diffs).median
  const ci = bootstrapMedian(diffs)
  const rel = summarize(pairs.map(([now, before]) => now / before)).median
  const within = Number.isFinite(ci.lo) ? ci.lo <= 0 && ci.hi >= 0 : undefined
  return [
    what,
    fmt(v.ready(old, f).median, 2),
    fmt(v.ready(KF, f).median, 2),
    `${d >= 0 ? "+" : ""}${fmt(d, 2)} ms [${fmt(ci.lo, 2)}, ${fmt(ci.hi, 2)}]`,
    pairedText(rel),
    `${pairs.length}`,
    within === undefined
      ? "–"
      : within
      ? "**yes** (the interval contains 0)"
      : `**no**: now ${d > 0 ? "slower" : "faster"} by ${fmt(Math.abs(d), 2)} ms`
  ]
}

export const ab = (v: View): string => {
  const old = v.abId
  if (old === undefined || v.runs(old).length === 0) {
    return "The A/B did not run in this run (prepare the older revision with `node bench/ab.ts`, then run the bench again)."
  }
  return table(
    [
      "metric (kube-forward on kubectl)",
      `before (${old.split("@")[1]}) median ms`,
      "now median ms",
      "paired difference now − before: median [95 % bootstrap interval]",
      "paired ratio now / before",
      "rounds",
      "within noise"
    ],
    [
      abRow(v, old, "time to ready (`make` returned, verified)", (x) => x.openMs),
      abRow(v, old, "close → port bindable", (x) => x.freeMs),
      abRow(v, old, "close → `Scope.close` returned", (x) => x.closeReturnMs),
      abRow(v, old, "application-process CPU, call → ready", (x) => x.appCpuOpenMs)
    ]
  )
}
