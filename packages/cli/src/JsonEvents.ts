/**
 * The events of `--json`: one JSON object per line, for scripts and editors.
 *
 * ```json
 * {"event":"status","time":"2025-01-01T12:00:00.000Z","forward":"web","target":"svc/web","namespace":"shop","state":"Ready","ports":[{"address":"127.0.0.1","local":43121,"remote":80,"targetPort":8080}],"reconnects":0,"attempt":1}
 * {"event":"status",…,"state":"Reconnecting","attempt":1,"error":{"tag":"ForwardLost","message":"port forward to pod/web was lost: lost connection to pod"}}
 * {"event":"ready","time":"…","forwards":[{"forward":"web","target":"svc/web","namespace":"shop","ports":[…]}]}
 * {"event":"exit","time":"…","code":0,"reason":"stopped"}
 * ```
 *
 * - `status`: a forward changed: `state` is `Starting`, `Ready`, `Reconnecting`, `Closed` or
 *   `Failed`; `error` (tag and message) comes with a failed start-up attempt, `Reconnecting` and
 *   `Failed`; `ports[].local` is `null` until a dynamic port is chosen.
 * - `ready`: every forward is ready (once per run, after the first time all are).
 * - `exit`: the run is over, with the exit code the command is about to exit with.
 *
 * @since 0.1.0
 */
import type { Change, Row } from "./Board.ts"

/**
 * One event.
 *
 * @category models
 * @since 0.1.0
 */
export type Event =
  | { readonly _tag: "Status"; readonly row: Row; readonly change: Change }
  | { readonly _tag: "Ready"; readonly rows: ReadonlyArray<Row> }
  | { readonly _tag: "Exit"; readonly code: number; readonly reason: string }

const ports = (row: Row) =>
  row.ports.map((p) => ({
    address: p.address ?? null,
    local: p.local ?? null,
    remote: p.remote,
    targetPort: p.targetPort ?? null
  }))

const forward = (row: Row) => ({
  forward: row.name,
  target: row.target,
  namespace: row.namespace ?? null,
  ports: ports(row)
})

const errorOf = (row: Row, change: Change) => {
  const withError = change._tag !== "Status" || row.state === "Reconnecting" || row.state === "Failed"
  return withError && row.lastError !== undefined
    ? { error: { tag: row.lastError._tag, message: row.lastError.message } }
    : {}
}

/**
 * The JSON line of `event` at `at` (epoch milliseconds), without a line break.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encode = (event: Event, at: number): string => {
  const time = new Date(at).toISOString()
  switch (event._tag) {
    case "Status": {
      const { change, row } = event
      return JSON.stringify({
        event: "status",
        time,
        ...forward(row),
        state: row.state,
        reconnects: row.reconnects,
        attempt: row.attempt,
        ...errorOf(row, change)
      })
    }
    case "Ready":
      return JSON.stringify({ event: "ready", time, forwards: event.rows.map(forward) })
    case "Exit":
      return JSON.stringify({ event: "exit", time, code: event.code, reason: event.reason })
  }
}
