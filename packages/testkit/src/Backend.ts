/**
 * What answers behind a fake pod's port. A `Backend` is a plain description; the fake cluster
 * starts the in-process ones (echo, http, sink, source, handler) lazily on a loopback port the
 * first time a port forward reaches them, and closes them when its scope closes. `address`
 * points at something you already run.
 *
 * @example
 * ```ts
 * import { Backend, FakeCluster } from "@kube-forward/testkit"
 *
 * const cluster = FakeCluster.make({
 *   pods: [{
 *     name: "web",
 *     containers: [{ name: "app", ports: [
 *       { name: "http", containerPort: 80, backend: Backend.http() },
 *       { containerPort: 7, backend: Backend.echo() }
 *     ] }]
 *   }]
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type * as Net from "node:net"
import { pattern as patternBytes, sinkCount } from "./internal/backends.ts"

/**
 * Echoes every byte back, and half-closes after the client does.
 *
 * @category models
 * @since 0.1.0
 */
export interface Echo {
  readonly _tag: "Echo"
}

/**
 * Options of {@link http}.
 *
 * @category models
 * @since 0.1.0
 */
export interface HttpOptions {
  /** Reported by `GET /whoami` as `{"name": …}`; handy to tell pods behind a service apart. */
  readonly name?: string
  /** The list served by `GET /items` (default: three small objects). */
  readonly items?: ReadonlyArray<unknown>
}

/**
 * A small HTTP/1.1 server. Routes:
 * - `GET /health` → `200 {"status":"ok"}`
 * - `GET /items` → `200 {"items":[…]}`
 * - `GET /whoami` → `200 {"name":…}`
 * - `POST /echo` → `200` with the request body
 * - `GET /bytes/N` → `200` with N bytes of {@link pattern}
 * - anything else → `404 {"error":"not found"}`
 *
 * @category models
 * @since 0.1.0
 */
export interface Http {
  readonly _tag: "Http"
  readonly options: HttpOptions
}

/**
 * Reads and discards everything; counts the bytes.
 *
 * @category models
 * @since 0.1.0
 */
export interface Sink {
  readonly _tag: "Sink"
  /** Bytes received so far by this sink (over all connections and clusters). */
  readonly received: Effect.Effect<number>
}

/**
 * Options of {@link source}.
 *
 * @category models
 * @since 0.1.0
 */
export interface SourceOptions {
  /** Bytes to send per connection before closing; endless when omitted. */
  readonly bytes?: number
}

/**
 * Writes {@link pattern} bytes to every connection (endless, or `bytes` then EOF), honouring
 * backpressure; ignores what it receives.
 *
 * @category models
 * @since 0.1.0
 */
export interface Source {
  readonly _tag: "Source"
  readonly bytes: number | undefined
}

/**
 * An existing TCP server (or a closed port, to get kubelet's "connection refused").
 *
 * @category models
 * @since 0.1.0
 */
export interface Address {
  readonly _tag: "Address"
  readonly host: string
  readonly port: number
}

/**
 * A custom in-process TCP server: `handle` gets every accepted socket.
 *
 * @category models
 * @since 0.1.0
 */
export interface Handler {
  readonly _tag: "Handler"
  readonly handle: (socket: Net.Socket) => void
}

/**
 * What answers behind a pod's container port.
 *
 * @category models
 * @since 0.1.0
 */
export type Backend = Echo | Http | Sink | Source | Address | Handler

/**
 * A backend that echoes every byte back.
 *
 * @category constructors
 * @since 0.1.0
 */
export const echo = (): Backend => ({ _tag: "Echo" })

/**
 * A small HTTP server (see {@link Http} for its routes).
 *
 * @category constructors
 * @since 0.1.0
 */
export const http = (options: HttpOptions = {}): Backend => ({ _tag: "Http", options })

/**
 * A backend that discards what it receives. Keep the returned value to read
 * {@link Sink.received}.
 *
 * @category constructors
 * @since 0.1.0
 */
export const sink = (): Sink => {
  const self: Sink = { _tag: "Sink", received: Effect.sync(() => sinkCount(self)) }
  return self
}

/**
 * A backend that streams {@link pattern} bytes to each connection.
 *
 * @category constructors
 * @since 0.1.0
 */
export const source = (options: SourceOptions = {}): Backend => ({ _tag: "Source", bytes: options.bytes })

/**
 * A backend that is an existing TCP address. Point it at a closed port to make the forward fail
 * the way kubelet does (`error forwarding port …: … connection refused`).
 *
 * @category constructors
 * @since 0.1.0
 */
export const address = (host: string, port: number): Backend => ({ _tag: "Address", host, port })

/**
 * A backend served by your own connection handler.
 *
 * @category constructors
 * @since 0.1.0
 */
export const handler = (f: (socket: Net.Socket) => void): Backend => ({ _tag: "Handler", handle: f })

/**
 * The deterministic pseudo-random bytes that {@link source} and `GET /bytes/N` send: the first
 * `length` bytes of one fixed xorshift sequence, so a test can compute the expected digest.
 *
 * @category utils
 * @since 0.1.0
 */
export const pattern = (length: number): Uint8Array => patternBytes(length)
