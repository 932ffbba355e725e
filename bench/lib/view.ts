/** Queries over one run's results, and the table helpers every block of the report uses. */
import { MiB } from "./context.ts"
import type { ReadyRun, Results, ThroughputRun } from "./results.ts"
import { fmt, summarize, type Summary } from "./stats.ts"

export const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")

export const yes = (b: boolean | undefined): string => (b === undefined ? "–" : b ? "**yes**" : "**NO**")

const KiB = 1024

/** Queries over one run's results that every block uses. */
export class View {
  readonly r: Results
  private readonly okReady: ReadonlyArray<ReadyRun>

  constructor(r: Results) {
    this.r = r
    this.okReady = r.ready.filter((x) => x.ok && x.round >= 0)
  }

  /** The A/B's older kube-forward, if it ran. */
  get abId(): string | undefined {
    return this.r.ab === undefined ? undefined : `kube-forward@${this.r.ab.commit.slice(0, 7)}`
  }

  label(id: string): string {
    return this.r.contenders.find((c) => c.id === id)?.label ?? id
  }

  runs(id: string): ReadonlyArray<ReadyRun> {
    return this.okReady.filter((x) => x.contender === id)
  }

  ready(id: string, f: (x: ReadyRun) => number | undefined): Summary {
    return summarize(this.runs(id).map(f).filter((v): v is number => v !== undefined))
  }

  failures(id: string): number {
    return this.r.ready.filter((x) => x.contender === id && !x.ok).length
  }

  /** "Ready" as each contender means it at its headline: verified by itself, or its first echo reply. */
  headline(id: string): (x: ReadyRun) => number {
    const verifies = this.r.contenders.find((c) => c.id === id)?.verifies ?? false
    return verifies ? (x) => x.openMs : (x) => x.firstReplyMs
  }

  /** Per-round pairs of `f(a)` and `g(b)` (rounds where both succeeded). */
  pairs(a: string, f: (x: ReadyRun) => number, b: string, g: (x: ReadyRun) => number): Array<[number, number]> {
    const byRound = new Map(this.runs(b).map((x) => [x.round, g(x)]))
    return this.runs(a).flatMap((x) => {
      const y = byRound.get(x.round)
      return y === undefined || !Number.isFinite(y) || !Number.isFinite(f(x)) ? [] : [[f(x), y] as [number, number]]
    })
  }

  /** Median over rounds of `f(id) / raw kubectl's ready` in the same round: robust to load drifting between rounds. */
  pairedVsRaw(id: string, f: (x: ReadyRun) => number = this.headline(id)): number {
    return summarize(this.pairs(id, f, "kubectl", (x) => x.firstReplyMs).map(([a, b]) => a / b)).median
  }

  mibps(row: string, dir: "upload" | "download"): Summary {
    return summarize(this.transfers(row, dir).filter((x) => x.ok).map((x) => x.mibps))
  }

  transfers(row: string, dir?: "upload" | "download"): ReadonlyArray<ThroughputRun> {
    return this.r.throughput.filter((x) => x.row === row && (dir === undefined || x.direction === dir))
  }

  /** Median CPU ms per MiB of one process (or of the forwarder) over a row's verified transfers in one direction. */
  cpuPerMiB(row: string, dir: "upload" | "download", pick: (x: ThroughputRun) => number | undefined): Summary {
    return summarize(
      this.transfers(row, dir).filter((x) => x.ok).flatMap((x) => {
        const v = pick(x)
        return v === undefined ? [] : [v / (x.bytes / MiB)]
      })
    )
  }

  memory(id: string) {
    return this.r.memory.find((m) => m.contender === id && m.ok)
  }

  /** RSS per open forward in KiB: the application process's growth per forward plus one kubectl's RSS. */
  perForwardKiB(
    id: string
  ): { readonly process: number; readonly kubectl: number; readonly total: number } | undefined {
    const m = this.memory(id)
    if (m?.open === undefined || m.loaded === undefined) return undefined
    const proc = (m.open.rssKiB - m.loaded.rssKiB) / m.n
    const kubectl = m.kubectlRssKiB.length === 0 ? 0 : summarize(m.kubectlRssKiB).median
    return { process: proc, kubectl, total: proc + kubectl }
  }

  /** What loading the library costs the process once (and kube-forward's watchdog, once). */
  fixedKiB(id: string): number | undefined {
    const m = this.memory(id)
    return m?.loaded === undefined || m.bare === undefined
      ? undefined
      : m.loaded.rssKiB - m.bare.rssKiB + m.helperRssKiB
  }

  scale(id: string, strategy?: "sequential" | "parallel") {
    return this.r.scale.find((s) => s.contender === id && s.strategy === strategy)
  }
}

export const pairedText = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "–")
export const mib = (kib: number | undefined, digits = 1): string => (kib === undefined ? "–" : fmt(kib / KiB, digits))

/** A deterministic 95 % bootstrap interval of the median of `xs` (seeded, so re-renders agree). */
export const bootstrapMedian = (xs: ReadonlyArray<number>, resamples = 2000): { lo: number; hi: number } => {
  if (xs.length < 2) return { lo: Number.NaN, hi: Number.NaN }
  let seed = 0x9e3779b9
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const medians: Array<number> = []
  for (let i = 0; i < resamples; i++) {
    medians.push(summarize(Array.from({ length: xs.length }, () => xs[Math.floor(random() * xs.length)])).median)
  }
  medians.sort((a, b) => a - b)
  return { lo: medians[Math.floor(resamples * 0.025)], hi: medians[Math.floor(resamples * 0.975)] }
}
