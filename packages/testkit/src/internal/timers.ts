/**
 * The cluster's own timers (REST delays, watch timeouts), all cleared when the cluster closes.
 *
 * @internal
 */

/** A set of pending timeouts. */
export class Timers {
  private readonly pending = new Set<ReturnType<typeof setTimeout>>()

  /** Runs `f` after `ms`, unless {@link Timers.clear} comes first. */
  after(ms: number, f: () => void): void {
    const timer = setTimeout(() => {
      this.pending.delete(timer)
      f()
    }, ms)
    this.pending.add(timer)
  }

  /** Cancels every pending timeout. */
  clear(): void {
    for (const timer of this.pending) clearTimeout(timer)
    this.pending.clear()
  }
}
