/**
 * Waiting on events in tests: a `Signal` is notified whenever something a test may wait for
 * has changed (a line arrived, a frame was written, a process exited), and `when` waits until a
 * condition over that state answers — checked at once and on every notification, never on a
 * timer.
 */
import { Effect } from "effect"

export class Signal {
  private readonly listeners = new Set<() => void>()

  /** Something changed: re-check every pending wait. */
  readonly notify = (): void => {
    for (const listener of [...this.listeners]) listener()
  }

  /**
   * Waits until `poll` answers with the effect to finish with (`undefined` while not yet).
   * Interrupting the wait removes it.
   */
  when<A, E = never>(poll: () => Effect.Effect<A, E> | undefined): Effect.Effect<A, E> {
    return Effect.callback<A, E>((resume) => {
      const check = (): boolean => {
        const outcome = poll()
        if (outcome === undefined) return false
        resume(outcome)
        return true
      }
      if (check()) return
      const listener = () => {
        if (check()) this.listeners.delete(listener)
      }
      this.listeners.add(listener)
      return Effect.sync(() => this.listeners.delete(listener))
    })
  }

  /** Waits until `ready` returns a value. */
  until<A>(ready: () => A | undefined): Effect.Effect<A> {
    return this.when(() => {
      const value = ready()
      return value === undefined ? undefined : Effect.succeed(value)
    })
  }
}

/** A small deterministic PRNG (mulberry32), so that failures reproduce. */
export const seeded = (seed: number) => (): number => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
