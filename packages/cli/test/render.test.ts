/**
 * What a person and a script see, rendered from sequences of status changes: the live table
 * (narrow terminals, long names, colour only when asked), the plain lines, the JSON events,
 * and the choice of mode and colour (NO_COLOR, no terminal, `--` mode).
 */
import { assert, describe, it } from "@effect/vitest"
import { PortForwardError } from "@kube-forward/core"
import * as Board from "../src/Board.ts"
import * as JsonEvents from "../src/JsonEvents.ts"
import * as Output from "../src/Output.ts"
import * as PlainLines from "../src/PlainLines.ts"
import type { Plan } from "../src/Plan.ts"
import * as Table from "../src/Table.ts"

/** An SGR (colour) escape sequence, to strip colours off a rendered line. */
const SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g")

const LONG = "a-forward-with-a-name-much-longer-than-any-column-should-be"

const plan = (names: ReadonlyArray<string>): Plan => ({
  forwards: names.map((name, i) => ({
    name,
    target: i === 0 ? "svc/web" : `pod/${name}`,
    spec: {
      target: `pod/${name}`,
      ports: i === 0 ? [{ local: 8080, remote: 80 }, { remote: "metrics" }] : [{ remote: 5432 }],
      namespace: i === 0 ? "shop" : undefined
    },
    reconnect: true,
    where: (p) => p
  }))
})

const T0 = 1_700_000_000_000
const lost = new PortForwardError.ForwardLost({ target: "service/web", reason: "lost connection to pod", exitCode: 1 })
const pending = new PortForwardError.PodNotRunning({ target: "pod/db", namespace: undefined, phase: "Pending" })
const ready = (local: number, remote: number | string, targetPort: number) => ({
  address: "127.0.0.1",
  local,
  remote,
  targetPort
})

/** web: Ready, lost, two reconnect attempts, Ready again; db: a failed start-up attempt, then Ready. */
const sequence: ReadonlyArray<Board.Change> = [
  { _tag: "AttemptFailed", name: "db", at: T0 + 500, error: pending },
  {
    _tag: "Status",
    name: "web",
    at: T0 + 1000,
    status: { _tag: "Ready", ports: [ready(8080, 80, 8080), ready(43121, "metrics", 9090)] }
  },
  { _tag: "Status", name: "db", at: T0 + 2000, status: { _tag: "Ready", ports: [ready(40001, 5432, 5432)] } },
  { _tag: "Status", name: "web", at: T0 + 60_000, status: { _tag: "Reconnecting", attempt: 1, cause: lost } },
  { _tag: "Status", name: "web", at: T0 + 60_500, status: { _tag: "Reconnecting", attempt: 2, cause: lost } },
  {
    _tag: "Status",
    name: "web",
    at: T0 + 61_000,
    status: { _tag: "Ready", ports: [ready(8080, 80, 8080), ready(43121, "metrics", 9090)] }
  }
]

const fold = (names: ReadonlyArray<string>, changes: ReadonlyArray<Board.Change>) =>
  changes.reduce(Board.apply, Board.make(plan(names), T0))

const ESC = "\u001b"

describe("Board", () => {
  it("folds a sequence: reconnects count the returns to Ready, the last error is kept", () => {
    const rows = fold(["web", "db"], sequence)
    const web = Board.row(rows, "web")!
    assert.strictEqual(web.state, "Ready")
    assert.strictEqual(web.reconnects, 1)
    assert.strictEqual(web.since, T0 + 61_000)
    assert.strictEqual(web.lastError?._tag, "ForwardLost")
    assert.deepStrictEqual(web.ports.map((p) => p.local), [8080, 43121])
    const db = Board.row(rows, "db")!
    assert.strictEqual(db.reconnects, 0, "a start-up retry is not a reconnect")
    assert.strictEqual(db.lastError?._tag, "PodNotRunning")
    assert.isTrue(Board.allReady(rows))
    const closed = Board.apply(rows, { _tag: "Status", name: "db", at: T0 + 70_000, status: { _tag: "Closed" } })
    assert.isFalse(Board.allReady(closed))
  })

  it("a start-up that fails for good is Failed with its error", () => {
    const rows = Board.apply(Board.make(plan(["web"]), T0), {
      _tag: "StartFailed",
      name: "web",
      at: T0 + 5,
      error: pending
    })
    assert.deepInclude(Board.row(rows, "web"), { state: "Failed", since: T0 + 5, lastError: pending })
  })
})

describe("Table", () => {
  const now = T0 + 125_000
  const rows = fold(["web", "db"], sequence)

  it("on a wide terminal: every column, the ports, the state, the reconnects, since, the last error", () => {
    const lines = Table.render(rows, { width: 140, colour: false, now })
    assert.match(lines[0], /^NAME +TARGET +LOCAL → REMOTE +STATE +RECONNECTS +SINCE +LAST ERROR$/)
    assert.match(
      lines[1],
      /^web +svc\/web -n shop +8080→80, 43121→metrics +Ready +1 +1m04s +port forward to service\/web was lost: lost connection to pod$/
    )
    assert.match(lines[2], /^db +pod\/db +40001→5432 +Ready +0 +2m03s +pod\/db is not running \(phase Pending\)$/)
    assert.strictEqual(lines.length, 3)
  })

  it("while starting and reconnecting: the attempt under way, ? for a port not chosen yet", () => {
    const starting = fold(["web", "db"], sequence.slice(0, 1))
    const lines = Table.render(starting, { width: 120, colour: false, now: T0 + 1000 })
    assert.match(lines[1], /^web +svc\/web -n shop +8080→80, \?→metrics +Starting +0 +1s/)
    assert.match(lines[2], /^db +pod\/db +\?→5432 +Starting #2 +0 +1s +pod\/db is not running/)
    const reconnecting = fold(["web", "db"], sequence.slice(0, 5))
    assert.match(Table.render(reconnecting, { width: 120, colour: false, now })[1], /Reconnecting #2 +0 +1m05s/)
  })

  it("narrowing drops the last error, then since, then reconnects, then the target", () => {
    const headers = (width: number) => Table.render(rows, { width, colour: false, now })[0].split(/ {2,}/)
    assert.deepStrictEqual(headers(140), [
      "NAME",
      "TARGET",
      "LOCAL → REMOTE",
      "STATE",
      "RECONNECTS",
      "SINCE",
      "LAST ERROR"
    ])
    assert.deepStrictEqual(headers(80), ["NAME", "TARGET", "LOCAL → REMOTE", "STATE", "RECONNECTS", "SINCE"])
    assert.deepStrictEqual(headers(64), ["NAME", "TARGET", "LOCAL → REMOTE", "STATE", "RECONNECTS"])
    assert.deepStrictEqual(headers(60), ["NAME", "TARGET", "LOCAL → REMOTE", "STATE"])
    assert.deepStrictEqual(headers(50), ["NAME", "LOCAL → REMOTE", "STATE"])
    // then the ports, so that the state stays
    assert.deepStrictEqual(headers(24), ["NAME", "LOCAL → RE…", "STATE"])
    assert.deepStrictEqual(headers(20), ["NAME", "STATE"])
  })

  it("a long name is cut with … to its column, and the row still fits", () => {
    const lines = Table.render(fold(["web", LONG], sequence), { width: 100, colour: false, now })
    const row = lines[2]
    assert.isTrue(row.startsWith("a-forward-with-a-name-m…"), row)
    assert.notInclude(row, LONG)
    assert.isAtMost(Table.visibleWidth(row), 100)
  })

  it("colour only when asked: the state painted, the widths unchanged", () => {
    const plain = Table.render(rows, { width: 140, colour: false, now })
    const coloured = Table.render(rows, { width: 140, colour: true, now })
    assert.isFalse(plain.some((l) => l.includes(ESC)), "no escape codes without colour")
    assert.include(coloured[1], `${ESC}[32mReady`)
    assert.deepStrictEqual(coloured.map((l) => l.replace(SGR, "")), plain)
  })

  it("more rows than the terminal has: the rest summed up, the footer kept", () => {
    const names = Array.from({ length: 12 }, (_, i) => `f${i}`)
    const lines = Table.render(Board.make(plan(names), T0), {
      width: 80,
      height: 8,
      colour: false,
      now: T0,
      footer: ["hint"]
    })
    assert.strictEqual(lines.length, 7, "header, 4 rows, the summary, the footer: one line of the height to spare")
    assert.strictEqual(lines.at(-2), "… and 8 more")
    assert.strictEqual(lines.at(-1), "hint")
  })

  it("formats SINCE in the largest units that matter", () => {
    assert.deepStrictEqual([0, 5_000, 65_000, 3_600_000 + 120_000, 90_000_000].map(Table.formatSince), [
      "0s",
      "5s",
      "1m05s",
      "1h02m",
      "1d01h"
    ])
  })
})

describe("Table on narrow terminals", () => {
  const now = T0 + 125_000

  for (const width of [100, 80, 60, 40, 30, 24, 20, 8]) {
    it(`a ${width}-column terminal: no line is wider, nothing wraps, the state stays in view`, () => {
      // every row Ready, then web Reconnecting #2 (the widest state) and the long name Starting
      for (const changes of [sequence, sequence.slice(0, 5)]) {
        const board = fold(["web", LONG], changes)
        const lines = Table.render(board, { width, colour: true, now, footer: ["Ctrl-C to stop"] })
        for (const line of lines) assert.isAtMost(Table.visibleWidth(line), width, JSON.stringify(line))
        const plain = lines.map((l) => l.replace(SGR, ""))
        board.forEach((row, i) => {
          assert.strictEqual(plain[i + 1][0], row.name[0], `the name starts the row: ${plain[i + 1]}`)
          // down to 20 columns the whole state; below, as much of it as fits
          const state = width >= 20 ? Table.stateText(row) : Table.stateText(row).slice(0, 2)
          assert.match(plain[i + 1], new RegExp(`  ${state}`), `${width} columns: ${JSON.stringify(plain)}`)
        })
        assert.include(plain[0], width >= 20 ? "STATE" : "ST")
      }
    })
  }
})

describe("Table: the STATE column", () => {
  const now = T0 + 125_000
  const [web, db] = fold(["web", "db"], sequence)
  const board = [
    { ...web, state: "Reconnecting" as const, attempt: 100 },
    { ...db, state: "Reconnecting" as const, attempt: 12 }
  ]
  const stateOf = (width: number, i: number) =>
    Table.render(board, { width, colour: false, now })[i + 1].split(/ {2,}/).find((c) => c.startsWith("Re"))

  it("is as wide as its longest value: Reconnecting #100 whole at 120 columns", () => {
    assert.strictEqual(stateOf(120, 0), "Reconnecting #100")
    assert.strictEqual(stateOf(120, 1), "Reconnecting #12")
  })

  it("stays whole beside three characters of the name: from 22 columns for #100, 21 for #12", () => {
    assert.match(Table.render(board, { width: 22, colour: false, now })[1], /^web  Reconnecting #100$/)
    assert.match(Table.render([board[1]], { width: 21, colour: false, now })[1], /^db   Reconnecting #12$/)
    // one column less: the state is cut (with …), the name keeps its three
    assert.match(Table.render([board[1]], { width: 20, colour: false, now })[1], /^db   Reconnecting #…$/)
  })
})

describe("plain lines and JSON events", () => {
  it("one plain line per change", () => {
    let rows = Board.make(plan(["web", "db"]), T0)
    const lines = sequence.map((change) => {
      rows = Board.apply(rows, change)
      return PlainLines.line(Board.row(rows, change.name)!, change)
    })
    assert.deepStrictEqual(lines, [
      "db: Starting (attempt 1 failed): pod/db is not running (phase Pending)",
      "web: Ready 127.0.0.1:8080 -> 80, 127.0.0.1:43121 -> metrics (svc/web -n shop)",
      "db: Ready 127.0.0.1:40001 -> 5432 (pod/db)",
      "web: Reconnecting (attempt 1): port forward to service/web was lost: lost connection to pod",
      "web: Reconnecting (attempt 2): port forward to service/web was lost: lost connection to pod",
      "web: Ready 127.0.0.1:8080 -> 80, 127.0.0.1:43121 -> metrics (svc/web -n shop), reconnected 1 time"
    ])
  })

  it("one JSON object per change, with the error where there is one", () => {
    let rows = Board.make(plan(["web", "db"]), T0)
    const events = sequence.map((change) => {
      rows = Board.apply(rows, change)
      return JSON.parse(JsonEvents.encode({ _tag: "Status", row: Board.row(rows, change.name)!, change }, change.at))
    })
    assert.deepStrictEqual(events[0], {
      event: "status",
      time: new Date(T0 + 500).toISOString(),
      forward: "db",
      target: "pod/db",
      namespace: null,
      ports: [{ address: null, local: null, remote: 5432, targetPort: null }],
      state: "Starting",
      reconnects: 0,
      attempt: 2,
      error: { tag: "PodNotRunning", message: "pod/db is not running (phase Pending)" }
    })
    assert.deepStrictEqual(events.map((e) => [e.forward, e.state, e.error?.tag ?? null]), [
      ["db", "Starting", "PodNotRunning"],
      ["web", "Ready", null],
      ["db", "Ready", null],
      ["web", "Reconnecting", "ForwardLost"],
      ["web", "Reconnecting", "ForwardLost"],
      ["web", "Ready", null]
    ])
    assert.deepStrictEqual(events[5].ports[1], {
      address: "127.0.0.1",
      local: 43121,
      remote: "metrics",
      targetPort: 9090
    })
    const ready = JSON.parse(JsonEvents.encode({ _tag: "Ready", rows }, T0))
    assert.deepStrictEqual(ready.forwards.map((f: { forward: string }) => f.forward), ["web", "db"])
    assert.deepStrictEqual(JSON.parse(JsonEvents.encode({ _tag: "Exit", code: 3, reason: "forward failed" }, T0)), {
      event: "exit",
      time: new Date(T0).toISOString(),
      code: 3,
      reason: "forward failed"
    })
  })
})

describe("Output.choose", () => {
  const stream = (isTTY: boolean) => ({ isTTY }) as unknown as NodeJS.WriteStream
  const choose = (o: { json?: boolean; commandMode?: boolean; tty?: boolean; env?: Record<string, string> }) =>
    Output.choose({
      json: o.json ?? false,
      commandMode: o.commandMode ?? false,
      stdout: stream(o.tty ?? true),
      stderr: stream(o.tty ?? true),
      env: o.env ?? {}
    })

  it("a terminal gets the table in colour; NO_COLOR (any value but empty) takes the colour away", () => {
    assert.deepInclude(choose({}), { mode: "table", colour: true })
    assert.deepInclude(choose({ env: { NO_COLOR: "1" } }), { mode: "table", colour: false })
    assert.deepInclude(choose({ env: { NO_COLOR: "" } }), { mode: "table", colour: true })
  })

  it("no terminal: plain lines, no colour; --json: events; -- mode: stderr, never the table", () => {
    assert.deepInclude(choose({ tty: false }), { mode: "plain", colour: false })
    assert.strictEqual(choose({ json: true }).mode, "json")
    const command = choose({ commandMode: true })
    assert.strictEqual(command.mode, "plain")
    assert.strictEqual(
      command.stream,
      Output.choose({ json: false, commandMode: true, stdout: stream(true), stderr: command.stream, env: {} }).stream
    )
  })
})
