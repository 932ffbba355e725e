/**
 * The state of every forward of a run, as a pure function of what happened to them: the model
 * behind the live table, the plain lines and the JSON events.
 *
 * A board starts with every forward `Starting`, and {@link apply} folds in each {@link Change}:
 * a failed start-up attempt (still `Starting`, with its error), a status of the forward's
 * `status` stream (`Ready`, `Reconnecting`, `Closed`, `Failed`), or a start-up that failed for
 * good. `reconnects` counts the times a forward came back to `Ready` after `Reconnecting`.
 *
 * @since 0.1.0
 */
import type { PortForward, PortForwardError } from "@kube-forward/core"
import type { Plan } from "./Plan.ts"

/**
 * A forward's state.
 *
 * @category models
 * @since 0.1.0
 */
export type State = "Starting" | "Ready" | "Reconnecting" | "Closed" | "Failed"

/**
 * One port of a row: the local side is `undefined` until the forward is ready when the port is
 * chosen dynamically.
 *
 * @category models
 * @since 0.1.0
 */
export interface Port {
  readonly address: string | undefined
  readonly local: number | undefined
  readonly remote: number | string
  /** The container port the bytes reach, once ready. */
  readonly targetPort: number | undefined
}

/**
 * One forward on the board.
 *
 * @category models
 * @since 0.1.0
 */
export interface Row {
  readonly name: string
  /** The target as written (`svc/web`). */
  readonly target: string
  readonly namespace: string | undefined
  readonly ports: ReadonlyArray<Port>
  readonly state: State
  /** When the state began (epoch milliseconds). */
  readonly since: number
  /** How many times the forward came back after being lost. */
  readonly reconnects: number
  /** The attempt under way while `Starting` (after a failed one) or `Reconnecting`. */
  readonly attempt: number
  /** The latest error, kept after the forward recovered. */
  readonly lastError: PortForwardError.PortForwardError | undefined
}

/**
 * Something that happened to the forward `name` at `at` (epoch milliseconds).
 *
 * @category models
 * @since 0.1.0
 */
export type Change =
  | { readonly _tag: "Status"; readonly name: string; readonly at: number; readonly status: PortForward.ForwardStatus }
  | {
    readonly _tag: "AttemptFailed"
    readonly name: string
    readonly at: number
    readonly error: PortForwardError.PortForwardError
  }
  | {
    readonly _tag: "StartFailed"
    readonly name: string
    readonly at: number
    readonly error: PortForwardError.PortForwardError
  }

/**
 * The board of a plan: every forward `Starting` since `at`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (plan: Plan, at: number): ReadonlyArray<Row> =>
  plan.forwards.map((f) => ({
    name: f.name,
    target: f.target,
    namespace: f.spec.namespace,
    ports: f.spec.ports.map((p): Port =>
      typeof p === "object"
        ? { address: undefined, local: p.local, remote: p.remote, targetPort: undefined }
        : { address: undefined, local: undefined, remote: p, targetPort: undefined }
    ),
    state: "Starting",
    since: at,
    reconnects: 0,
    attempt: 1,
    lastError: undefined
  }))

const next = (row: Row, change: Change): Row => {
  const moved = (state: State) => state === row.state ? row.since : change.at
  switch (change._tag) {
    case "AttemptFailed":
      return { ...row, attempt: row.attempt + 1, lastError: change.error }
    case "StartFailed":
      return { ...row, state: "Failed", since: change.at, lastError: change.error }
    case "Status": {
      const s = change.status
      switch (s._tag) {
        case "Starting":
          return { ...row, state: "Starting", since: moved("Starting") }
        case "Ready":
          return {
            ...row,
            state: "Ready",
            since: moved("Ready"),
            attempt: 1,
            reconnects: row.state === "Reconnecting" ? row.reconnects + 1 : row.reconnects,
            ports: s.ports.map((p) => ({
              address: p.address,
              local: p.local,
              remote: p.remote,
              targetPort: p.targetPort
            }))
          }
        case "Reconnecting":
          return { ...row, state: "Reconnecting", since: moved("Reconnecting"), attempt: s.attempt, lastError: s.cause }
        case "Closed":
          return { ...row, state: "Closed", since: moved("Closed") }
        case "Failed":
          return { ...row, state: "Failed", since: moved("Failed"), lastError: s.error }
      }
    }
  }
}

/**
 * The board after `change` (rows of other forwards are kept as they are).
 *
 * @category combinators
 * @since 0.1.0
 */
export const apply = (rows: ReadonlyArray<Row>, change: Change): ReadonlyArray<Row> =>
  rows.map((row) => row.name === change.name ? next(row, change) : row)

/**
 * The row of `name`.
 *
 * @category getters
 * @since 0.1.0
 */
export const row = (rows: ReadonlyArray<Row>, name: string): Row | undefined => rows.find((r) => r.name === name)

/**
 * Whether every forward is `Ready`.
 *
 * @category getters
 * @since 0.1.0
 */
export const allReady = (rows: ReadonlyArray<Row>): boolean => rows.every((r) => r.state === "Ready")
