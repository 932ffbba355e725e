/**
 * One plain line per change, for output that is not a terminal (a log, a pipe, CI): no colour,
 * no redrawing, nothing but the change.
 *
 * ```
 * web: Starting svc/web -n shop ?→80
 * web: Ready 127.0.0.1:43121 -> 80 (svc/web -n shop)
 * web: Reconnecting (attempt 1): lost connection to pod
 * web: Ready 127.0.0.1:43121 -> 80 (svc/web -n shop), reconnected 1 time
 * ```
 *
 * @since 0.1.0
 */
import type { Change, Row } from "./Board.ts"
import { errorText, targetText } from "./Table.ts"

const portList = (row: Row): string =>
  row.ports.map((p) => `${p.address ?? "127.0.0.1"}:${p.local ?? "?"} -> ${p.remote}`).join(", ")

const times = (n: number) => `${n} ${n === 1 ? "time" : "times"}`

/**
 * The line for `change`, given the row as it is after it.
 *
 * @category rendering
 * @since 0.1.0
 */
export const line = (row: Row, change: Change): string => {
  const name = `${row.name}:`
  if (change._tag === "AttemptFailed") return `${name} Starting (attempt ${row.attempt - 1} failed): ${errorText(row)}`
  switch (row.state) {
    case "Starting":
      return `${name} Starting ${targetText(row)} ${portList(row)}`
    case "Ready":
      return `${name} Ready ${portList(row)} (${targetText(row)})${
        row.reconnects > 0 ? `, reconnected ${times(row.reconnects)}` : ""
      }`
    case "Reconnecting":
      return `${name} Reconnecting (attempt ${row.attempt}): ${errorText(row)}`
    case "Closed":
      return `${name} Closed`
    case "Failed":
      return `${name} Failed: ${errorText(row)}`
  }
}
