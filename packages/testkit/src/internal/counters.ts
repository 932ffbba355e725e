/**
 * The cluster's counters: one mutable record of the public `FakeCluster.Counters` shape, written by
 * the server and its sessions, and the change notification `awaitCounters` waits on.
 *
 * @internal
 */
import type { Counters } from "../FakeCluster.ts"

/** `FakeCluster.Counters`, writable. */
export type MutableCounters = {
  -readonly [K in keyof Counters]: Counters[K] extends number ? number : { -readonly [S in keyof Counters[K]]: number }
}

/** Fresh zeroed counters. */
export const zero = (): MutableCounters => ({
  sessions: { spdy: 0, tunnel: 0, websocket: 0 },
  activeSessions: 0,
  streams: 0,
  connections: 0,
  bytesToPod: 0,
  bytesFromPod: 0,
  restRequests: 0,
  upgradeRequests: 0,
  activeWatches: 0,
  unauthorized: 0,
  forbidden: 0
})

/**
 * The counters and their listeners. Writers change `value` and then call `changed`; listeners run on
 * the next microtask, once per burst of synchronous changes, so they see a consistent state.
 */
export class CounterBoard {
  readonly value: MutableCounters = zero()
  private readonly listeners = new Set<() => void>()
  private scheduled = false

  /** Marks the counters changed (cheap: called for every chunk of forwarded bytes). */
  readonly changed = (): void => {
    if (this.scheduled || this.listeners.size === 0) return
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      for (const listener of [...this.listeners]) listener()
    })
  }

  /** Calls `listener` after changes; returns the function that removes it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  /** A copy of the counters. */
  snapshot(): Counters {
    return { ...this.value, sessions: { ...this.value.sessions } }
  }

  /** Zeroes the counters except the `active*` gauges. */
  reset(): void {
    const { activeSessions, activeWatches } = this.value
    Object.assign(this.value, zero(), { activeSessions, activeWatches })
    this.changed()
  }
}
