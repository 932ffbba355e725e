/**
 * The process's stop signals, as a scoped listener.
 *
 * @internal
 */
import { Effect, type Scope } from "effect"

/** The signals that ask the command to stop. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const

/** A stop signal. */
export type StopSignal = typeof STOP_SIGNALS[number]

/** Calls `handler` on every stop signal while the scope is open. */
export const listen = (handler: (signal: StopSignal) => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      for (const signal of STOP_SIGNALS) process.on(signal, handler)
    }),
    () =>
      Effect.sync(() => {
        for (const signal of STOP_SIGNALS) process.off(signal, handler)
      })
  )
