/**
 * A small horizontal bar chart in SVG, written by hand so the bench needs no chart library:
 * one row per group, one bar per series in a group, the value printed after each bar, an optional
 * whisker (p95, say), optional reference lines (a target, the loopback limit), linear or log scale.
 */

export interface Bar {
  readonly value: number
  /** A second value drawn as a thin line from the bar's end (e.g. p95); omitted when not finite. */
  readonly whisker?: number | undefined
  /** The text after the bar; default the value. */
  readonly text?: string | undefined
}

export interface Group {
  readonly label: string
  /** One bar per series, in the order of `series`; `undefined` leaves a gap. */
  readonly bars: ReadonlyArray<Bar | undefined>
  /** Drawn bold (the headline rows). */
  readonly strong?: boolean | undefined
}

export interface Chart {
  readonly title: string
  /** The axis label, e.g. "ms (median; whisker: p95)". */
  readonly axis: string
  readonly series: ReadonlyArray<{ readonly name: string; readonly color: string }>
  readonly groups: ReadonlyArray<Group>
  readonly log?: boolean | undefined
  readonly lines?: ReadonlyArray<{ readonly value: number; readonly label: string; readonly color: string }> | undefined
}

const esc = (s: string): string =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("\"", "&quot;")

const num = (x: number): string => (Math.round(x * 10) / 10).toString()

/** Ticks: 1-2-5 steps on a linear scale, powers of ten on a log scale. */
const ticks = (lo: number, hi: number, log: boolean): Array<number> => {
  if (log) {
    const out: Array<number> = []
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e)
    return out
  }
  const raw = hi / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw
  const out: Array<number> = []
  for (let v = 0; v <= hi + step / 2; v += step) out.push(v)
  return out
}

const tickText = (v: number): string => v >= 1000 ? `${num(v / 1000)}k` : v >= 1 || v === 0 ? num(v) : v.toPrecision(1)

const LABEL_W = 300
const PLOT_W = 440
const TEXT_W = 120
const BAR_H = 14
const GAP = 10
const TOP = 64

/** The value → x mapping of a chart, and its ticks. */
const scaleOf = (chart: Chart) => {
  const log = chart.log === true
  const values = chart.groups.flatMap((g) =>
    g.bars.flatMap((b) => (b === undefined ? [] : [b.value, b.whisker ?? Number.NaN]))
  ).concat((chart.lines ?? []).map((l) => l.value)).filter((v) => Number.isFinite(v) && (!log || v > 0))
  const hiRaw = values.length === 0 ? 1 : Math.max(...values)
  const loRaw = log ? Math.min(...values, hiRaw) : 0
  const tickList = ticks(log ? loRaw : 0, hiRaw, log)
  const lo = log ? tickList[0] : 0
  const hi = Math.max(tickList[tickList.length - 1], hiRaw)
  const x = (v: number): number => {
    if (!Number.isFinite(v)) return 0
    const f = log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi
    return LABEL_W + Math.max(0, Math.min(1, f)) * PLOT_W
  }
  return { x, ticks: tickList }
}

/** Title, legend, grid lines and tick labels, and the axis label. */
const frame = (chart: Chart, width: number, height: number, scale: ReturnType<typeof scaleOf>): Array<string> => {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(chart.title)}</text>`
  ]
  let lx = 10
  for (const s of chart.series.length > 1 ? chart.series : []) {
    out.push(`<rect x="${lx}" y="30" width="10" height="10" fill="${s.color}"/>`)
    out.push(`<text x="${lx + 14}" y="39">${esc(s.name)}</text>`)
    lx += 24 + s.name.length * 7
  }
  const bottom = height - 40
  for (const t of scale.ticks) {
    const tx = num(scale.x(t))
    out.push(`<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${bottom}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${tx}" y="${bottom + 14}" text-anchor="middle" fill="#555">${tickText(t)}</text>`)
  }
  const axis = esc(chart.axis + (chart.log === true ? " (log scale)" : ""))
  out.push(`<text x="${LABEL_W + PLOT_W / 2}" y="${bottom + 30}" text-anchor="middle" fill="#333">${axis}</text>`)
  return out
}

/** One bar (with its whisker and its text) at row `y`. */
const bar = (b: Bar | undefined, y: number, color: string, x: (v: number) => number): Array<string> => {
  if (b === undefined || !Number.isFinite(b.value)) {
    return [`<text x="${LABEL_W + 4}" y="${y + BAR_H - 3}" fill="#999">–</text>`]
  }
  const end = x(b.value)
  const out = [
    `<rect x="${LABEL_W}" y="${y + 1}" width="${num(Math.max(1, end - LABEL_W))}" height="${
      BAR_H - 2
    }" fill="${color}"/>`
  ]
  let textX = end
  if (b.whisker !== undefined && Number.isFinite(b.whisker) && b.whisker > b.value) {
    const wx = num(x(b.whisker))
    const my = y + BAR_H / 2
    out.push(`<line x1="${num(end)}" y1="${my}" x2="${wx}" y2="${my}" stroke="#333"/>`)
    out.push(`<line x1="${wx}" y1="${my - 4}" x2="${wx}" y2="${my + 4}" stroke="#333"/>`)
    textX = x(b.whisker)
  }
  out.push(`<text x="${num(textX + 4)}" y="${y + BAR_H - 3}" fill="#222">${esc(b.text ?? num(b.value))}</text>`)
  return out
}

/** Renders `chart` to a standalone SVG document. */
export const render = (chart: Chart): string => {
  const scale = scaleOf(chart)
  const rowsH = chart.groups.map((g) => g.bars.length * BAR_H + GAP)
  const height = TOP + rowsH.reduce((a, b) => a + b, 0) + 40
  const out = frame(chart, LABEL_W + PLOT_W + TEXT_W, height, scale)
  let y = TOP
  chart.groups.forEach((g, gi) => {
    const labelY = num(y + (g.bars.length * BAR_H) / 2 + 4)
    const weight = g.strong === true ? " font-weight=\"bold\"" : ""
    out.push(`<text x="${LABEL_W - 8}" y="${labelY}" text-anchor="end"${weight}>${esc(g.label)}</text>`)
    g.bars.forEach((b, si) => out.push(...bar(b, y + si * BAR_H, chart.series[si]?.color ?? "#4c78a8", scale.x)))
    y += rowsH[gi]
  })
  for (const l of chart.lines ?? []) {
    const lx = num(scale.x(l.value))
    out.push(
      `<line x1="${lx}" y1="${TOP - 6}" x2="${lx}" y2="${
        height - 40
      }" stroke="${l.color}" stroke-dasharray="4 3" stroke-width="1.5"/>`
    )
    out.push(`<text x="${num(scale.x(l.value) + 3)}" y="${TOP - 9}" fill="${l.color}">${esc(l.label)}</text>`)
  }
  out.push("</svg>", "")
  return out.join("\n")
}
