/**
 * The live table of a terminal, as a pure function: rows of a board, the terminal's width and
 * height, whether to colour, and the current time in; the lines to draw out.
 *
 * ```
 * NAME  TARGET            LOCAL → REMOTE          STATE  RECONNECTS  SINCE  LAST ERROR
 * web   svc/web -n shop   8080→80, 43121→metrics  Ready           1  2m03s  port forward to service/web was los…
 * db    pod/db-0 -n data  40217→5432              Ready           0  2m07s
 * ```
 *
 * Every line fits the width (nothing wraps, so the table can be redrawn in place): the last
 * error takes what is left and is cut with `…`; on a narrower terminal the columns go in the
 * order last error, since, reconnects, target, and long names and port lists are cut; then the
 * port list goes and the name is cut further, down to its first three characters, so that the
 * state stays in view whole as long as the width has room for it beside them (`Ready`, or
 * `Reconnecting #9`, down to 20 columns; `Reconnecting #12` down to 21), and in part below
 * that. The state is never cut while there is room for it, however many the attempts. Rows that
 * do not fit the height are summed up in one line. Colour is only added when asked (the caller
 * asks when the output is a terminal and `NO_COLOR` is not set), and never counts towards the
 * width.
 *
 * @since 0.1.0
 */
import type { Row, State } from "./Board.ts"

/**
 * What to render for.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The terminal's width in columns. */
  readonly width: number
  /** The terminal's height in rows (the table keeps a line free below it). Default: unbounded. */
  readonly height?: number | undefined
  /** Add ANSI colours. */
  readonly colour: boolean
  /** Now (epoch milliseconds), for the SINCE column. */
  readonly now: number
  /** Lines under the table (a hint, what the command is doing). */
  readonly footer?: ReadonlyArray<string> | undefined
}

const ESC = "\u001b["
const paint = (code: string, text: string) => `${ESC}${code}m${text}${ESC}0m`
const STATE_COLOUR: Record<State, string> = {
  Starting: "33",
  Ready: "32",
  Reconnecting: "33",
  Closed: "2",
  Failed: "31"
}
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

/**
 * The width of `text` on a terminal: ANSI colour codes do not count.
 *
 * @category text
 * @since 0.1.0
 */
export const visibleWidth = (text: string): number => Array.from(text.replace(ANSI, "")).length

/**
 * `text` cut to `width` columns, ending in `…` when it was cut.
 *
 * @category text
 * @since 0.1.0
 */
export const cut = (text: string, width: number): string => {
  const chars = Array.from(text)
  if (chars.length <= width) return text
  return width <= 0 ? "" : `${chars.slice(0, width - 1).join("")}…`
}

/**
 * A duration for the SINCE column: `5s`, `3m04s`, `1h02m`, `2d03h`.
 *
 * @category text
 * @since 0.1.0
 */
export const formatSince = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000))
  const pad = (n: number) => String(n).padStart(2, "0")
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`
}

/**
 * The target of a row as kubectl users write it: `svc/web -n shop`.
 *
 * @category text
 * @since 0.1.0
 */
export const targetText = (row: Row): string =>
  row.namespace === undefined ? row.target : `${row.target} -n ${row.namespace}`

const hostText = (address: string | undefined) =>
  address === undefined || address === "127.0.0.1" ? "" : address.includes(":") ? `[${address}]:` : `${address}:`

/**
 * The ports of a row: `8080→80, 43121→metrics` (`?` for a local port not chosen yet; the
 * address when it is not 127.0.0.1).
 *
 * @category text
 * @since 0.1.0
 */
export const portsText = (row: Row, arrow = "→"): string =>
  row.ports.map((p) => `${hostText(p.address)}${p.local ?? "?"}${arrow}${p.remote}`).join(", ")

/**
 * The last error of a row on one line (control characters and line breaks become spaces).
 *
 * @category text
 * @since 0.1.0
 */
export const errorText = (row: Row): string =>
  // eslint-disable-next-line no-control-regex
  row.lastError === undefined ? "" : row.lastError.message.replace(/[\u0000-\u001f\u007f]+/g, " ").trim()

/**
 * The STATE cell: `Ready`, `Reconnecting #3` (the attempt under way), `Starting #2`.
 *
 * @category text
 * @since 0.1.0
 */
export const stateText = (row: Row): string =>
  (row.state === "Reconnecting" || row.state === "Starting") && row.attempt > 1
    ? `${row.state} #${row.attempt}`
    : row.state

interface Column {
  readonly header: string
  readonly cell: (row: Row, now: number) => string
  readonly max: number
  readonly right?: boolean
}

const NAME: Column = { header: "NAME", cell: (r) => r.name, max: 24 }
const TARGET: Column = { header: "TARGET", cell: targetText, max: 36 }
const PORTS: Column = { header: "LOCAL → REMOTE", cell: (r) => portsText(r), max: 40 }
// as wide as its longest value: `Reconnecting #1234` is cut only when the width leaves no room
const STATE: Column = { header: "STATE", cell: stateText, max: Number.POSITIVE_INFINITY }
const RECONNECTS: Column = { header: "RECONNECTS", cell: (r) => String(r.reconnects), max: 10, right: true }
const SINCE: Column = { header: "SINCE", cell: (r, now) => formatSince(now - r.since), max: 6, right: true }
const ERROR: Column = { header: "LAST ERROR", cell: errorText, max: Number.POSITIVE_INFINITY }

/** The columns that fit `width`, each with its width; the last error takes what is left. */
const layout = (rows: ReadonlyArray<Row>, width: number, now: number) => {
  const natural = (c: Column) =>
    Math.min(c.max, Math.max(c.header.length, ...rows.map((r) => visibleWidth(c.cell(r, now)))))
  const dropOrder = [ERROR, SINCE, RECONNECTS, TARGET]
  let columns = [NAME, TARGET, PORTS, STATE, RECONNECTS, SINCE, ERROR]
  const widths = new Map(columns.map((c) => [c, natural(c)]))
  const total = () => columns.reduce((sum, c) => sum + widths.get(c)!, 0) + 2 * (columns.length - 1)
  for (const drop of dropOrder) {
    if (total() <= width) break
    if (drop === ERROR) {
      const left = width - (total() - widths.get(ERROR)!)
      if (left >= 12) {
        widths.set(ERROR, left)
        break
      }
    }
    columns = columns.filter((c) => c !== drop)
  }
  // still too wide: cut the port list, then the name; then drop the port list, so that the
  // state stays; then cut the name further, and last the state itself
  const shrink = (c: Column, min: number) => {
    const over = total() - width
    if (over > 0 && columns.includes(c)) widths.set(c, Math.max(Math.min(min, widths.get(c)!), widths.get(c)! - over))
  }
  shrink(PORTS, 10)
  shrink(NAME, 8)
  if (total() > width) columns = columns.filter((c) => c !== PORTS)
  shrink(NAME, 3)
  shrink(STATE, 1)
  return columns.map((c) => ({ column: c, width: widths.get(c)! }))
}

const pad = (text: string, width: number, right: boolean | undefined) => {
  const fitted = cut(text, width)
  const space = " ".repeat(Math.max(0, width - visibleWidth(fitted)))
  return right ? space + fitted : fitted + space
}

/**
 * The lines of the table (no line breaks, each at most `options.width` columns wide).
 *
 * @category rendering
 * @since 0.1.0
 */
export const render = (rows: ReadonlyArray<Row>, options: Options): ReadonlyArray<string> => {
  const width = Math.max(1, options.width)
  const footer = (options.footer ?? []).map((line) => cut(line, width))
  const room = options.height === undefined ? rows.length : Math.max(1, options.height - 2 - footer.length)
  const shown = rows.length > room ? rows.slice(0, Math.max(0, room - 1)) : rows
  const columns = layout(rows, width, options.now)
  const line = (cells: ReadonlyArray<string>) => cut(cells.join("  ").trimEnd(), width)
  const header = line(columns.map(({ column, width }) => pad(column.header, width, column.right)))
  const body = shown.map((row) => {
    const cells = columns.map(({ column, width }) => pad(column.cell(row, options.now), width, column.right))
    const plain = line(cells)
    if (!options.colour) return plain
    // colour the state cell only once the line is known to fit
    const i = columns.findIndex((c) => c.column === STATE)
    return i === -1 || plain !== cells.join("  ").trimEnd()
      ? plain
      : cells.map((c, j) => j === i ? paint(STATE_COLOUR[row.state], c) : c).join("  ").trimEnd()
  })
  const more = rows.length > shown.length ? [cut(`… and ${rows.length - shown.length} more`, width)] : []
  const head = options.colour ? paint("1", header) : header
  return [head, ...body, ...more, ...footer]
}
