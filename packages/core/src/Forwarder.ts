/**
 * The carrier of a forward: the service that runs one attempt of it.
 *
 * `PortForward.make` owns everything a forward goes through whatever carries its bytes —
 * decoding the spec, choosing local ports, retrying the start, the ready timeout, status,
 * keepalive, reconnection and close. A `Forwarder` only starts the carrier on the local ports
 * it is given and says when it is ready, how to check it, and when it ended by itself. Two
 * carriers exist: kubectl (`KubectlForwarder`, the default and the reference) and the
 * in-process one of `@kube-forward/native`. A program switches by providing another layer.
 *
 * An attempt belongs to the scope `start` runs in: closing that scope stops the carrier and
 * returns only when its local ports can be bound again.
 *
 * @since 0.2.0
 */
import { Context, type Effect, type Scope } from "effect"
import type { ForwardSpec, RemotePort } from "./ForwardSpec.ts"
import type { OpenError } from "./PortForwardError.ts"

/**
 * One forwarded port: where it listens locally and where it goes.
 *
 * @category models
 * @since 0.1.0
 */
export interface ForwardedPort {
  /** The local address it listens on (the first one, when several were asked for). */
  readonly address: string
  /** The local port. */
  readonly local: number
  /** The remote port as requested: a number or a container port name. */
  readonly remote: RemotePort
  /** The container port the bytes reach, as the carrier resolved it (a service port is mapped to its target port). */
  readonly targetPort: number
}

/**
 * What one attempt is asked to do.
 *
 * @category models
 * @since 0.2.0
 */
export interface AttemptRequest {
  /** The decoded spec. */
  readonly spec: ForwardSpec
  /** The local port of each of `spec.ports`, in order; `0` lets the operating system choose at bind time. */
  readonly locals: ReadonlyArray<number>
  /** Whether a local port was chosen by the library (so a `PortInUse` on it is worth a retry). */
  readonly isDynamic: (local: number) => boolean
}

/**
 * Why a running attempt ended by itself.
 *
 * @category models
 * @since 0.2.0
 */
export interface Ended {
  /** A short reason a person can read, e.g. `lost connection to pod`. */
  readonly reason: string
  /** The carrier's exit code, when it was a process. */
  readonly exitCode: number | null
}

/**
 * One running attempt: ready, owned by the scope it was started in.
 *
 * @category models
 * @since 0.2.0
 */
export interface Attempt {
  /** Every port, in the order of the spec, listening. */
  readonly ports: ReadonlyArray<ForwardedPort>
  /**
   * Makes one check connection through each port and fails with the most specific error if one
   * does not reach the pod (`RemoteRefused` when the pod refused it). Run at most once, right
   * after the start; `PortForward.make` runs it unless the spec says `verify: false`.
   */
  readonly verify: Effect.Effect<void, OpenError>
  /** Completes when the carrier stopped by itself (not when it was stopped), with why. */
  readonly ended: Effect.Effect<Ended>
}

/**
 * The carrier service.
 *
 * @category services
 * @since 0.2.0
 */
export class Forwarder extends Context.Service<Forwarder, {
  /** The carrier's name, for spans, metrics and messages: `kubectl`, `native`, … */
  readonly backend: string
  /** The namespace it applies when a spec names none (absent: the kubeconfig context's). */
  readonly namespace: string | undefined
  /**
   * Starts one attempt and waits until every port is listening (not verified yet). Fails with
   * the most specific error; whatever it started belongs to the current scope, which the
   * caller closes to stop it.
   */
  readonly start: (request: AttemptRequest) => Effect.Effect<Attempt, OpenError, Scope.Scope>
}>()("@kube-forward/core/Forwarder") {}
