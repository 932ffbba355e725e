/**
 * What a port-forward session needs from the cluster: counters, the pod it forwards to, and how
 * to reach that pod's ports.
 *
 * @internal
 */

/** Mutable counters shared by the server and its sessions. */
export interface Counters {
  sessionsSpdy: number
  sessionsTunnel: number
  sessionsWebsocket: number
  activeSessions: number
  streams: number
  connections: number
  bytesToPod: number
  bytesFromPod: number
  restRequests: number
  upgradeRequests: number
}

/** Fresh zeroed counters. */
export const makeCounters = (): Counters => ({
  sessionsSpdy: 0,
  sessionsTunnel: 0,
  sessionsWebsocket: 0,
  activeSessions: 0,
  streams: 0,
  connections: 0,
  bytesToPod: 0,
  bytesFromPod: 0,
  restRequests: 0,
  upgradeRequests: 0
})

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
  readonly counters: Counters
  /** Call after changing `counters`, so that `FakeCluster.awaitCounters` waiters re-check. */
  readonly countersChanged?: (() => void) | undefined
  readonly pod: PodRef
  /** Where the pod's port is served, or undefined when nothing listens there. */
  readonly resolve: (port: number) => Promise<Address | undefined>
  /** Kubelet-style cause for a port nothing listens on. */
  readonly refusedCause: (port: number) => string
  /** Kubelet-style cause for a failed dial. */
  readonly dialCause: (port: number, error: NodeJS.ErrnoException) => string
  readonly debug?: ((message: string) => void) | undefined
}
