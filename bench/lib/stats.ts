/** Small statistics helpers: order statistics over samples in milliseconds (or any unit). */

export interface Summary {
  readonly n: number
  readonly median: number
  readonly p95: number
  readonly min: number
  readonly max: number
  readonly mean: number
}

const sorted = (xs: ReadonlyArray<number>): Array<number> => [...xs].sort((a, b) => a - b)

/** Linear-interpolated quantile (q in [0, 1]) of an already sorted array. */
const quantileSorted = (s: ReadonlyArray<number>, q: number): number => {
  if (s.length === 0) return Number.NaN
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo] + (s[hi] - s[lo]) * (pos - lo)
}

export const summarize = (xs: ReadonlyArray<number>): Summary => {
  const s = sorted(xs.filter((x) => Number.isFinite(x)))
  return {
    n: s.length,
    median: quantileSorted(s, 0.5),
    p95: quantileSorted(s, 0.95),
    min: s.length > 0 ? s[0] : Number.NaN,
    max: s.length > 0 ? s[s.length - 1] : Number.NaN,
    mean: s.length > 0 ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN
  }
}

export const median = (xs: ReadonlyArray<number>): number => summarize(xs).median

/** `12.3`, `123`, `1234` – three significant digits, at most one decimal. */
export const fmt = (x: number | undefined, digits = 1): string => {
  if (x === undefined || !Number.isFinite(x)) return "–"
  if (Math.abs(x) >= 100) return x.toFixed(0)
  return x.toFixed(digits)
}

export const ratio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–"
