/**
 * A Kubernetes port forward as a `Scope`-managed resource.
 *
 * `make(spec)` starts the forward on its carrier (the {@link Forwarder} in context: kubectl by
 * default), waits until every requested port is listening and (by default) one connection
 * through each port reached the pod, and gives back a {@link PortForward}. Leaving the scope
 * closes it: the carrier is ended and waited for (kubectl's whole process tree), so the local
 * ports can be bound again, on success, failure and interruption alike.
 *
 * Everything here is the same whatever the carrier: decode → choose local ports → retry(start
 * an attempt) → verify → Ready → keepalive → supervise/reconnect → close, with a span per
 * forward and per attempt and the metrics of `ForwardMetrics`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { PortForward } from "@kube-forward/core"
 *
 * const program = Effect.gen(function*() {
 *   const fwd = yield* PortForward.make({ target: "svc/web", namespace: "shop", ports: [80] })
 *   const res = yield* Effect.promise(() => fetch(`http://127.0.0.1:${fwd.localPort}/health`))
 *   yield* Effect.log(res.status)
 * }).pipe(Effect.scoped, Effect.provide(PortForward.layer()))
 *
 * NodeRuntime.runMain(program)
 * ```
 *
 * @since 0.1.0
 */
import {
  type Config,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  Option,
  Ref,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { type Attempt, type ForwardedPort, Forwarder } from "./Forwarder.ts"
import * as ForwardMetrics from "./ForwardMetrics.ts"
import type { ForwardSpec, Input, RemotePort } from "./ForwardSpec.ts"
import { decode } from "./ForwardSpec.ts"
import { probe } from "./internal/probe.ts"
import * as Kubectl from "./Kubectl.ts"
import * as KubectlForwarder from "./KubectlForwarder.ts"
import * as PortAllocator from "./PortAllocator.ts"
import {
  ForwardLost,
  isReconnectable,
  isTransient,
  type OpenError,
  type PortForwardError,
  PortInUse,
  type PortsExhausted,
  Timeout
} from "./PortForwardError.ts"
import * as Retry from "./Retry.ts"

/**
 * One forwarded port: where it listens locally and where it goes (defined with the carrier
 * service, `Forwarder`).
 *
 * @category models
 * @since 0.1.0
 */
export type { ForwardedPort } from "./Forwarder.ts"

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

/**
 * The life of a forward, as seen on {@link PortForward.status}.
 *
 * - `Starting`: the first attempt is starting or being retried;
 * - `Ready`: every port listens and carries bytes;
 * - `Reconnecting`: the carrier went away after ready and the reconnect policy is bringing it back
 *   (`attempt` counts from 1, `cause` is the latest failure);
 * - `Closed`: closed by the user or the scope;
 * - `Failed`: lost and not (or no longer) reconnecting; `error` says why.
 *
 * @category models
 * @since 0.1.0
 */
export type ForwardStatus =
  | { readonly _tag: "Starting" }
  | { readonly _tag: "Ready"; readonly ports: ReadonlyArray<ForwardedPort> }
  | { readonly _tag: "Reconnecting"; readonly attempt: number; readonly cause: PortForwardError }
  | { readonly _tag: "Closed" }
  | { readonly _tag: "Failed"; readonly error: PortForwardError }

/**
 * An open port forward.
 *
 * @category models
 * @since 0.1.0
 */
export interface PortForward {
  /** The target, normalised: `pod/web`, `service/web`, … */
  readonly target: string
  /** The namespace, when one was given. */
  readonly namespace: string | undefined
  /**
   * Every forwarded port, in the order of the spec, as last announced `Ready`: the local ports
   * never change, the target port may after a reconnect (a service whose new pod maps it
   * elsewhere).
   */
  readonly ports: ReadonlyArray<ForwardedPort>
  /** The local port of the first forwarded port. */
  readonly localPort: number
  /** The remote port of the first forwarded port, as requested. */
  readonly remotePort: RemotePort
  /** Whether the forward carries traffic now: status `Ready`, and closing has not begun. */
  readonly isOpen: Effect.Effect<boolean>
  /** The current status. */
  readonly currentStatus: Effect.Effect<ForwardStatus>
  /** The status now and every change after, until the forward is closed or failed. */
  readonly status: Stream.Stream<ForwardStatus>
  /** Closes the forward now rather than at the end of the scope. Idempotent; returns once the carrier is gone (kubectl's whole process tree) and the ports are free. */
  readonly close: Effect.Effect<void>
  /** Waits until the forward ends: succeeds when it was closed, fails with `ForwardLost` when it was lost for good. */
  readonly awaitClosed: Effect.Effect<void, ForwardLost>
}

// ---------------------------------------------------------------------------------------------
// one forward's state
// ---------------------------------------------------------------------------------------------

/** Everything one forward's lifecycle shares. */
interface Engine {
  readonly spec: ForwardSpec
  readonly forwarder: Forwarder["Service"]
  readonly status: SubscriptionRef.SubscriptionRef<ForwardStatus>
  /** Completes when the forward ends: closed, or lost for good. */
  readonly done: Deferred.Deferred<void, ForwardLost>
  /** Everything the forward started: attempts, ports, the supervisor. */
  readonly scope: Scope.Closeable
  /** Set when closing began, so an attempt that ends because of it is no loss. */
  readonly closing: Ref.Ref<boolean>
  /**
   * Local ports the spec fixed. Any other local port was chosen by the library or the OS, so a
   * `PortInUse` on it is worth a retry.
   */
  readonly fixedPorts: ReadonlySet<number>
  /** The ports as last announced `Ready` (a reconnect may reach another target port). */
  ports: ReadonlyArray<ForwardedPort>
  readonly attributes: Readonly<Record<string, string>>
}

/** A running attempt and the scope that stops it. */
interface Running {
  readonly attempt: Attempt
  readonly scope: Scope.Closeable
}

/**
 * Sets the status and keeps the `open` gauge in step with it: the gauge moves before the new
 * status is published, so whoever sees a status also sees the gauge that goes with it.
 */
const setStatus = (e: Engine, next: (current: ForwardStatus) => ForwardStatus): Effect.Effect<void> =>
  SubscriptionRef.modifyEffect(e.status, (current) => {
    const n = next(current)
    const delta = (n._tag === "Ready" ? 1 : 0) - (current._tag === "Ready" ? 1 : 0)
    const gauge = delta === 0
      ? Effect.void
      : Metric.modify(Metric.withAttributes(ForwardMetrics.open, e.attributes), delta)
    return Effect.as(gauge, [undefined, n] as const)
  })

const countFailure = (e: Engine, error: PortForwardError): Effect.Effect<void> =>
  Metric.update(Metric.withAttributes(ForwardMetrics.failures, { ...e.attributes, error: error._tag }), 1)

// ---------------------------------------------------------------------------------------------
// attempts
// ---------------------------------------------------------------------------------------------

/** Starts the carrier and verifies it, within `readyTimeout` for both together. */
const startVerified = (e: Engine, locals: ReadonlyArray<number>): Effect.Effect<Attempt, OpenError, Scope.Scope> => {
  const { spec } = e
  let stage: "ready" | "verify" = "ready"
  return Effect.gen(function*() {
    const attempt = yield* e.forwarder.start({ spec, locals, isDynamic: (local) => !e.fixedPorts.has(local) })
    if (spec.verify) {
      stage = "verify"
      yield* attempt.verify
    }
    return attempt
  }).pipe(
    // measured by the Effect clock (a monotonic timer)
    Effect.timeoutOrElse({
      duration: spec.readyTimeout,
      orElse: () =>
        Effect.fail(new Timeout({ stage, after: Duration.toMillis(spec.readyTimeout), target: spec.resource }))
    }),
    Effect.timed,
    Effect.flatMap(([took, attempt]) =>
      Metric.update(Metric.withAttributes(ForwardMetrics.timeToReady, e.attributes), Duration.toSeconds(took)).pipe(
        Effect.as(attempt)
      )
    ),
    Effect.tapError((error) => countFailure(e, error)),
    Effect.onExit((exit) => Effect.annotateCurrentSpan("kube_forward.outcome", outcome(exit))),
    Effect.withSpan("PortForward.attempt", { attributes: { ...e.attributes, "kube_forward.locals": locals.join(",") } })
  )
}

const outcome = (exit: Exit.Exit<unknown, PortForwardError>): string =>
  Exit.isSuccess(exit)
    ? "ready"
    : Option.match(Exit.findErrorOption(exit), { onNone: () => "interrupted", onSome: (e) => e._tag })

/** Runs one attempt in a scope of its own, closed again if the attempt fails or is interrupted. */
const runAttempt = (e: Engine, locals: ReadonlyArray<number>): Effect.Effect<Running, OpenError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Scope.fork(e.scope, "sequential")
      const attempt = yield* restore(startVerified(e, locals).pipe(Scope.provide(scope))).pipe(
        Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)
      )
      return { attempt, scope }
    })
  )

/** Fixed ports are checked, dynamic ones chosen (held in `scope` until the forward closes). */
const choosePorts = (
  e: Engine,
  allocator: PortAllocator.PortAllocator["Service"],
  scope: Scope.Scope
): Effect.Effect<Array<number>, PortInUse | PortsExhausted> =>
  Effect.gen(function*() {
    const locals: Array<number> = []
    for (const port of e.spec.ports) {
      if (port.local === undefined) {
        locals.push(yield* allocator.allocate(e.spec.addresses).pipe(Scope.provide(scope)))
        continue
      }
      for (const address of e.spec.addresses) {
        if (!(yield* allocator.isFree(port.local, address))) {
          return yield* new PortInUse({ port: port.local, address, dynamic: false })
        }
      }
      locals.push(port.local)
    }
    return locals
  })

/** The first start: choose the ports, then run an attempt on them; on failure both are let go. */
const firstStart = (e: Engine, allocator: PortAllocator.PortAllocator["Service"]): Effect.Effect<Running, OpenError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const portsScope = yield* Scope.fork(e.scope, "sequential")
      return yield* restore(
        choosePorts(e, allocator, portsScope).pipe(Effect.flatMap((locals) => runAttempt(e, locals)))
      ).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(portsScope, exit) : Effect.void))
    })
  )

// ---------------------------------------------------------------------------------------------
// after ready
// ---------------------------------------------------------------------------------------------

/** Probes every port each `interval`; completes (with why) only when a probe fails or hangs. */
const keepalive = (
  settings: NonNullable<ForwardSpec["keepalive"]>,
  ports: ReadonlyArray<ForwardedPort>
): Effect.Effect<{ readonly reason: string; readonly exitCode: null }> =>
  Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(settings.interval)
      const outcome = yield* Effect.forEach(ports, (p) => probe(p.address, p.local), { discard: true }).pipe(
        Effect.timeoutOrElse({
          duration: settings.timeout,
          orElse: () => Effect.fail({ _tag: "ProbeFailure" as const, detail: "no answer in time" })
        }),
        Effect.result
      )
      if (outcome._tag === "Failure") {
        return { reason: `keepalive probe failed: ${outcome.failure.detail}`, exitCode: null }
      }
    }
  })

/** Waits until the attempt ends by itself or the keepalive finds it dead. */
const awaitLoss = (e: Engine, live: Running) =>
  e.spec.keepalive === undefined
    ? live.attempt.ended
    : Effect.raceFirst(live.attempt.ended, keepalive(e.spec.keepalive, live.attempt.ports))

/**
 * The forward is lost for good: say so first, then clean up what is left of the attempt, then
 * fail `done` — in one step, so that a close arriving meanwhile cannot leave `Failed` beside a
 * `done` that succeeded.
 */
const fail = (e: Engine, live: Running, lost: ForwardLost, error: PortForwardError = lost) =>
  setStatus(e, () => ({ _tag: "Failed", error })).pipe(
    Effect.andThen(Scope.close(live.scope, Exit.void)),
    Effect.andThen(Deferred.fail(e.done, lost)),
    Effect.uninterruptible
  )

/** Announces `Ready` on `ports`, which the forward's `ports` then show. */
const announceReady = (e: Engine, ports: ReadonlyArray<ForwardedPort>) =>
  Effect.suspend(() => {
    e.ports = ports
    return setStatus(e, () => ({ _tag: "Ready", ports }))
  })

/** Brings a lost forward back on the same local ports, on the reconnect schedule. */
const reconnect = (
  e: Engine,
  live: Running,
  lost: ForwardLost,
  schedule: NonNullable<ForwardSpec["reconnect"]>
): Effect.Effect<Running | undefined> =>
  Effect.gen(function*() {
    yield* setStatus(e, () => ({ _tag: "Reconnecting", attempt: 1, cause: lost }))
    yield* Scope.close(live.scope, Exit.void)
    let attempt = 1
    // the next attempt is announced only once the schedule has said there will be one
    const announce = (cause: OpenError) => setStatus(e, () => ({ _tag: "Reconnecting", attempt: ++attempt, cause }))
    const once = runAttempt(e, live.attempt.ports.map((p) => p.local))
    const next = yield* Effect.result(Retry.retryWhile(once, schedule, isReconnectable, announce))
    if (next._tag === "Failure") {
      const reason = `${lost.reason}; reconnecting failed: ${next.failure.message}`
      yield* fail(e, live, new ForwardLost({ target: lost.target, reason, exitCode: lost.exitCode }), next.failure)
      return undefined
    }
    // counted before it is announced, so whoever sees `Ready` again also sees the count
    yield* Metric.update(Metric.withAttributes(ForwardMetrics.reconnects, e.attributes), 1)
    yield* announceReady(e, next.success.attempt.ports)
    return next.success
  })

/** Follows the running attempt: a loss fails the forward or, with `reconnect`, brings it back. */
const supervise = (e: Engine, first: Running): Effect.Effect<void> =>
  Effect.gen(function*() {
    let live: Running | undefined = first
    while (live !== undefined) {
      const ended = yield* awaitLoss(e, live)
      if (yield* Ref.get(e.closing)) return
      const lost = new ForwardLost({ target: e.spec.resource, reason: ended.reason, exitCode: ended.exitCode })
      yield* countFailure(e, lost)
      if (e.spec.reconnect === undefined) return yield* fail(e, live, lost)
      live = yield* reconnect(e, live, lost, e.spec.reconnect)
    }
  })

// ---------------------------------------------------------------------------------------------
// the forward
// ---------------------------------------------------------------------------------------------

const isOpenStatus = (s: ForwardStatus) => s._tag === "Ready"

/**
 * The forward's state, and its `close`: closing runs once, when the caller's scope closes or
 * earlier through `close`; closing the handle also takes it out of the caller's scope, so a
 * forward closed early (or one that failed to start) leaves nothing behind in a long-lived scope.
 */
const makeEngine = (spec: ForwardSpec, forwarder: Forwarder["Service"], outer: Scope.Scope) =>
  Effect.gen(function*() {
    const e: Engine = {
      spec,
      forwarder,
      status: yield* SubscriptionRef.make<ForwardStatus>({ _tag: "Starting" }),
      done: yield* Deferred.make<void, ForwardLost>(),
      scope: yield* Scope.fork(outer, "sequential"),
      closing: yield* Ref.make(false),
      fixedPorts: new Set(spec.ports.flatMap((p) => p.local === undefined ? [] : [p.local])),
      ports: [],
      attributes: { backend: forwarder.backend }
    }
    const handle = yield* Scope.fork(outer, "sequential")
    yield* Scope.addFinalizer(
      handle,
      Ref.set(e.closing, true).pipe(
        Effect.andThen(Scope.close(e.scope, Exit.void)),
        Effect.andThen(setStatus(e, (s) => s._tag === "Failed" ? s : { _tag: "Closed" })),
        Effect.andThen(Deferred.done(e.done, Exit.void))
      )
    )
    const close: Effect.Effect<void> = Scope.close(handle, Exit.void).pipe(
      Effect.andThen(Deferred.await(e.done)),
      Effect.ignore,
      Effect.uninterruptible
    )
    return { e, handle, close }
  })

const forwardValue = (e: Engine, ports: ReadonlyArray<ForwardedPort>, close: Effect.Effect<void>): PortForward => ({
  target: e.spec.resource,
  namespace: e.spec.namespace ?? e.forwarder.namespace,
  get ports() {
    return e.ports
  },
  localPort: ports[0].local,
  remotePort: ports[0].remote,
  // not open any more from the moment closing begins, though `Closed` is announced at its end
  isOpen: Effect.zipWith(
    SubscriptionRef.get(e.status),
    Ref.get(e.closing),
    (s, closing) => isOpenStatus(s) && !closing
  ),
  currentStatus: SubscriptionRef.get(e.status),
  status: SubscriptionRef.changes(e.status).pipe(Stream.takeUntil((s) => s._tag === "Closed" || s._tag === "Failed")),
  close,
  awaitClosed: Deferred.await(e.done)
})

/**
 * Opens a port forward in the current scope.
 *
 * The spec is decoded first (`InvalidSpec`, nothing started). Then the carrier (the
 * {@link Forwarder} in context: kubectl with {@link layer}) is started on the local ports; the
 * forward is ready when every port listens and (unless `verify: false`) one connection through
 * each port reached the pod, all within `readyTimeout`. Failures are typed; with `retry`,
 * transient ones are retried on that schedule, each attempt cleaned up before the next.
 *
 * After ready, a fiber follows the carrier: if it ends, the forward turns `Failed` with
 * `ForwardLost` (or, with `reconnect`, `Reconnecting` and back to `Ready` on the same local
 * ports).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: (
  spec: Input
) => Effect.Effect<PortForward, OpenError, Scope.Scope | Forwarder | PortAllocator.PortAllocator> = Effect.fn(
  "PortForward.make"
)(function*(input: Input) {
  const spec = yield* decode(input)
  const forwarder = yield* Forwarder
  const allocator = yield* PortAllocator.PortAllocator
  yield* Effect.annotateCurrentSpan({ "kube_forward.target": spec.resource, backend: forwarder.backend })
  const { close, e, handle } = yield* makeEngine(spec, forwarder, yield* Effect.scope)
  const start = spec.retry === undefined
    ? firstStart(e, allocator)
    : Retry.retryWhile(firstStart(e, allocator), spec.retry, isTransient)
  // the start is interruptible; once it succeeded, the rest runs without a gap in which an
  // interruption would leave a started carrier without its supervisor
  const ports = yield* Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const started = yield* restore(start).pipe(Effect.onError(() => Scope.close(handle, Exit.void)))
      yield* announceReady(e, started.attempt.ports)
      yield* supervise(e, started).pipe(Effect.forkIn(e.scope))
      return started.attempt.ports
    })
  )
  yield* Effect.annotateCurrentSpan("kube_forward.ports", ports.map((p) => `${p.local}->${p.targetPort}`).join(","))
  return forwardValue(e, ports, close)
}, Effect.onExit((exit) => Effect.annotateCurrentSpan("kube_forward.outcome", outcome(exit))))

/**
 * The default services a forward needs: the kubectl carrier, kubectl from `PATH` (or
 * `options.binary`), and OS-assigned dynamic ports.
 *
 * @example
 * ```ts
 * program.pipe(Effect.provide(PortForward.layer({ context: "staging" })))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (
  options: Kubectl.Options = {}
): Layer.Layer<Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator> => layerWith(Kubectl.layer(options))

/**
 * The kubectl carrier on a kubectl runner of your own (a wrapping layer, `Kubectl.layerTest`,
 * …), with OS-assigned dynamic ports.
 *
 * @category layers
 * @since 0.2.0
 */
export const layerWith = <E, R>(
  kubectl: Layer.Layer<Kubectl.Kubectl, E, R>
): Layer.Layer<Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator, E, R> =>
  Layer.mergeAll(KubectlForwarder.layer, PortAllocator.layer).pipe(Layer.provideMerge(kubectl))

/**
 * The default services with kubectl's options read from `Config`s (see `Kubectl.layerConfig`).
 *
 * @category layers
 * @since 0.2.0
 */
export const layerConfig = (
  options: Config.Wrap<Kubectl.Options>
): Layer.Layer<Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator, Config.ConfigError> =>
  layerWith(Kubectl.layerConfig(options))

/**
 * The default services configured from kube-forward's environment variables
 * (`KUBE_FORWARD_KUBECTL`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_NAMESPACE`,
 * `KUBE_FORWARD_KILL_GRACE`, `KUBE_FORWARD_WATCHDOG`; see `Kubectl.envConfig`).
 *
 * @category layers
 * @since 0.2.0
 */
export const layerFromEnv: Layer.Layer<Forwarder | Kubectl.Kubectl | PortAllocator.PortAllocator, Config.ConfigError> =
  layerWith(Kubectl.layerFromEnv)

/**
 * Waits until the forward is open again (or fails if it ends for good). Useful after a pod
 * restart when the forward has a reconnect policy.
 *
 * @category combinators
 * @since 0.1.0
 */
export const awaitOpen = (forward: PortForward): Effect.Effect<void, ForwardLost> =>
  forward.status.pipe(
    Stream.filter((s) => s._tag !== "Starting" && s._tag !== "Reconnecting"),
    Stream.runHead,
    Effect.flatMap((s) =>
      Option.match(s, {
        onNone: () => forward.awaitClosed,
        onSome: (s) =>
          s._tag === "Ready"
            ? Effect.void
            : forward.awaitClosed.pipe(Effect.andThen(Effect.fail(
              new ForwardLost({ target: forward.target, reason: "the forward was closed", exitCode: null })
            )))
      })
    )
  )
