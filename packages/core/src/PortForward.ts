/**
 * A Kubernetes port forward as a `Scope`-managed resource.
 *
 * `make(spec)` starts `kubectl port-forward`, waits until every requested port is listening
 * and (by default) one connection through each port reached the pod, and gives back a
 * {@link PortForward}. Leaving the scope closes it: kubectl's whole process tree is ended and
 * waited for, so the local ports can be bound again, on success, failure and interruption
 * alike.
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
  Option,
  Ref,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import type { ForwardSpec, Input, RemotePort } from "./ForwardSpec.ts"
import { decode } from "./ForwardSpec.ts"
import { portForwardArgs } from "./internal/args.ts"
import {
  classifyFailure,
  type ExitInfo,
  type FailureContext,
  type Forwarding,
  lostReason,
  parseForwarding,
  parseListenFailure,
  parseStreamError
} from "./internal/output.ts"
import { ioBarrier, probe } from "./internal/probe.ts"
import { realSleep } from "./internal/time.ts"
import * as Kubectl from "./Kubectl.ts"
import * as PortAllocator from "./PortAllocator.ts"
import {
  ForwardLost,
  isReconnectable,
  isTransient,
  KubectlFailed,
  type PortForwardError,
  PortInUse,
  RemoteRefused,
  Timeout
} from "./PortForwardError.ts"
import * as Retry from "./Retry.ts"

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

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
  /** The container port the bytes reach, as kubectl resolved it (a service port is mapped to its target port). */
  readonly targetPort: number
}

/**
 * The life of a forward, as seen on {@link PortForward.status}.
 *
 * - `Starting`: kubectl is starting or the first attempt is being retried;
 * - `Ready`: every port listens and carries bytes;
 * - `Reconnecting`: kubectl went away after ready and the reconnect policy is bringing it back
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
  /** The target as given to kubectl, e.g. `pod/web` or `service/web`. */
  readonly target: string
  /** The namespace, when one was given. */
  readonly namespace: string | undefined
  /** Every forwarded port, in the order of the spec. */
  readonly ports: ReadonlyArray<ForwardedPort>
  /** The local port of the first forwarded port. */
  readonly localPort: number
  /** The remote port of the first forwarded port, as requested. */
  readonly remotePort: RemotePort
  /** Whether the forward carries traffic now (status `Ready`). */
  readonly isOpen: Effect.Effect<boolean>
  /** The current status. */
  readonly currentStatus: Effect.Effect<ForwardStatus>
  /** The status now and every change after, until the forward is closed or failed. */
  readonly status: Stream.Stream<ForwardStatus>
  /** Closes the forward now rather than at the end of the scope. Idempotent; returns once kubectl is gone and the ports are free. */
  readonly close: Effect.Effect<void>
  /** Waits until the forward ends: succeeds when it was closed, fails with `ForwardLost` when it was lost for good. */
  readonly awaitClosed: Effect.Effect<void, ForwardLost>
}

// ---------------------------------------------------------------------------------------------
// one kubectl process
// ---------------------------------------------------------------------------------------------

/** What one running kubectl process gives the forward. */
interface Attempt {
  readonly ports: ReadonlyArray<ForwardedPort>
  readonly process: Kubectl.KubectlProcess
  /** Completes when kubectl has exited: how, and what it printed on stderr last. */
  readonly ended: Deferred.Deferred<{ readonly exit: ExitInfo; readonly stderr: ReadonlyArray<string> }>
  /** A reason that overrides the one read from kubectl's output (set by the keepalive). */
  readonly lossReason: Ref.Ref<string | undefined>
}

const MAX_STDERR_LINES = 500

/** Assigns kubectl's `Forwarding from` lines to the requested ports. */
class ForwardingTable {
  readonly locals: Array<number | undefined>
  readonly lines: Array<Array<Forwarding>>
  readonly addresses: ReadonlyArray<string>
  constructor(requested: ReadonlyArray<number>, addresses: ReadonlyArray<string>) {
    this.locals = requested.map((p) => p === 0 ? undefined : p)
    this.lines = requested.map(() => [])
    this.addresses = addresses
  }
  add(line: Forwarding): void {
    let index = this.locals.indexOf(line.local)
    if (index === -1) {
      index = this.locals.findIndex((l) => l === undefined)
      if (index === -1) return
      this.locals[index] = line.local
    }
    this.lines[index].push(line)
  }
  /**
   * Every port has a line for each explicit address, plus one for `localhost` (kubectl binds
   * it on 127.0.0.1 and ::1 and reports whichever worked; it fails only if neither did).
   */
  get complete(): boolean {
    const expected = this.addresses.filter((a) => a !== "localhost").length + (this.addresses.includes("localhost") ? 1 : 0)
    return this.lines.every((l) => l.length >= expected)
  }
  /** The requested remote port of the local port `local` of this attempt. */
  remoteOf(local: number, ports: ReadonlyArray<{ readonly remote: RemotePort }>): RemotePort | undefined {
    const i = this.locals.indexOf(local)
    return i === -1 ? undefined : ports[i].remote
  }
}

/** How long a failed check connection waits for kubectl's exit to explain it. */
const EXPLAIN_WAIT_MS = 200

/**
 * Starts one kubectl process for `spec` with the given local ports (`0` = any) and waits
 * until it is ready (and verified), within `spec.readyTimeout`. Everything it starts belongs to
 * the current scope.
 */
const runAttempt = Effect.fnUntraced(function*(
  kubectl: Kubectl.Kubectl["Service"],
  spec: ForwardSpec,
  locals: ReadonlyArray<number>,
  forwardCtx: Omit<FailureContext, "remoteOf">
) {
  const process = yield* kubectl.spawn(portForwardArgs(spec, locals))
  const table = new ForwardingTable(locals, spec.addresses)
  const ctx: FailureContext = {
    ...forwardCtx,
    remoteOf: (local) => table.remoteOf(local, spec.ports)
  }
  const stderr: Array<string> = []
  let streamErrors = 0
  let listenFailed = false
  const ready = yield* Deferred.make<ReadonlyArray<ForwardedPort>, PortForwardError>()
  const ended = yield* Deferred.make<{ readonly exit: ExitInfo; readonly stderr: ReadonlyArray<string> }>()
  const lossReason = yield* Ref.make<string | undefined>(undefined)
  const running = { exitCode: null, signal: null }

  const onLine = (line: Kubectl.OutputLine): void => {
    if (line.stream === "stdout") {
      const forwarding = parseForwarding(line.text)
      if (forwarding === undefined) return
      table.add(forwarding)
      if (table.complete && !Deferred.isDoneUnsafe(ready)) {
        Deferred.doneUnsafe(
          ready,
          Effect.succeed(spec.ports.map((p, i): ForwardedPort => ({
            address: table.lines[i][0].address,
            local: table.lines[i][0].local,
            remote: p.remote,
            targetPort: table.lines[i][0].remote
          })))
        )
      }
      return
    }
    stderr.push(line.text)
    if (stderr.length > MAX_STDERR_LINES) stderr.splice(0, stderr.length - MAX_STDERR_LINES)
    if (parseStreamError(line.text) !== undefined) streamErrors++
    if (parseListenFailure(line.text) !== undefined) {
      // kubectl goes on with the ports it could bind; for us the forward failed
      listenFailed = true
      if (!Deferred.isDoneUnsafe(ready)) Deferred.doneUnsafe(ready, Effect.fail(classifyFailure(ctx, stderr, running)))
    }
  }

  yield* process.output.pipe(
    Stream.runForEach((line) => Effect.sync(() => onLine(line))),
    Effect.andThen(process.exit),
    Effect.tap((exit) =>
      Effect.sync(() => {
        if (!Deferred.isDoneUnsafe(ready)) Deferred.doneUnsafe(ready, Effect.fail(classifyFailure(ctx, stderr, exit)))
        Deferred.doneUnsafe(ended, Effect.succeed({ exit, stderr: stderr.slice() }))
      })
    ),
    Effect.forkScoped
  )

  let stage: "ready" | "verify" = "ready"
  const startUp = Effect.gen(function*() {
    const ports = yield* Deferred.await(ready)
    if (!spec.verify) return ports
    stage = "verify"
    const before = streamErrors
    const checked = yield* Effect.forEach(ports, (port) => probe(port.address, port.local), {
      concurrency: "unbounded",
      discard: true
    }).pipe(Effect.result)
    // kubectl logs a refusal by the pod before it closes our connection; let that output in,
    // since what kubectl said explains a failed check better than the check itself
    yield* ioBarrier
    if (checked._tag === "Failure" && !Deferred.isDoneUnsafe(ended)) {
      // the listener is gone: kubectl is probably exiting; give its exit a moment to arrive
      yield* Effect.raceFirst(Deferred.await(ended), realSleep(EXPLAIN_WAIT_MS))
    }
    if (streamErrors > before || Deferred.isDoneUnsafe(ended) || listenFailed) {
      const exit = Deferred.isDoneUnsafe(ended) ? (yield* Deferred.await(ended)).exit : running
      const error = classifyFailure(ctx, stderr, exit)
      return yield* (error._tag === "KubectlFailed" && streamErrors > before
        ? new RemoteRefused({ target: ctx.target, remotePort: ports[0].remote, detail: stderr.join("\n") })
        : error)
    }
    if (checked._tag === "Failure") {
      return yield* new KubectlFailed({
        exitCode: null,
        signal: null,
        stderr: [...stderr, `check connection failed: ${checked.failure.detail}`].join("\n")
      })
    }
    return ports
  })

  // one limit for ready and verify together, measured by the Effect clock (a monotonic timer)
  const ports = yield* startUp.pipe(
    Effect.timeoutOrElse({
      duration: spec.readyTimeout,
      orElse: () => Effect.fail(new Timeout({ stage, after: Duration.toMillis(spec.readyTimeout), target: ctx.target }))
    })
  )
  const attempt: Attempt = { ports, process, ended, lossReason }
  return attempt
})

/** Probes the forward every `interval`; a probe that fails or hangs ends kubectl with a reason. */
const keepalive = (spec: ForwardSpec, attempt: Attempt) =>
  Effect.gen(function*() {
    const settings = spec.keepalive
    if (settings === undefined) return
    while (true) {
      yield* Effect.sleep(settings.interval)
      const outcome = yield* Effect.forEach(attempt.ports, (p) => probe(p.address, p.local), { discard: true }).pipe(
        Effect.timeoutOrElse({
          duration: settings.timeout,
          orElse: () => Effect.fail({ _tag: "ProbeFailure" as const, detail: "no answer in time" })
        }),
        Effect.result
      )
      if (outcome._tag === "Failure") {
        yield* Ref.set(attempt.lossReason, `keepalive probe failed: ${outcome.failure.detail}`)
        yield* attempt.process.kill
        return
      }
    }
  })

// ---------------------------------------------------------------------------------------------
// the forward
// ---------------------------------------------------------------------------------------------

const isOpenStatus = (s: ForwardStatus) => s._tag === "Ready"

/**
 * Opens a port forward in the current scope.
 *
 * The spec is decoded first (`InvalidSpec`, nothing started). Then kubectl is started with an
 * argument array; the forward is ready when kubectl reported every port and (unless
 * `verify: false`) one connection through each port reached the pod, all within
 * `readyTimeout`. Failures are typed (`PortForwardError`); with `retry`, transient ones are
 * retried on that schedule, each attempt cleaned up before the next.
 *
 * After ready, a fiber follows kubectl: if it exits, the forward turns `Failed` with
 * `ForwardLost` (or, with `reconnect`, `Reconnecting` and back to `Ready` on the same local
 * ports).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: (
  spec: Input
) => Effect.Effect<PortForward, PortForwardError, Scope.Scope | Kubectl.Kubectl | PortAllocator.PortAllocator> = Effect.fn(
  "PortForward.make"
)(function*(input: Input) {
  const spec = yield* decode(input)
  const allocator = yield* PortAllocator.PortAllocator
  const outer = yield* Effect.scope
  const kubectl = yield* Kubectl.Kubectl

  const status = yield* SubscriptionRef.make<ForwardStatus>({ _tag: "Starting" })
  const done = yield* Deferred.make<void, ForwardLost>()
  const forwardScope = yield* Scope.fork(outer, "sequential")

  const dynamicPorts = new Set<number>()
  const namespace = spec.namespace ?? kubectl.namespace
  const ctx: Omit<FailureContext, "remoteOf"> = {
    target: spec.resource,
    namespace,
    isDynamic: (local) => dynamicPorts.has(local)
  }

  /** Starts kubectl on `locals` in a fresh scope, closed again if the attempt fails or is interrupted. */
  const attemptIn = (locals: ReadonlyArray<number>) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(forwardScope, "sequential")
        const attempt = yield* restore(runAttempt(kubectl, spec, locals, ctx).pipe(Scope.provide(scope))).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void))
        return { attempt, scope }
      })
    )

  /** The first start: choose dynamic ports, check fixed ones, start kubectl. */
  const firstStart = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const portsScope = yield* Scope.fork(forwardScope, "sequential")
      return yield* restore(Effect.gen(function*() {
        const locals: Array<number> = []
        for (const port of spec.ports) {
          if (port.local !== undefined) {
            for (const a of spec.addresses) {
              if (!(yield* allocator.isFree(port.local, a))) {
                return yield* new PortInUse({ port: port.local, address: a, dynamic: false })
              }
            }
            locals.push(port.local)
          } else {
            const chosen = yield* allocator.allocate(spec.addresses).pipe(Scope.provide(portsScope))
            if (chosen !== 0) dynamicPorts.add(chosen)
            locals.push(chosen)
          }
        }
        return yield* attemptIn(locals)
      })).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(portsScope, exit) : Effect.void))
    })
  )

  const closing = yield* Ref.make(false)

  const finish = (final: ForwardStatus, result: Exit.Exit<void, ForwardLost>) =>
    SubscriptionRef.update(status, (s) => s._tag === "Failed" ? s : final).pipe(
      Effect.andThen(Deferred.done(done, result))
    )

  /** The real work of closing; runs once, as the finalizer of `handle`. */
  const shutdown: Effect.Effect<void> = Effect.gen(function*() {
    yield* Ref.set(closing, true)
    yield* Scope.close(forwardScope, Exit.void)
    yield* finish({ _tag: "Closed" }, Exit.void)
  })
  // `shutdown` runs when the caller's scope closes, or earlier through `close`; closing the
  // handle also takes it out of the caller's scope, so a forward closed early (or one that
  // failed to start) leaves nothing behind in a long-lived scope
  const handle = yield* Scope.fork(outer, "sequential")
  yield* Scope.addFinalizer(handle, shutdown)
  const close: Effect.Effect<void> = Scope.close(handle, Exit.void).pipe(
    Effect.andThen(Deferred.await(done)),
    Effect.ignore,
    Effect.uninterruptible
  )

  const start = spec.retry === undefined ? firstStart : Retry.retryWhile(firstStart, spec.retry, isTransient)
  /** Follows kubectl after ready: a loss fails the forward or, with `reconnect`, brings it back. */
  const supervise = (first: { readonly attempt: Attempt; readonly scope: Scope.Closeable }) => Effect.gen(function*() {
    const ports = first.attempt.ports
    let live = first
    while (true) {
      const { exit, stderr } = yield* Deferred.await(live.attempt.ended)
      if (yield* Ref.get(closing)) return
      const override = yield* Ref.get(live.attempt.lossReason)
      const lost = new ForwardLost({
        target: spec.resource,
        reason: override ?? lostReason(stderr, exit),
        exitCode: exit.exitCode
      })
      // tell the truth first, then clean up what is left of the attempt
      if (spec.reconnect === undefined) {
        yield* SubscriptionRef.set(status, { _tag: "Failed", error: lost })
        yield* Scope.close(live.scope, Exit.void)
        yield* Deferred.fail(done, lost)
        return
      }
      yield* SubscriptionRef.set(status, { _tag: "Reconnecting", attempt: 1, cause: lost })
      yield* Scope.close(live.scope, Exit.void)
      let attempt = 1
      const reconnecting = attemptIn(ports.map((p) => p.local)).pipe(
        Effect.tapError((cause) =>
          Effect.suspend(() => SubscriptionRef.set(status, { _tag: "Reconnecting", attempt: ++attempt, cause }))
        )
      )
      const next = yield* Effect.result(Retry.retryWhile(reconnecting, spec.reconnect, isReconnectable))
      if (next._tag === "Failure") {
        const error = next.failure
        const final = new ForwardLost({
          target: spec.resource,
          reason: `${lost.reason}; reconnecting failed: ${error.message}`,
          exitCode: lost.exitCode
        })
        yield* SubscriptionRef.set(status, { _tag: "Failed", error })
        yield* Deferred.fail(done, final)
        return
      }
      live = next.success
      yield* SubscriptionRef.set(status, { _tag: "Ready", ports })
      yield* keepalive(spec, next.success.attempt).pipe(Effect.forkIn(next.success.scope))
    }
  })
  // the start is interruptible; once it succeeded, the rest runs without a gap in which an
  // interruption would leave a started kubectl without its supervisor
  const ports = yield* Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const started = yield* restore(start).pipe(Effect.onError(() => Scope.close(handle, Exit.void)))
      yield* SubscriptionRef.set(status, { _tag: "Ready", ports: started.attempt.ports })
      yield* keepalive(spec, started.attempt).pipe(Effect.forkIn(started.scope))
      yield* supervise(started).pipe(Effect.forkIn(forwardScope))
      return started.attempt.ports
    })
  )

  const forward: PortForward = {
    target: spec.resource,
    namespace,
    ports,
    localPort: ports[0].local,
    remotePort: ports[0].remote,
    isOpen: SubscriptionRef.get(status).pipe(Effect.map(isOpenStatus)),
    currentStatus: SubscriptionRef.get(status),
    status: SubscriptionRef.changes(status).pipe(
      Stream.takeUntil((s) => s._tag === "Closed" || s._tag === "Failed")
    ),
    close,
    awaitClosed: Deferred.await(done)
  }
  return forward
})

/**
 * The default services a forward needs: kubectl from `PATH` (or `options.binary`) and
 * OS-assigned dynamic ports.
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
): Layer.Layer<Kubectl.Kubectl | PortAllocator.PortAllocator> =>
  Layer.mergeAll(Kubectl.layer(options), PortAllocator.layer)

/**
 * The default services configured from the environment: `Kubectl.layerConfig` (binary,
 * kubeconfig, context, namespace, kill grace, watchdog from `KUBE_FORWARD_*` and `KUBECONFIG`)
 * and OS-assigned dynamic ports.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<Kubectl.Kubectl | PortAllocator.PortAllocator, Config.ConfigError> = Layer
  .mergeAll(Kubectl.layerConfig, PortAllocator.layer)

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

