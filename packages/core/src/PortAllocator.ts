/**
 * The service that hands out local ports for forwards that did not ask for a fixed one.
 *
 * - {@link layer} (the default): lets the operating system choose. `allocate` answers `0`,
 *   kubectl binds port 0 and reports the port it got, so no other program can take the port
 *   between choosing and binding.
 * - {@link layerRange}: hands out ports from a fixed range, lowest free one first, for CI
 *   machines where only some ports may be used or where port numbers should be predictable.
 * - {@link make}: build your own from an `allocate` function (and optionally `isFree`).
 *
 * `isFree` answers whether a port can be bound right now at an address; the forward uses it to
 * report `PortInUse` for a fixed port before starting kubectl.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Scope } from "effect"
import * as Net from "node:net"
import { PortsExhausted } from "./PortForwardError.ts"

/**
 * The local port allocator.
 *
 * @category services
 * @since 0.1.0
 */
export class PortAllocator extends Context.Service<PortAllocator, {
  /**
   * A local port for a new forward listening on every one of `addresses`, held until the
   * scope closes. `0` means "let the operating system choose when binding".
   */
  readonly allocate: (addresses: ReadonlyArray<string>) => Effect.Effect<number, PortsExhausted, Scope.Scope>
  /** Whether nothing listens on `port` at `address` right now (it can be bound). */
  readonly isFree: (port: number, address: string) => Effect.Effect<boolean>
}>()("@kube-forward/core/PortAllocator") {}

/** The concrete addresses a listener on `address` binds: `localhost` is 127.0.0.1 and ::1, as in kubectl. */
const bindHosts = (address: string): ReadonlyArray<string> => address === "localhost" ? ["127.0.0.1", "::1"] : [address]

/**
 * Tries to bind `port` at `address` and closes the listener again. `false` only when the port
 * is taken (`EADDRINUSE`); any other bind error (an address that is not local, a privileged
 * port) is left for kubectl to report, since the port itself is not in use.
 *
 * @category utils
 * @since 0.1.0
 */
export const isFree = (port: number, address: string): Effect.Effect<boolean> =>
  Effect.forEach(bindHosts(address), (host) => bindable(port, host)).pipe(
    // kubectl's localhost needs one of its two addresses; an explicit address needs itself
    Effect.map((free) => address === "localhost" ? free.some(Boolean) : free.every(Boolean))
  )

const bindable = (port: number, host: string): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const server = Net.createServer()
    server.unref()
    server.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code !== "EADDRINUSE")))
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resume(Effect.succeed(true)))
    })
  })

/**
 * Builds an allocator from an `allocate` function; `isFree` defaults to the real check
 * ({@link isFree}). Provide it with `Layer.succeed(PortAllocator, PortAllocator.make(...))`.
 *
 * @example
 * ```ts
 * const Fixed = Layer.succeed(PortAllocator.PortAllocator, PortAllocator.make({ allocate: () => Effect.succeed(0) }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (service: {
  readonly allocate: PortAllocator["Service"]["allocate"]
  readonly isFree?: PortAllocator["Service"]["isFree"] | undefined
}): PortAllocator["Service"] => PortAllocator.of({ allocate: service.allocate, isFree: service.isFree ?? isFree })

/**
 * The default allocator: the operating system chooses each dynamic port at bind time.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<PortAllocator> = Layer.succeed(
  PortAllocator,
  make({ allocate: () => Effect.succeed(0) })
)

/**
 * Builds an allocator that hands out ports from `from` to `to` (inclusive): the lowest port
 * that is neither held by another forward of this allocator nor bound by anyone else. A port
 * goes back to the pool when the forward that holds it closes.
 *
 * @category constructors
 * @since 0.2.0
 */
export const makeRange = (range: { readonly from: number; readonly to: number }): PortAllocator["Service"] => {
  // port claims of this allocator: port -> the claim's token, so a release only undoes its own
  // claim (a forward listens on one port number on each of its addresses)
  const held = new Map<number, symbol>()
  const release = (port: number, token: symbol) =>
    Effect.sync(() => {
      if (held.get(port) === token) held.delete(port)
    })
  const freeEverywhere = (port: number, addresses: ReadonlyArray<string>) =>
    Effect.forEach(addresses, (address) => isFree(port, address)).pipe(Effect.map((free) => free.every(Boolean)))
  const allocate = (addresses: ReadonlyArray<string>): Effect.Effect<number, PortsExhausted, Scope.Scope> =>
    Effect.gen(function*() {
      for (let port = range.from; port <= range.to; port++) {
        if (held.has(port)) continue
        const token = Symbol(String(port))
        // claim first, then check, so two concurrent allocations never get the same port
        yield* Effect.acquireRelease(Effect.sync(() => held.set(port, token)), () => release(port, token))
        if (yield* freeEverywhere(port, addresses)) return port
        yield* release(port, token)
      }
      return yield* new PortsExhausted({ from: range.from, to: range.to, address: addresses.join(",") })
    })
  return make({ allocate })
}

/**
 * Hands out ports from `from` to `to` (inclusive), lowest free first ({@link makeRange}).
 *
 * @example
 * ```ts
 * const CiPorts = PortAllocator.layerRange({ from: 30000, to: 30099 })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerRange = (range: { readonly from: number; readonly to: number }): Layer.Layer<PortAllocator> =>
  Layer.sync(PortAllocator, () => makeRange(range))
