/**
 * One attempt of a forward on the native carrier: bind the local ports, resolve the target,
 * upgrade one connection to the pod's port-forward endpoint, and carry every local connection
 * on a stream pair of that session.
 *
 * @internal
 */
import type { Attempt, AttemptRequest, Ended, ForwardedPort } from "@kube-forward/core/Forwarder"
import * as ForwardMetrics from "@kube-forward/core/ForwardMetrics"
import { ClusterUnreachable, type OpenError, PodNotFound, RemoteRefused } from "@kube-forward/core/PortForwardError"
import { Effect, FiberSet, Metric, type Scope } from "effect"
import { carry, check, type Opener } from "./connection.ts"
import type { KubeClient } from "./kubeClient.ts"
import * as Listeners from "./listeners.ts"
import { resolve, type Resolved } from "./resolve.ts"
import { Session } from "./session.ts"
import { socketTransport, tunnelTransport } from "./transport.ts"
import { type TransportMode, upgrade } from "./upgrade.ts"

/** The settings an attempt runs with. */
export interface Settings {
  readonly namespace: string | undefined
  readonly transport: TransportMode
  readonly pingIntervalMs: number
  readonly pingTimeoutMs: number
  readonly spread: boolean
}

/** Where the connections of one spec port go, and when the carrier ended by itself. */
export interface Route {
  readonly opener: (portIndex: number) => Opener
  readonly ended: Effect.Effect<Ended>
  /** Why the carrier ended, if it has (a check that fails then is not the pod's refusal). */
  readonly endedReason: () => string | undefined
}

/** One session to `pod`, closed with the scope. */
export const podSession = (
  client: KubeClient,
  namespace: string,
  pod: string,
  settings: Settings,
  notFound: (detail: string) => PodNotFound
): Effect.Effect<Session, OpenError, Scope.Scope> =>
  Effect.gen(function*() {
    const upgraded = yield* upgrade(client, namespace, pod, settings.transport, notFound)
    const transport = upgraded.kind === "tunnel" ? tunnelTransport : socketTransport
    const session = new Session((events) => transport(upgraded.socket, upgraded.head, events), {
      pingIntervalMs: settings.pingIntervalMs,
      pingTimeoutMs: settings.pingTimeoutMs
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => session.close()))
    return session
  })

/** Every connection to the one pod the target resolved to. */
const podRoute = (
  client: KubeClient,
  namespace: string,
  target: Resolved,
  settings: Settings,
  notFound: (detail: string) => PodNotFound
): Effect.Effect<Route, OpenError, Scope.Scope> =>
  Effect.map(podSession(client, namespace, target.pod, settings, notFound), (session) => ({
    opener: (i) => (events) => session.open(target.ports[i], events),
    // in kubectl's words ("lost connection to pod"), which people and tests look for, then ours
    ended: Effect.callback<Ended>((resume) =>
      session.onEnd((reason) => resume(Effect.succeed({ reason: `lost connection to pod: ${reason}`, exitCode: null })))
    ),
    endedReason: () => session.ended
  }))

/** The check connections, one per port, concurrently. */
const verify = (request: AttemptRequest, route: Route): Effect.Effect<void, OpenError> =>
  Effect.forEach(
    request.spec.ports,
    (port, i) =>
      check(route.opener(i)).pipe(Effect.mapError((failure): OpenError => {
        const ended = route.endedReason()
        return ended !== undefined
          ? new ClusterUnreachable({ detail: `the port-forward session ended: ${ended}` })
          : new RemoteRefused({ target: request.spec.resource, remotePort: port.remote, detail: failure.reason })
      })),
    { concurrency: "unbounded", discard: true }
  )

/** Counts and logs a connection that failed while the forward stays up. */
const reporter =
  (request: AttemptRequest, run: (effect: Effect.Effect<void>) => unknown) => (portIndex: number) => (reason: string) =>
    run(
      Effect.logWarning(
        `a connection through ${request.spec.resource} port ${
          request.spec.ports[portIndex].remote
        } failed (the forward stays up): ${reason}`
      ).pipe(
        Effect.andThen(
          Metric.update(Metric.withAttributes(ForwardMetrics.connectionFailures, { backend: "native" }), 1)
        )
      )
    )

/** Starts one attempt; everything it starts belongs to the current scope. */
export const start = (
  request: AttemptRequest,
  client: KubeClient,
  settings: Settings,
  makeRoute: (
    target: Resolved,
    namespace: string,
    notFound: (detail: string) => PodNotFound
  ) => Effect.Effect<Route, OpenError, Scope.Scope>
): Effect.Effect<Attempt, OpenError, Scope.Scope> =>
  Effect.gen(function*() {
    const { spec } = request
    const bound = yield* Listeners.bind(request.locals, spec.addresses, request.isDynamic)
    const namespace = spec.namespace ?? settings.namespace ?? client.namespace
    const notFound = (detail: string) => new PodNotFound({ target: spec.resource, namespace, detail })
    const target = yield* resolve(client, spec, namespace)
    const route = yield* makeRoute(target, namespace, notFound)
    const run = yield* FiberSet.makeRuntime<never>()
    const report = reporter(request, (effect) => run(effect))
    bound.forEach((b, i) => Listeners.serve(b, (socket) => carry(socket, route.opener(i), report(i))))
    const ports = bound.map((b, i): ForwardedPort => ({
      address: b.address,
      local: b.local,
      remote: spec.ports[i].remote,
      targetPort: target.ports[i]
    }))
    const attempt: Attempt = { ports, verify: verify(request, route), ended: route.ended }
    return attempt
  })

/** The route of a single pod (the default; spreading is in `spread.ts`). */
export const singlePod =
  (client: KubeClient, settings: Settings) =>
  (target: Resolved, namespace: string, notFound: (detail: string) => PodNotFound) =>
    podRoute(client, namespace, target, settings, notFound)
