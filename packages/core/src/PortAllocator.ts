/**
 * The service that hands out local ports for forwards that did not ask for a fixed one.
 *
 * - {@link layer} (the default): lets the operating system choose. `allocate` answers `0`,
 *   kubectl binds port 0 and reports the port it got, so no other program can take the port
 *   between choosing and binding.
 * - {@link layerRange}: hands out ports from a fixed range, lowest free one first, for CI
 *   machines where only some ports may be used or where port numbers should be predictable.
 * - {@link make}: build your own from two functions.
 *
 * `isFree` answers whether a port can be bound right now at an address; the forward uses it to
 * report `PortInUse` for a fixed port before starting kubectl.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import { Context, Effect, Layer, type Scope } from "effect"
import { PortsExhausted } from "./PortForwardError.ts"

/**
 * The local port allocator.
 *
 * @category services
 * @since 0.1.0
 */
export class PortAllocator extends Context.Service<PortAllocator, {
  /**
   * A local port for a new listener at `address`, held until the scope closes. `0` means
   * "let the operating system choose when binding".
   */
  readonly allocate: (address: string) => Effect.Effect<number, PortsExhausted, Scope.Scope>
  /** Whether `port` can be bound at `address` right now. */
  readonly isFree: (port: number, address: string) => Effect.Effect<boolean>
}>()("@kube-forward/core/PortAllocator") {}

const bindHost = (address: string): string => address === "localhost" ? "127.0.0.1" : address

/**
 * Tries to bind `port` at `address` (with the same socket options kubectl uses) and closes the
 * listener again. `true` when the bind succeeded.
 *
 * @category utils
 * @since 0.1.0
 */
export const isFree = (port: number, address: string): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const server = Net.createServer()
    server.unref()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ port, host: bindHost(address), exclusive: true }, () => {
      server.close(() => resume(Effect.succeed(true)))
    })
  })

/**
 * Builds an allocator from two functions.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  service: PortAllocator["Service"]
): Layer.Layer<PortAllocator> => Layer.succeed(PortAllocator, PortAllocator.of(service))

/**
 * The default allocator: the operating system chooses each dynamic port at bind time.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<PortAllocator> = make({
  allocate: () => Effect.succeed(0),
  isFree
})

/**
 * Hands out ports from `from` to `to` (inclusive): the lowest port that is neither held by
 * another forward of this layer nor bound by anyone else. A port goes back to the pool when
 * the forward that holds it closes.
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
  Layer.sync(PortAllocator, () => {
    // port claims of this layer: key -> the claim's token, so a release only undoes its own claim
    const held = new Map<string, symbol>()
    const key = (port: number, address: string) => `${bindHost(address)}|${port}`
    const release = (k: string, token: symbol) =>
      Effect.sync(() => {
        if (held.get(k) === token) held.delete(k)
      })
    const allocate = (address: string): Effect.Effect<number, PortsExhausted, Scope.Scope> =>
      Effect.gen(function*() {
        for (let port = range.from; port <= range.to; port++) {
          const k = key(port, address)
          if (held.has(k)) continue
          const token = Symbol(k)
          // claim first, then check, so two concurrent allocations never get the same port
          yield* Effect.acquireRelease(Effect.sync(() => held.set(k, token)), () => release(k, token))
          if (yield* isFree(port, address)) return port
          yield* release(k, token)
        }
        return yield* new PortsExhausted({ from: range.from, to: range.to, address })
      })
    return PortAllocator.of({ allocate, isFree })
  })
