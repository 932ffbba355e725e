/**
 * Waiting on the real clock, for what concerns operating-system processes and sockets: a test
 * may replace the Effect `Clock` with a `TestClock` that never advances, and a kubectl process
 * must still get its SIGKILL.
 *
 * @internal
 */
import { Effect } from "effect"

/** Sleeps `millis` milliseconds of real time; interruption clears the timer. */
export const realSleep = (millis: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })
