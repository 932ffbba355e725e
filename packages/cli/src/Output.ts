/**
 * Where the state of the forwards goes, in one of three modes:
 *
 * - `table`: on a terminal, the live table of `Table.render`, redrawn in place on every change,
 *   every second (for SINCE) and when the terminal is resized;
 * - `plain`: without a terminal, one line per change (`PlainLines.line`);
 * - `json`: with `--json`, one JSON event per line (`JsonEvents.encode`).
 *
 * The stream is stdout, except in `--` mode where stdout belongs to the command: then it is
 * stderr, and never the live table (which would draw over the command's own output). Colour only
 * on a terminal and when `NO_COLOR` is not set.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Schedule, type Scope } from "effect"
import * as Board from "./Board.ts"
import * as JsonEvents from "./JsonEvents.ts"
import * as PlainLines from "./PlainLines.ts"
import type { Plan } from "./Plan.ts"
import * as Table from "./Table.ts"

/**
 * The output mode.
 *
 * @category models
 * @since 0.1.0
 */
export type Mode = "table" | "plain" | "json"

/**
 * Where and how to write.
 *
 * @category models
 * @since 0.1.0
 */
export interface Settings {
  readonly mode: Mode
  readonly stream: NodeJS.WriteStream
  readonly colour: boolean
}

/**
 * Chooses the settings: `--json` wins, then the table on a terminal (not in `--` mode), else
 * plain lines; colour on a terminal unless `NO_COLOR` is set to anything but the empty string.
 *
 * @category constructors
 * @since 0.1.0
 */
export const choose = (options: {
  readonly json: boolean
  readonly commandMode: boolean
  readonly stdout: NodeJS.WriteStream
  readonly stderr: NodeJS.WriteStream
  readonly env: Readonly<Record<string, string | undefined>>
}): Settings => {
  const stream = options.commandMode ? options.stderr : options.stdout
  const tty = stream.isTTY === true
  const mode: Mode = options.json ? "json" : tty && !options.commandMode ? "table" : "plain"
  const noColor = options.env.NO_COLOR !== undefined && options.env.NO_COLOR !== ""
  return { mode, stream, colour: tty && !noColor }
}

/**
 * The output of a run.
 *
 * @category models
 * @since 0.1.0
 */
export interface Output {
  /** Something happened to a forward. */
  readonly change: (change: Board.Change) => Effect.Effect<void>
  /** Every forward is ready (reported once). */
  readonly ready: Effect.Effect<void>
  /** A note for the person at the terminal (in the table's footer, or a line; stderr with `--json`). */
  readonly note: (text: string) => Effect.Effect<void>
  /** The rows as they are now. */
  readonly rows: Effect.Effect<ReadonlyArray<Board.Row>>
}

const CSI = "\u001b["

/** Redraws the table in place: up to where it began, each line cleared, the rest erased. */
const makeDrawer = (send: (text: string) => void) => {
  let height = 0
  return (lines: ReadonlyArray<string>) => {
    const up = height > 0 ? `${CSI}${height}F` : ""
    send(`${up}${lines.map((l) => `${l}${CSI}K\n`).join("")}${CSI}J`)
    height = lines.length
  }
}

/**
 * Writes to `stream` until it fails; from then on nothing is written there. EPIPE (the reader
 * is gone, as with `| head -1`) calls `onClosed`, any other error `onFailed`, once. The listener
 * stays, so a later write error (the stream destroyed) cannot crash the process either.
 */
const guardedWriter = (
  stream: NodeJS.WritableStream & { readonly destroyed: boolean },
  onClosed: () => void,
  onFailed: (error: NodeJS.ErrnoException) => void
) => {
  let closed = false
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (closed) return
    closed = true
    if (error.code === "EPIPE") onClosed()
    else onFailed(error)
  })
  return (text: string) => {
    if (!closed && !stream.destroyed) stream.write(text)
  }
}

let stderrWriter: ((text: string) => void) | undefined

/**
 * Writes a line to stderr, until stderr cannot be written (a closed pipe, any error): from then
 * on nothing more is written there, and the run goes on.
 *
 * @category writing
 * @since 0.1.0
 */
export const toStderr = (line: string): void => {
  stderrWriter ??= guardedWriter(process.stderr, () => {}, () => {})
  stderrWriter(`${line}\n`)
}

/**
 * What is said on stderr when `stream` failed with `error` (not EPIPE).
 *
 * @category writing
 * @since 0.1.0
 */
export const failureText = (stream: NodeJS.WriteStream, error: NodeJS.ErrnoException): string => {
  const name = stream === process.stdout ? "stdout" : stream === process.stderr ? "stderr" : "the output"
  const why = error.code === "ENOSPC" ? "no space left on the device" : error.message
  return `cannot write to ${name}: ${why}${
    error.code === undefined || why.includes(error.code) ? "" : ` (${error.code})`
  }`
}

/**
 * Makes the output of `plan` with `settings`. In table mode the table is drawn at once and kept
 * up to date until the scope closes, when it is drawn a last time. When the stream can no
 * longer be written, output stops and, once, `onClosed` is called for a closed pipe (EPIPE),
 * `onFailed` for any other error. With `--json` the notes go to stderr, written until it fails.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  plan: Plan,
  settings: Settings,
  onClosed: () => void = () => {},
  onFailed: (error: NodeJS.ErrnoException) => void = () => {}
): Effect.Effect<Output, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { colour, mode, stream } = settings
    let rows = Board.make(plan, yield* Clock.currentTimeMillis)
    let footer: ReadonlyArray<string> = []
    let announced = false
    const send = guardedWriter(stream, onClosed, onFailed)
    const write = (line: string) => Effect.sync(() => send(`${line}\n`))
    const draw = makeDrawer(send)
    const redraw = Effect.gen(function*() {
      if (mode !== "table") return
      const now = yield* Clock.currentTimeMillis
      draw(Table.render(rows, { width: stream.columns ?? 80, height: stream.rows, colour, now, footer }))
    })
    const change = (c: Board.Change) =>
      Effect.gen(function*() {
        const before = Board.row(rows, c.name)
        rows = Board.apply(rows, c)
        const row = Board.row(rows, c.name)
        if (row === undefined) return
        // the same status seen twice (reported when opened, then first on its status stream)
        if (c._tag === "Status" && before?.state === row.state && before.attempt === row.attempt) return
        if (mode === "table") return yield* redraw
        yield* write(
          mode === "json" ? JsonEvents.encode({ _tag: "Status", row, change: c }, c.at) : PlainLines.line(row, c)
        )
      })
    const ready = Effect.gen(function*() {
      if (announced) return
      announced = true
      if (mode === "json") {
        return yield* write(JsonEvents.encode({ _tag: "Ready", rows }, yield* Clock.currentTimeMillis))
      }
      if (mode === "plain") return yield* write(`all ${rows.length} forward${rows.length === 1 ? "" : "s"} ready`)
      footer = ["Ctrl-C to stop"]
      yield* redraw
    })
    const note = (text: string) =>
      mode === "table"
        ? Effect.suspend(() => {
          footer = [text]
          return redraw
        })
        : mode === "json"
        ? Effect.sync(() => toStderr(`kube-forward: ${text}`))
        : write(`kube-forward: ${text}`)
    const start = yield* Clock.currentTimeMillis
    for (const row of mode === "table" ? [] : rows) {
      const c: Board.Change = { _tag: "Status", name: row.name, at: start, status: { _tag: "Starting" } }
      yield* write(
        mode === "json" ? JsonEvents.encode({ _tag: "Status", row, change: c }, start) : PlainLines.line(row, c)
      )
    }
    if (mode === "table") {
      yield* redraw
      yield* redraw.pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
      const onResize = () => Effect.runFork(redraw)
      yield* Effect.acquireRelease(
        Effect.sync(() => stream.on("resize", onResize)),
        // the last drawing: the final states, without the hints
        () =>
          Effect.sync(() => {
            stream.off("resize", onResize)
            footer = []
          }).pipe(Effect.andThen(redraw))
      )
    }
    return { change, ready, note, rows: Effect.sync(() => rows) }
  })
