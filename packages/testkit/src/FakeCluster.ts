/**
 * An in-process fake Kubernetes API server that real `kubectl port-forward` (1.27–1.35, plain
 * SPDY/3.1 and the SPDY-over-WebSocket tunnel) and WebSocket clients such as
 * `@kubernetes/client-node` (`v4.channel.k8s.io`) port-forward through, byte for byte. Pods are
 * backed by local TCP servers ({@link Backend}); controls let tests break things on purpose.
 *
 * The cluster is a `Scope`-managed resource: the HTTP server (127.0.0.1, random port), the
 * kubeconfig and discovery-cache temp files, every backend it started, and every session are gone
 * when the scope closes.
 *
 * @example
 * ```ts
 * import { Backend, FakeCluster } from "@kube-forward/testkit"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* FakeCluster.make({
 *     pods: [{ name: "web", labels: { app: "web" }, containers: [{ name: "app", ports: [{ containerPort: 80, backend: Backend.http() }] }] }]
 *   })
 *   // spawn `kubectl port-forward pod/web :80` with `env: { ...process.env, ...cluster.env }`
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Schema, type Scope } from "effect"
import type { Backend } from "./Backend.ts"
import { Cluster } from "./internal/cluster.ts"

/**
 * A pod phase as in `status.phase`. kubectl refuses to forward unless it is `"Running"`.
 *
 * @category models
 * @since 0.1.0
 */
export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown"

/**
 * A container port and what answers behind it. Ports a pod does not declare refuse connections
 * (kubelet dials `localhost:PORT` inside the pod, and nothing listens there).
 *
 * @category models
 * @since 0.1.0
 */
export interface ContainerPort {
  /** The port's name, usable as `:http` on the kubectl command line or as a service `targetPort`. */
  readonly name?: string
  readonly containerPort: number
  readonly backend: Backend
}

/**
 * A container of a pod.
 *
 * @category models
 * @since 0.1.0
 */
export interface ContainerSpec {
  readonly name: string
  readonly ports: ReadonlyArray<ContainerPort>
}

/**
 * A pod. `namespace` defaults to `"default"`, `phase` to `"Running"`.
 *
 * @category models
 * @since 0.1.0
 */
export interface PodSpec {
  readonly name: string
  readonly namespace?: string
  readonly labels?: Record<string, string>
  readonly phase?: PodPhase
  readonly containers?: ReadonlyArray<ContainerSpec>
}

/**
 * A service port. `targetPort` defaults to `port`; a string is a container port name.
 *
 * @category models
 * @since 0.1.0
 */
export interface ServicePort {
  readonly name?: string
  readonly port: number
  readonly targetPort?: number | string
}

/**
 * A ClusterIP service selecting pods by label. `clusterIP: "None"` makes it headless (kubectl then
 * skips the port mapping).
 *
 * @category models
 * @since 0.1.0
 */
export interface ServiceSpec {
  readonly name: string
  readonly namespace?: string
  readonly selector: Record<string, string>
  readonly ports: ReadonlyArray<ServicePort>
  readonly clusterIP?: string
}

/**
 * A Deployment or StatefulSet: only its pod selector matters to `kubectl port-forward`. Its
 * replica counts in `status` are computed from the matching pods.
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkloadSpec {
  readonly name: string
  readonly namespace?: string
  readonly selector: Record<string, string>
}

/**
 * Which port-forward upgrades the server accepts.
 *
 * - `"tunnel"`: the SPDY-over-WebSocket tunnel (`SPDY/3.1+portforward.k8s.io`, kubectl ≥ 1.31 by
 *   default) and plain SPDY/3.1, like a 1.31+ API server.
 * - `"spdy-only"`: a server without the `PortForwardWebsockets` feature (before 1.31, or with the
 *   gate off): it hands the tunnel request to kubelet's WebSocket handler, which wants `?port=`,
 *   so the answer is exactly `400 Bad Request`, `text/plain`, `query parameter "port" is required`
 *   (K `pkg/kubelet/cri/streaming/portforward/websocket.go`; kubernetes issue #133913), and
 *   kubectl ≥ 1.31 silently falls back to SPDY.
 *
 * The WebSocket channel protocol (`v4.channel.k8s.io`) is accepted in both modes.
 *
 * @category models
 * @since 0.1.0
 */
export type TransportMode = "tunnel" | "spdy-only"

/**
 * A fault applied to every port-forward upgrade request (all transports) until cleared.
 *
 * - `Status`: answer with that HTTP code and a real-looking `Status` body (kubectl prints
 *   `error: error upgrading connection: <message>`; ≥ 1.31 first falls back from the tunnel).
 * - `CloseWithoutStatus`: close the TCP connection without any response (kubectl:
 *   `error upgrading connection: unexpected EOF`, and no fallback).
 * - `Hang`: accept the request and never answer it.
 *
 * @category models
 * @since 0.1.0
 */
export type UpgradeFault =
  | { readonly _tag: "Status"; readonly code: number }
  | { readonly _tag: "CloseWithoutStatus" }
  | { readonly _tag: "Hang" }

/**
 * Counters since the cluster started (or since {@link FakeCluster.resetCounters}).
 *
 * - `sessions`: port-forward upgrades accepted, by transport (`spdy` = plain SPDY/3.1,
 *   `tunnel` = SPDY over WebSocket, `websocket` = the v4 channel protocol).
 * - `activeSessions`: sessions alive right now (not reset).
 * - `streams`: SPDY streams opened by clients, plus two channels per port of each v4 session.
 * - `connections`: forwarded connections paired and dialled towards a pod port.
 * - `bytesToPod`, `bytesFromPod`: payload bytes carried.
 * - `restRequests`: plain HTTP requests (discovery, gets, lists, watches).
 * - `upgradeRequests`: upgrade requests received, whatever their outcome (faults included);
 *   a kubectl ≥ 1.31 that falls back from the tunnel to SPDY makes two.
 * - `activeWatches`: watch requests open right now (kubectl watches pods when a service or
 *   workload selects none yet); not reset.
 * - `unauthorized`, `forbidden`: requests (REST and upgrades) answered `401` / `403` by
 *   authentication / authorization (see {@link AuthOptions}).
 *
 * @category models
 * @since 0.1.0
 */
export interface Counters {
  readonly sessions: { readonly spdy: number; readonly tunnel: number; readonly websocket: number }
  readonly activeSessions: number
  readonly streams: number
  readonly connections: number
  readonly bytesToPod: number
  readonly bytesFromPod: number
  readonly restRequests: number
  readonly upgradeRequests: number
  readonly activeWatches: number
  readonly unauthorized: number
  readonly forbidden: number
}

/**
 * A user the API server knows (with `auth`), and what RBAC lets it do.
 *
 * - `token`: a bearer token that authenticates it.
 * - `clientCertificate`: issue it a client certificate signed by the cluster CA (needs `tls`):
 *   CN = `name`, O = `groups`, as kube-apiserver reads them.
 * - `portForward`: `false` denies `pods/portforward` (the upgrade gets kube-apiserver's `403`,
 *   `… cannot create resource "pods/portforward" …`) while every read still works, like a role
 *   with `get`/`list`/`watch` only. Default `true`.
 *
 * @category models
 * @since 0.1.0
 */
export interface UserSpec {
  readonly name: string
  readonly groups?: ReadonlyArray<string>
  readonly token?: string
  readonly clientCertificate?: boolean
  readonly portForward?: boolean
}

/**
 * Authentication and authorization, as kube-apiserver's filter chain applies them to every
 * request (REST and upgrades):
 *
 * - a bearer token that names no user: `401` `Unauthorized` (even with `anonymous`);
 * - a client certificate not signed by the cluster CA: `401`;
 * - no credentials: `401`, or with `anonymous: true` the user `system:anonymous`, who may read
 *   only `/version` and the health paths (`403` elsewhere, with RBAC's message);
 * - a user of `users`: everything but what its spec denies.
 *
 * @category models
 * @since 0.1.0
 */
export interface AuthOptions {
  readonly users: ReadonlyArray<UserSpec>
  readonly anonymous?: boolean
}

/**
 * HTTPS. The cluster makes a CA of its own and a serving certificate signed by it for
 * `localhost`, `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
 * `kubernetes.default.svc.cluster.local`, `127.0.0.1` and `::1` (kubeadm's names), plus
 * `serverNames`. Kubeconfigs carry the CA as `certificate-authority-data`.
 *
 * @category models
 * @since 0.1.0
 */
export interface TlsOptions {
  readonly serverNames?: ReadonlyArray<string>
}

/**
 * Options of {@link make}.
 *
 * - `version`: what `/version` reports (default `"v1.33.1"`).
 * - `transport`: the initial {@link TransportMode} (default `"tunnel"`).
 * - `tls`: serve HTTPS (`true` or {@link TlsOptions}); default plain HTTP.
 * - `auth`: require credentials ({@link AuthOptions}); default none (everything allowed, as the
 *   protocol notes observed kubectl against an `http://` server).
 * - `streamEnd`: how a forwarded connection (SPDY, plain or tunnel) ends. `"propagate"` (the
 *   default) passes each side's FIN on at once: the client's half-close reaches the pod as EOF,
 *   the pod's as the end of the data stream. `{ _tag: "containerd", grace }` is what containerd's
 *   CRI does on real nodes (`portForward` in `pkg/cri/server/sandbox_portforward_linux.go`):
 *   neither FIN is passed on (the pod never reads EOF), and once one side has ended, both are
 *   closed when the other ends too or after `grace` (containerd: 1 second, the default). Use it
 *   to see what a client's half-close and the end of a pod's answer cost on a real cluster.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly pods?: ReadonlyArray<PodSpec>
  readonly services?: ReadonlyArray<ServiceSpec>
  readonly deployments?: ReadonlyArray<WorkloadSpec>
  readonly statefulsets?: ReadonlyArray<WorkloadSpec>
  readonly version?: string
  readonly transport?: TransportMode
  readonly tls?: boolean | TlsOptions
  readonly auth?: AuthOptions
  readonly streamEnd?: "propagate" | { readonly _tag: "containerd"; readonly grace?: Duration.Input }
}

/**
 * How {@link FakeCluster.writeKubeconfig} writes a kubeconfig (context, cluster and user all named
 * `fake`, namespace `default`).
 *
 * - `user`: a user of `auth.users` (default the first).
 * - `credential`: how the user proves it — its `"token"`, a `"tokenFile"` holding it, its
 *   `"clientCertificate"`, an `"exec"` credential plugin (a small `sh` script printing an
 *   `ExecCredential` with the token), or `"none"`. Default: token if the user has one, else its
 *   client certificate, else none.
 * - `token`: the token to present instead of the user's (a wrong one, say); implies a token
 *   credential unless `credential` says `tokenFile` or `exec`.
 * - `certificateAuthority`: `"cluster"` (default), `"untrusted"` (a CA that did not sign the
 *   server's certificate) or `"none"`.
 * - `insecureSkipTlsVerify`, `tlsServerName`: written as such.
 *
 * @category models
 * @since 0.1.0
 */
export interface KubeconfigOptions {
  readonly user?: string
  readonly credential?: "token" | "tokenFile" | "clientCertificate" | "exec" | "none"
  readonly token?: string
  readonly certificateAuthority?: "cluster" | "untrusted" | "none"
  readonly insecureSkipTlsVerify?: boolean
  readonly tlsServerName?: string
}

/**
 * A running fake cluster.
 *
 * @category models
 * @since 0.1.0
 */
export interface FakeCluster {
  /** `http://127.0.0.1:PORT`, or `https://` with `tls`. */
  readonly url: string
  /**
   * A kubeconfig (context, cluster and user all named `"fake"`, namespace `default`): with `tls`
   * the CA as `certificate-authority-data`; with `auth` the first user's token, else its client
   * certificate.
   */
  readonly kubeconfigPath: string
  /** The cluster CA (PEM) with `tls`, else undefined. */
  readonly certificateAuthority: string | undefined
  /**
   * Writes another kubeconfig for this cluster ({@link KubeconfigOptions}) into the cluster's
   * temp directory (removed with it) and succeeds with its path. Fails with a defect on options
   * that cannot be met (an unknown user, a client certificate without `tls`).
   */
  readonly writeKubeconfig: (options?: KubeconfigOptions) => Effect.Effect<string>
  /** A private discovery cache directory for kubectl (`KUBECACHEDIR`). */
  readonly cacheDir: string
  /** `{ KUBECONFIG, KUBECACHEDIR }`, to merge into a kubectl child process environment. */
  readonly env: Record<string, string>
  /** Adds a pod, or replaces the pod with the same namespace and name (its sessions are dropped). */
  readonly addPod: (pod: PodSpec) => Effect.Effect<void>
  /** Adds or replaces a service. */
  readonly addService: (service: ServiceSpec) => Effect.Effect<void>
  /** Adds or replaces a deployment. */
  readonly addDeployment: (deployment: WorkloadSpec) => Effect.Effect<void>
  /** Adds or replaces a statefulset. */
  readonly addStatefulSet: (statefulset: WorkloadSpec) => Effect.Effect<void>
  /** Deletes a pod and drops its live port-forward sessions. No-op when absent. */
  readonly deletePod: (namespace: string, name: string) => Effect.Effect<void>
  /** Sets `status.phase`. Live sessions are kept; new upgrades to a non-Running pod get 400. */
  readonly setPodPhase: (namespace: string, name: string, phase: PodPhase) => Effect.Effect<void>
  /**
   * Simulates a container restart: drops the pod's live sessions, bumps `restartCount`, sets the
   * phase to `Pending`, and sets it back to `Running` after `downFor` (default: immediately). It
   * returns once the pod is down; the way back up runs in the cluster's scope.
   */
  readonly restartPod: (
    namespace: string,
    name: string,
    options?: { readonly downFor?: Duration.Input }
  ) => Effect.Effect<void>
  /** Switches the accepted transports for new upgrades. */
  readonly setTransport: (mode: TransportMode) => Effect.Effect<void>
  /** Sets (or with `undefined` clears) a fault for port-forward upgrades. */
  readonly setUpgradeFault: (fault: UpgradeFault | undefined) => Effect.Effect<void>
  /** Delays every REST response (not upgrades) by this much; `0` turns it off. */
  readonly setRestDelay: (delay: Duration.Input) => Effect.Effect<void>
  /** Drops every live port-forward connection (kubectl exits with `lost connection to pod`). */
  readonly dropSessions: Effect.Effect<void>
  /** Current counters. */
  readonly counters: Effect.Effect<Counters>
  /**
   * Waits, without polling, until `predicate` holds for the counters and succeeds with that
   * snapshot: at once if it already holds, otherwise on the first change that makes it true
   * (listeners are notified on the microtask after a change). Interrupting it removes its
   * listener; add a timeout for conditions that may never come. A `predicate` that throws makes
   * the effect die.
   *
   * @example
   * ```ts
   * yield* cluster.setUpgradeFault({ _tag: "Hang" })
   * // … start kubectl …
   * yield* cluster.awaitCounters((c) => c.upgradeRequests >= 1)     // the upgrade is being held
   * kubectl.kill()
   * yield* cluster.awaitCounters((c) => c.activeSessions === 0)      // its session is gone
   * ```
   */
  readonly awaitCounters: (predicate: (counters: Counters) => boolean) => Effect.Effect<Counters>
  /** Zeroes the counters (except `activeSessions`). */
  readonly resetCounters: Effect.Effect<void>
}

/**
 * The cluster could not start (port, temp files).
 *
 * @category errors
 * @since 0.1.0
 */
export class FakeClusterError extends Schema.TaggedError<FakeClusterError>("@kube-forward/testkit/FakeClusterError")(
  "FakeClusterError",
  { message: Schema.String, cause: Schema.optional(Schema.Defect()) }
) {}

/** Succeeds with the first counters snapshot `predicate` holds for (see `FakeCluster.awaitCounters`). */
const awaitCounters = (cluster: Cluster, predicate: (counters: Counters) => boolean): Effect.Effect<Counters> =>
  Effect.callback<Counters>((resume) => {
    let remove = () => {}
    /** Resumes and returns true once `predicate` holds (or throws). */
    const check = (): boolean => {
      const snapshot = cluster.snapshot()
      let holds: boolean
      try {
        holds = predicate(snapshot)
      } catch (defect) {
        remove()
        resume(Effect.die(defect))
        return true
      }
      if (holds) {
        remove()
        resume(Effect.succeed(snapshot))
      }
      return holds
    }
    if (check()) return
    remove = cluster.onCountersChange(check)
    return Effect.sync(() => remove())
  })

/**
 * Starts a fake cluster in the current scope.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: (options?: Options) => Effect.Effect<FakeCluster, FakeClusterError, Scope.Scope> = Effect.fn(
  "FakeCluster.make"
)(function*(options: Options = {}) {
  const cluster = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => Cluster.start(options),
      catch: (cause) => new FakeClusterError({ message: `failed to start the fake cluster: ${String(cause)}`, cause })
    }),
    (cluster) => Effect.promise(() => cluster.close())
  )
  const scope = yield* Effect.scope

  const restartPod = Effect.fn("FakeCluster.restartPod")(function*(
    namespace: string,
    name: string,
    options?: { readonly downFor?: Duration.Input }
  ) {
    const generation = cluster.restartPod(namespace, name)
    if (generation === undefined) return
    const downFor = Duration.fromInputUnsafe(options?.downFor ?? 0)
    const up = Effect.sync(() => cluster.finishRestart(namespace, name, generation))
    if (Duration.toMillis(downFor) <= 0) return yield* up
    yield* Effect.sleep(downFor).pipe(Effect.andThen(up), Effect.forkIn(scope))
  })

  return {
    url: cluster.url,
    kubeconfigPath: cluster.kubeconfigPath,
    certificateAuthority: cluster.certificateAuthority,
    writeKubeconfig: (options) => Effect.promise(() => cluster.writeKubeconfig(options ?? {})),
    cacheDir: cluster.cacheDir,
    env: { KUBECONFIG: cluster.kubeconfigPath, KUBECACHEDIR: cluster.cacheDir },
    addPod: (pod) => Effect.sync(() => cluster.addPod(pod)),
    addService: (service) => Effect.sync(() => cluster.addService(service)),
    addDeployment: (deployment) => Effect.sync(() => cluster.addDeployment(deployment)),
    addStatefulSet: (statefulset) => Effect.sync(() => cluster.addStatefulSet(statefulset)),
    deletePod: (namespace, name) => Effect.sync(() => cluster.deletePod(namespace, name)),
    setPodPhase: (namespace, name, phase) => Effect.sync(() => cluster.setPodPhase(namespace, name, phase)),
    restartPod,
    setTransport: (mode) => Effect.sync(() => cluster.setTransport(mode)),
    setUpgradeFault: (fault) => Effect.sync(() => cluster.setUpgradeFault(fault)),
    setRestDelay: (delay) =>
      Effect.sync(() => cluster.setRestDelay(Duration.toMillis(Duration.fromInputUnsafe(delay)))),
    dropSessions: Effect.sync(() => cluster.dropSessions()),
    counters: Effect.sync(() => cluster.snapshot()),
    awaitCounters: (predicate) => awaitCounters(cluster, predicate),
    resetCounters: Effect.sync(() => cluster.resetCounters())
  } satisfies FakeCluster
})

/**
 * The fake cluster as a service, for suites that share one cluster through a layer (see
 * {@link layer}).
 *
 * @category services
 * @since 0.1.0
 */
export class FakeClusterService extends Context.Service<FakeClusterService, FakeCluster>()(
  "@kube-forward/testkit/FakeCluster"
) {
  /**
   * The same as the module-level {@link layer}, kept for callers written before it.
   *
   * @deprecated Use `FakeCluster.layer(options)`.
   * @since 0.1.0
   */
  static readonly layer = (options: Options = {}): Layer.Layer<FakeClusterService, FakeClusterError> => layer(options)
}

/**
 * A layer that starts a fake cluster as the {@link FakeClusterService} and stops it when the layer
 * is released.
 *
 * @example
 * ```ts
 * import { FakeCluster } from "@kube-forward/testkit"
 * import { layer } from "@effect/vitest"
 * import { Effect } from "effect"
 *
 * layer(FakeCluster.layer({ pods: [] }))("suite", (it) => {
 *   it.effect("uses the cluster", () =>
 *     Effect.gen(function*() {
 *       const cluster = yield* FakeCluster.FakeClusterService
 *       // ...
 *     }))
 * })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<FakeClusterService, FakeClusterError> =>
  Layer.effect(FakeClusterService, make(options))
