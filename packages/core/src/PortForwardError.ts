/**
 * The typed failures of a port forward.
 *
 * Every way a forward can fail is one member of the {@link PortForwardError} union. Each member
 * has a `message` a person can act on and carries its own retry rules, as getters:
 * `isTransient` (a later start may succeed: a pod that is not running yet, a cluster that
 * cannot be reached, a timeout) and `isReconnectable` (a forward that was ready may come back
 * after it). {@link isTransient} and {@link isReconnectable} read them.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

const TypeId = "~@kube-forward/core/PortForwardError"

const inNamespace = (namespace: string | undefined) => namespace === undefined ? "" : ` in namespace ${namespace}`

/**
 * One problem found while decoding a forward spec: the path of the field and what is wrong
 * with it.
 *
 * @category models
 * @since 0.1.0
 */
export const SpecIssue = Schema.Struct({
  path: Schema.String,
  message: Schema.String
})

/**
 * @category models
 * @since 0.1.0
 */
export type SpecIssue = typeof SpecIssue.Type

/**
 * The local port is already taken at that address, by another forward or any other program.
 * Retried only when the port was chosen dynamically (a fresh port is then tried); a fixed port
 * that is taken stays taken.
 *
 * @category errors
 * @since 0.1.0
 */
export class PortInUse extends Schema.TaggedError<PortInUse>("@kube-forward/core/PortInUse")("PortInUse", {
  port: Schema.Number,
  address: Schema.String,
  /** Whether the port was picked by the library (dynamic) rather than asked for by the user. */
  dynamic: Schema.Boolean
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `local port ${this.port} on ${this.address} is already in use`
  }
  /**
   * Only when the spec did not fix the port (the library or the OS chose it): a fresh port is tried then; a fixed port that is taken stays taken.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return this.dynamic
  }
  /**
   * A ready forward's ports were free before; the other program may let go.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The target does not exist: no such pod, service, deployment or statefulset in that
 * namespace, or a service or workload whose selector matches no pod.
 *
 * @category errors
 * @since 0.1.0
 */
export class PodNotFound extends Schema.TaggedError<PodNotFound>("@kube-forward/core/PodNotFound")("PodNotFound", {
  target: Schema.String,
  /** The namespace, when one was given (otherwise kubectl's current namespace was used). */
  namespace: Schema.UndefinedOr(Schema.String),
  /** kubectl's own words, e.g. `pods "web" not found`. */
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.target} not found${inNamespace(this.namespace)} (${this.detail})`
  }
  /**
   * A later start would fail the same way. (a missing object rarely appears by itself).
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A pod being deleted and recreated, or a rollout, comes back.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The target has no such port: a service without that service port, or a pod without a
 * container port of that name.
 *
 * @category errors
 * @since 0.2.0
 */
export class PortNotFound extends Schema.TaggedError<PortNotFound>("@kube-forward/core/PortNotFound")("PortNotFound", {
  target: Schema.String,
  remotePort: Schema.Union([Schema.Number, Schema.String]),
  /** What the carrier said, e.g. `Service web does not have a service port 9999`. */
  detail: Schema.String
}) {
  /** @since 0.2.0 */
  readonly [TypeId] = TypeId
  /** @since 0.2.0 */
  override get message(): string {
    return `${this.target} has no port ${this.remotePort}: ${this.detail}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A rollout may bring the port back.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The pod exists but is not in the `Running` phase, so it cannot be forwarded to yet (or any
 * more).
 *
 * @category errors
 * @since 0.1.0
 */
export class PodNotRunning extends Schema.TaggedError<PodNotRunning>("@kube-forward/core/PodNotRunning")(
  "PodNotRunning",
  {
    target: Schema.String,
    /** The namespace, when one was given (otherwise kubectl's current namespace was used). */
    namespace: Schema.UndefinedOr(Schema.String),
    phase: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.target}${inNamespace(this.namespace)} is not running (phase ${this.phase})`
  }
  /**
   * The pod may be starting.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return true
  }
  /**
   * A reconnect policy keeps trying after it.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * A stage of the forward's start-up did not finish in time.
 *
 * - `ready`: kubectl did not print a `Forwarding from` line for every port in time (for
 *   example, the API server never answered the upgrade);
 * - `verify`: the check connection through the forward did not complete in time.
 *
 * @category errors
 * @since 0.1.0
 */
export class Timeout extends Schema.TaggedError<Timeout>("@kube-forward/core/Timeout")("Timeout", {
  stage: Schema.Literals(["ready", "verify"]),
  /** The limit that ran out, in milliseconds. */
  after: Schema.Number,
  target: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const what = this.stage === "ready" ? "to become ready" : "to carry a test connection to the pod"
    return `port forward to ${this.target} took longer than ${this.after} ms ${what}`
  }
  /**
   * A later start may succeed.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return true
  }
  /**
   * A reconnect policy keeps trying after it.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The kubectl binary could not be started: it is not installed, not on `PATH`, or the
 * configured path is wrong.
 *
 * @category errors
 * @since 0.1.0
 */
export class KubectlNotFound extends Schema.TaggedError<KubectlNotFound>("@kube-forward/core/KubectlNotFound")(
  "KubectlNotFound",
  {
    binary: Schema.String,
    detail: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `kubectl could not be started (${this.binary}): ${this.detail}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A reconnect policy gives up at once.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return false
  }
}

/**
 * The Kubernetes API server could not be reached (connection refused, DNS failure, network
 * timeout), or its certificate did not verify (`tls: true`; the detail says why in words).
 *
 * @category errors
 * @since 0.1.0
 */
export class ClusterUnreachable extends Schema.TaggedError<ClusterUnreachable>(
  "@kube-forward/core/ClusterUnreachable"
)("ClusterUnreachable", {
  detail: Schema.String,
  /** The connection was made but TLS failed: a configuration problem, not retried. */
  tls: Schema.optional(Schema.Boolean)
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return this.tls === true
      ? `the Kubernetes API server's certificate was not accepted: ${this.detail}`
      : `the Kubernetes API server could not be reached: ${this.detail}`
  }
  /**
   * The API server may be back; a certificate that did not verify will not verify later.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return this.tls !== true
  }
  /**
   * As {@link isTransient}.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return this.tls !== true
  }
}

/**
 * The kubeconfig could not be used: a file that does not exist or does not parse, a context
 * that is not in it, a cluster without a server. Nothing was sent to any cluster.
 *
 * @category errors
 * @since 0.2.0
 */
export class KubeconfigInvalid extends Schema.TaggedError<KubeconfigInvalid>("@kube-forward/core/KubeconfigInvalid")(
  "KubeconfigInvalid",
  {
    /** What is wrong, e.g. `context was not found for specified context: staging`. */
    detail: Schema.String
  }
) {
  /** @since 0.2.0 */
  readonly [TypeId] = TypeId
  /** @since 0.2.0 */
  override get message(): string {
    return `the kubeconfig cannot be used: ${this.detail}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A reconnect policy gives up at once.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return false
  }
}

/**
 * The API server understood who we are but does not allow the request (RBAC), for example
 * `create` on `pods/portforward`.
 *
 * @category errors
 * @since 0.1.0
 */
export class Forbidden extends Schema.TaggedError<Forbidden>("@kube-forward/core/Forbidden")("Forbidden", {
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `the API server refused the request: ${this.detail}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A reconnect policy gives up at once.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return false
  }
}

/**
 * The API server did not accept our credentials.
 *
 * @category errors
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("@kube-forward/core/Unauthorized")(
  "Unauthorized",
  {
    detail: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `the API server did not accept the credentials: ${this.detail}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A reconnect policy gives up at once.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return false
  }
}

/**
 * The spec was rejected before anything was started. `issues` names each field and what is
 * wrong with it.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidSpec extends Schema.TaggedError<InvalidSpec>("@kube-forward/core/InvalidSpec")("InvalidSpec", {
  issues: Schema.Array(SpecIssue)
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `invalid port-forward spec: ${this.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A reconnect policy gives up at once.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return false
  }
}

/**
 * The pod did not accept a connection on the remote port (nothing listens there, or it
 * refused), as reported by the kubelet through kubectl.
 *
 * @category errors
 * @since 0.1.0
 */
export class RemoteRefused extends Schema.TaggedError<RemoteRefused>("@kube-forward/core/RemoteRefused")(
  "RemoteRefused",
  {
    target: Schema.String,
    remotePort: Schema.Union([Schema.Number, Schema.String]),
    detail: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.target} did not accept a connection on port ${this.remotePort}: ${this.detail}`
  }
  /**
   * The process in the pod may still be starting.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return true
  }
  /**
   * A reconnect policy keeps trying after it.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * A forward that was ready stopped carrying traffic: kubectl exited (the pod restarted or went
 * away, the API server dropped the connection, kubectl was killed) or the keepalive probe
 * failed.
 *
 * @category errors
 * @since 0.1.0
 */
export class ForwardLost extends Schema.TaggedError<ForwardLost>("@kube-forward/core/ForwardLost")("ForwardLost", {
  target: Schema.String,
  reason: Schema.String,
  exitCode: Schema.NullOr(Schema.Number)
}) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `port forward to ${this.target} was lost: ${this.reason}`
  }
  /**
   * A later start may succeed.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return true
  }
  /**
   * A reconnect policy keeps trying after it.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * kubectl failed in a way no other error describes. Keeps what kubectl printed on stderr (and
 * nothing else) and how it ended, so nothing is lost; `detail` is what the library itself saw
 * when kubectl could not say (for example a spawn that failed for lack of resources).
 *
 * @category errors
 * @since 0.1.0
 */
export class KubectlFailed extends Schema.TaggedError<KubectlFailed>("@kube-forward/core/KubectlFailed")(
  "KubectlFailed",
  {
    exitCode: Schema.NullOr(Schema.Number),
    signal: Schema.NullOr(Schema.String),
    /** Every line kubectl printed on stderr (the last 500), as it printed them. */
    stderr: Schema.String,
    /** The library's own words, when it saw something kubectl did not print. */
    detail: Schema.optional(Schema.String)
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const how = this.signal !== null
      ? `was killed by ${this.signal}`
      : this.exitCode !== null
      ? `exited with code ${this.exitCode}`
      : "failed"
    const text = this.stderr.trim()
    // it never ran (a spawn that failed): the library's words alone
    if (text.length === 0 && this.exitCode === null && this.signal === null && this.detail !== undefined) {
      return this.detail
    }
    const printed = text.length > 0 ? `kubectl ${how}: ${text}` : `kubectl ${how} without printing an error`
    return this.detail === undefined ? printed : `${printed} (${this.detail})`
  }
  /**
   * A later start would fail the same way (nothing known says otherwise).
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * An API server that was restarting, say.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The check connection through a local port of the forward failed, and the carrier said
 * nothing that explains it (kubectl printed no error and is still running). `detail` is the
 * socket error the library saw.
 *
 * @category errors
 * @since 0.2.0
 */
export class VerifyFailed extends Schema.TaggedError<VerifyFailed>("@kube-forward/core/VerifyFailed")(
  "VerifyFailed",
  {
    target: Schema.String,
    /** The local port the check connection was made to. */
    localPort: Schema.Number,
    /** The socket error, e.g. `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:8080`. */
    detail: Schema.String
  }
) {
  /** @since 0.2.0 */
  readonly [TypeId] = TypeId
  /** @since 0.2.0 */
  override get message(): string {
    return `the check connection through local port ${this.localPort} to ${this.target} failed: ${this.detail}`
  }
  /**
   * A later start would most likely fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A forward that was ready may come back.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The API server answered with an error no other member describes (a `500`, a `429`, a proxy
 * in the way that answered `502`, …). Only carriers that talk to the API server themselves
 * report it (kubectl reports such answers as `KubectlFailed`).
 *
 * @category errors
 * @since 0.2.0
 */
export class ApiServerError extends Schema.TaggedError<ApiServerError>("@kube-forward/core/ApiServerError")(
  "ApiServerError",
  {
    /** The HTTP status. */
    status: Schema.Number,
    /** The server's own message (the `message` of its `Status`, or the body). */
    detail: Schema.String
  }
) {
  /** @since 0.2.0 */
  readonly [TypeId] = TypeId
  /** @since 0.2.0 */
  override get message(): string {
    return `the API server answered ${this.status}: ${this.detail}`
  }
  /**
   * A server error or a rate limit may pass; a client error will not.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return this.status >= 500 || this.status === 429
  }
  /**
   * A forward that was ready may come back.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return true
  }
}

/**
 * The port allocator had no free local port left in its range.
 *
 * @category errors
 * @since 0.1.0
 */
export class PortsExhausted extends Schema.TaggedError<PortsExhausted>("@kube-forward/core/PortsExhausted")(
  "PortsExhausted",
  {
    from: Schema.Number,
    to: Schema.Number,
    address: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `no free local port in ${this.from}-${this.to} on ${this.address}`
  }
  /**
   * A later start would fail the same way.
   *
   * @since 0.2.0
   */
  get isTransient(): boolean {
    return false
  }
  /**
   * A reconnect policy gives up at once.
   *
   * @since 0.2.0
   */
  get isReconnectable(): boolean {
    return false
  }
}

/**
 * Every way a port forward can fail.
 *
 * @category errors
 * @since 0.1.0
 */
export type PortForwardError =
  | PortInUse
  | PodNotFound
  | PortNotFound
  | PodNotRunning
  | Timeout
  | KubectlNotFound
  | ClusterUnreachable
  | KubeconfigInvalid
  | Forbidden
  | Unauthorized
  | InvalidSpec
  | RemoteRefused
  | ForwardLost
  | KubectlFailed
  | VerifyFailed
  | ApiServerError
  | PortsExhausted

/**
 * What opening a forward can fail with: every {@link PortForwardError} except `ForwardLost`,
 * which only a forward that was open can end with.
 *
 * @category errors
 * @since 0.2.0
 */
export type OpenError = Exclude<PortForwardError, ForwardLost>

/**
 * Tells whether a value is one of the {@link PortForwardError} members.
 *
 * @category guards
 * @since 0.1.0
 */
export const isPortForwardError = (u: unknown): u is PortForwardError => Predicate.hasProperty(u, TypeId)

/**
 * Whether a later attempt may succeed where this one failed; each error carries its own rule
 * (its `isTransient` getter). Retry policies only ever retry transient errors:
 *
 * - transient: `PodNotRunning`, `ClusterUnreachable` (but not a certificate that did not
 *   verify), `Timeout`,
 *   `RemoteRefused` (the process in the pod may still be starting), `ForwardLost`,
 *   and `PortInUse` on a port the spec did not fix;
 * - permanent: `InvalidSpec`, `PortInUse` on a fixed port, `PodNotFound`, `Forbidden`,
 *   `Unauthorized`, `KubeconfigInvalid`, `KubectlNotFound`, `KubectlFailed`, `VerifyFailed`,
 *   `PortsExhausted`.
 *
 * @category predicates
 * @since 0.1.0
 */
export const isTransient = (error: PortForwardError): boolean => error.isTransient

/**
 * Whether a reconnect policy keeps trying after this failure (the error's `isReconnectable`
 * getter). A forward that was ready has proven its spec, kubectl and permissions, so
 * reconnection is more patient than the first start: besides the transient errors it also
 * retries `PodNotFound` (a pod being deleted and recreated, or a rollout), `PortInUse`,
 * `KubectlFailed` (an API server restarting) and `VerifyFailed`. It gives up at once only on
 * `InvalidSpec`, `KubeconfigInvalid`, `KubectlNotFound`, `Forbidden`, `Unauthorized` and
 * `PortsExhausted`; the
 * reconnect schedule bounds everything else.
 *
 * @category predicates
 * @since 0.1.0
 */
export const isReconnectable = (error: PortForwardError): boolean => error.isReconnectable
