/**
 * What a port-forward session needs from the cluster: the counters, the pod it forwards to, and
 * where that pod's ports are served.
 *
 * @internal
 */
import type { MutableCounters } from "./counters.ts"

/** The pod a session forwards to. */
export interface PodRef {
  readonly namespace: string
  readonly name: string
  readonly uid: string
}

/** A TCP address. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** The cluster as seen by one session. */
export interface ForwardHost {
  readonly counters: MutableCounters
  /** Call after changing `counters`, so that `FakeCluster.awaitCounters` waiters re-check. */
  readonly countersChanged: () => void
  readonly pod: PodRef
  /** Where the pod's port is served, or undefined when nothing listens there. */
  readonly resolve: (port: number) => Promise<Address | undefined>
  /**
   * How a forwarded connection ends (SPDY): `undefined` passes each side's FIN on at once;
   * a number is containerd's way, where neither FIN is passed on and, once one side has ended,
   * both are closed when the other ends too or after this many milliseconds.
   */
  readonly containerdGraceMs?: number | undefined
  readonly debug?: ((message: string) => void) | undefined
}
