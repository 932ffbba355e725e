/**
 * The faults a test sets on purpose: an upgrade fault (a status, a close without one, or a hang
 * that holds the request) and a delay on every REST response.
 *
 * @internal
 */
import type * as Stream from "node:stream"
import type { UpgradeFault } from "../FakeCluster.ts"

/** The cluster's current faults, and the upgrade requests a `Hang` holds. */
export class Faults {
  private fault: UpgradeFault | undefined = undefined
  private delayMs = 0
  private readonly held = new Set<Stream.Duplex>()

  /** The fault applied to upgrades now. */
  get upgrade(): UpgradeFault | undefined {
    return this.fault
  }

  /** The REST delay in milliseconds (0: none). */
  get restDelayMs(): number {
    return this.delayMs
  }

  /** Sets or clears the upgrade fault; anything but `Hang` lets the held requests go (closed). */
  setUpgrade(fault: UpgradeFault | undefined): void {
    this.fault = fault
    if (fault === undefined || fault._tag !== "Hang") this.releaseHeld()
  }

  /** Sets the REST delay. */
  setRestDelay(ms: number): void {
    this.delayMs = Math.max(0, ms)
  }

  /** Holds an upgrade request's socket, unanswered, until the fault changes or the cluster drops it. */
  hold(socket: Stream.Duplex): void {
    this.held.add(socket)
    socket.on("close", () => this.held.delete(socket))
    socket.resume()
  }

  /** Closes every held request. */
  releaseHeld(): void {
    for (const socket of this.held) socket.destroy()
    this.held.clear()
  }
}
