/**
 * The one upgrade of a forward's session, negotiated as kubectl ≥ 1.31 does (client-go's
 * `tools/portforward/fallback_dialer.go`): a WebSocket whose subprotocol is
 * `SPDY/3.1+portforward.k8s.io` first; when the server does not take it — any answer but a 101,
 * or a 101 without exactly that subprotocol, as servers without the `PortForwardWebsockets`
 * feature answer (`400 … query parameter "port" is required`) — SPDY/3.1 over an HTTP/1.1
 * upgrade. A connection that fails, or closes without an answer, is not a refusal: no fallback.
 *
 * The WebSocket handshake is written here on `node:http(s)` with the codec of
 * `@kube-forward/protocol` rather than with the `ws` package: `ws` refuses a subprotocol with a
 * `/` in it (not an RFC 7230 token), which is exactly the one the tunnel needs; the request has
 * the same TLS options, headers and agent as every other request (see `kubeClient.ts`).
 *
 * @internal
 */
import type { ApiServerError, Forbidden, PodNotFound } from "@kube-forward/core/PortForwardError"
import { PortForwardProtocol, WebSocket } from "@kube-forward/protocol"
import { Effect, type Scope } from "effect"
import type * as Http from "node:http"
import type * as Net from "node:net"
import { answerError, type RequestFailure, requestFailure } from "./errors.ts"
import type { KubeClient, RequestSpec } from "./kubeClient.ts"

/** Which transports to try: both (tunnel first), or one of them only. */
export type TransportMode = "auto" | "websocket" | "spdy"

/** Everything an upgrade can fail with. */
export type UpgradeError = RequestFailure | Forbidden | PodNotFound | ApiServerError

/** A successful upgrade. */
export interface Upgraded {
  readonly kind: "spdy" | "tunnel"
  readonly socket: Net.Socket
  readonly head: Buffer
}

type Answer =
  | {
    readonly _tag: "Upgraded"
    readonly response: Http.IncomingMessage
    readonly socket: Net.Socket
    readonly head: Buffer
  }
  | { readonly _tag: "Refused"; readonly response: Http.IncomingMessage; readonly body: string }

const BODY_LIMIT = 64 * 1024

/** Sends an upgrade request and waits for the server's answer; interruption destroys it. */
const ask = (client: KubeClient, spec: RequestSpec): Effect.Effect<Answer, UpgradeError> =>
  client.request(spec).pipe(
    Effect.flatMap((request) =>
      Effect.callback<Answer, UpgradeError>((resume) => {
        request.once("error", (e) => resume(Effect.fail(requestFailure(client.server)(e))))
        request.once("upgrade", (response, socket: Net.Socket, head: Buffer) => {
          resume(Effect.succeed({ _tag: "Upgraded", response, socket, head }))
        })
        request.once("response", (response) => {
          const chunks: Array<Buffer> = []
          let size = 0
          response.on("data", (chunk: Buffer) => {
            size += chunk.length
            if (size <= BODY_LIMIT) chunks.push(chunk)
          })
          response.once(
            "end",
            () => resume(Effect.succeed({ _tag: "Refused", response, body: Buffer.concat(chunks).toString("utf8") }))
          )
          response.once("error", (e) => resume(Effect.fail(requestFailure(client.server)(e))))
        })
        request.end()
        return Effect.sync(() => request.destroy())
      })
    )
  )

const header = (response: Http.IncomingMessage, name: string): string => {
  const value = response.headers[name.toLowerCase()]
  return (Array.isArray(value) ? value.join(",") : value ?? "").trim()
}

/** The WebSocket tunnel: a refusal (or a 101 without our subprotocol) is a `Refused`. */
const tunnel = (client: KubeClient, path: string) =>
  Effect.gen(function*() {
    const key = WebSocket.generateKey()
    const answer = yield* ask(client, {
      method: "GET",
      path,
      headers: {
        [PortForwardProtocol.UpgradeHeader.Connection]: "Upgrade",
        [PortForwardProtocol.UpgradeHeader.Upgrade]: PortForwardProtocol.ProtocolName.WebSocket,
        [PortForwardProtocol.UpgradeHeader.WebSocketKey]: key,
        [PortForwardProtocol.UpgradeHeader.WebSocketVersion]: "13",
        [PortForwardProtocol.UpgradeHeader.WebSocketProtocol]: PortForwardProtocol.ProtocolName.Tunnel
      }
    })
    if (answer._tag === "Refused") return answer
    const r = answer.response
    const valid = header(r, "Upgrade").toLowerCase() === "websocket" &&
      header(r, PortForwardProtocol.UpgradeHeader.WebSocketAccept) === WebSocket.acceptKey(key) &&
      header(r, PortForwardProtocol.UpgradeHeader.WebSocketProtocol) === PortForwardProtocol.ProtocolName.Tunnel
    if (valid) return answer
    answer.socket.destroy()
    return { _tag: "Refused" as const, response: r, body: "the server did not accept the tunnel's subprotocol" }
  })

/** SPDY/3.1 over an HTTP/1.1 upgrade, checked as client-go's `spdy/roundtripper.go` checks it. */
const spdy = (client: KubeClient, path: string) =>
  Effect.gen(function*() {
    const answer = yield* ask(client, {
      method: "POST",
      path,
      headers: {
        [PortForwardProtocol.UpgradeHeader.Connection]: "Upgrade",
        [PortForwardProtocol.UpgradeHeader.Upgrade]: PortForwardProtocol.ProtocolName.Spdy,
        [PortForwardProtocol.UpgradeHeader.StreamProtocolVersion]: PortForwardProtocol.ProtocolName.PortForward,
        "Content-Length": "0"
      }
    })
    if (answer._tag === "Refused") return answer
    const r = answer.response
    const valid = header(r, "Connection").toLowerCase().includes("upgrade") &&
      header(r, "Upgrade").toLowerCase().includes("spdy/3.1") &&
      header(r, PortForwardProtocol.UpgradeHeader.StreamProtocolVersion) ===
        PortForwardProtocol.ProtocolName.PortForward
    if (valid) return answer
    answer.socket.destroy()
    return {
      _tag: "Refused" as const,
      response: r,
      body: `unable to negotiate the port-forward protocol (got "${
        header(r, PortForwardProtocol.UpgradeHeader.StreamProtocolVersion)
      }")`
    }
  })

/**
 * Upgrades a connection to pod `pod`'s port-forward endpoint, as `mode` allows. The socket
 * belongs to the current scope.
 */
export const upgrade = (
  client: KubeClient,
  namespace: string,
  pod: string,
  mode: TransportMode,
  notFound: (detail: string) => PodNotFound
): Effect.Effect<Upgraded, UpgradeError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const path = PortForwardProtocol.path(namespace, pod)
      let answer = mode === "spdy" ? yield* spdy(client, path) : yield* tunnel(client, path)
      let kind: Upgraded["kind"] = mode === "spdy" ? "spdy" : "tunnel"
      if (answer._tag === "Refused" && mode === "auto") {
        answer = yield* spdy(client, path)
        kind = "spdy"
      }
      if (answer._tag === "Refused") return yield* answerError(answer.response, answer.body, notFound)
      return { kind, socket: answer.socket, head: answer.head }
    }),
    (upgraded) => Effect.sync(() => upgraded.socket.destroy()),
    { interruptible: true }
  )
