/**
 * A facade in the shape of the original port-forward API, built on {@link PortForward.make}:
 * `K8s.make({ namespace }).pod("web").portForward(8080, 80)` and
 * `.portForwardDynamic(80)`. The result is the same scoped {@link PortForward} value, with
 * `localPort`, `remotePort`, `isOpen` and `close`.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const k8s = K8s.make({ namespace: "default" })
 *   const fwd = yield* k8s.pod("web-app").portForward(8080, 80)
 *   yield* Effect.log(`listening on ${fwd.localPort}, open: ${yield* fwd.isOpen}`)
 *   yield* fwd.close
 * }).pipe(Effect.scoped, Effect.provide(PortForward.layer()))
 * ```
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import type { Forwarder } from "./Forwarder.ts"
import type { Input, RemotePort, TargetKind } from "./ForwardSpec.ts"
import type * as PortAllocator from "./PortAllocator.ts"
import * as PortForward from "./PortForward.ts"
import type { OpenError } from "./PortForwardError.ts"

/**
 * Settings shared by every forward of a client: everything of a spec except the target and
 * the ports.
 *
 * @category models
 * @since 0.1.0
 */
export type Options = Omit<Input, "target" | "ports">

/**
 * Opening a forward to one target.
 *
 * @category models
 * @since 0.1.0
 */
export interface Forwardable {
  /** The target, e.g. `pod/web`. */
  readonly target: string
  /** Forwards local port `localPort` (fixed) to `remotePort`. */
  readonly portForward: (
    localPort: number,
    remotePort: RemotePort
  ) => Effect.Effect<PortForward.PortForward, OpenError, Scope.Scope | Forwarder | PortAllocator.PortAllocator>
  /** Forwards a dynamically chosen local port to `remotePort`; read it from `localPort`. */
  readonly portForwardDynamic: (
    remotePort: RemotePort
  ) => Effect.Effect<PortForward.PortForward, OpenError, Scope.Scope | Forwarder | PortAllocator.PortAllocator>
}

/**
 * A client bound to one set of {@link Options} (namespace, context, …).
 *
 * @category models
 * @since 0.1.0
 */
export interface Client {
  readonly pod: (name: string) => Forwardable
  readonly service: (name: string) => Forwardable
  readonly deployment: (name: string) => Forwardable
  readonly statefulset: (name: string) => Forwardable
}

const forwardable = (options: Options, kind: TargetKind, name: string): Forwardable => {
  const target = { kind, name }
  return {
    target: `${kind}/${name}`,
    portForward: (localPort, remotePort) =>
      PortForward.make({ ...options, target, ports: [{ local: localPort, remote: remotePort }] }),
    portForwardDynamic: (remotePort) => PortForward.make({ ...options, target, ports: [remotePort] })
  }
}

/**
 * A client for the given options.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options = {}): Client => ({
  pod: (name) => forwardable(options, "pod", name),
  service: (name) => forwardable(options, "service", name),
  deployment: (name) => forwardable(options, "deployment", name),
  statefulset: (name) => forwardable(options, "statefulset", name)
})

/**
 * Shorthand for `make(options).pod(name)`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const pod = (name: string, options: Options = {}): Forwardable => make(options).pod(name)
