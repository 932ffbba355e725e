/**
 * Port-forward upgrade negotiation as one pure function: the request (method, path and query,
 * headers) and the cluster's mode, fault and pods in, a decision out (reject with a Status or the
 * plain text a Go handler writes, drop, hold, or accept one of the three transports with the
 * exact `101` to write). The server applies the decision; nothing here touches a socket.
 * Authentication and authorization come before this (see `auth.ts`).
 *
 * Rules, in the order the API server and kubelet apply them, and their sources (K =
 * kubernetes/kubernetes):
 * - the pod must exist (`404` Status) and run (kubelet refuses otherwise);
 * - `Upgrade: websocket` with the tunnel subprotocol (K `staging/src/k8s.io/apiserver/pkg/util/
 *   proxy/streamtunnel.go`): on a server without the feature (`spdy-only`) the request reaches
 *   kubelet's WebSocket handler, which wants `?port=`: `400 text/plain` `query parameter "port"
 *   is required` (K `pkg/kubelet/cri/streaming/portforward/websocket.go` `NewV4Options`; kubernetes
 *   issue #133913); otherwise gorilla/websocket's `Upgrader.Upgrade` (`server.go`) checks `GET`
 *   (`405`), `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` of 16 base64 bytes (`400`),
 *   each answered with the status text and `Sec-Websocket-Version: 13`;
 * - any other WebSocket: the channel protocol, `v4.channel.k8s.io` or none, with `?ports=`
 *   (K `websocket.go`, `staging/src/k8s.io/apimachinery/pkg/util/httpstream/wsstream/conn.go`);
 * - anything else is kubelet's SPDY handler (K `pkg/kubelet/cri/streaming/portforward/
 *   httpstream.go`): `httpstream.Handshake` (K `staging/src/k8s.io/apimachinery/pkg/util/
 *   httpstream/httpstream.go`) needs `X-Stream-Protocol-Version` (without it the error is only
 *   logged and Go answers an empty `200`) offering `portforward.k8s.io` (else `403` with
 *   `X-Accepted-Stream-Protocol-Versions`); then the upgrader (K `.../httpstream/spdy/upgrade.go`)
 *   needs `Upgrade: SPDY/3.1` (else `400` `unable to upgrade: missing upgrade headers in
 *   request: …`); the `101` names `SPDY/3.1` and the stream protocol (kubectl ≥ 1.33 checks it).
 *
 * @internal
 */
import { PortForwardProtocol, WebSocket } from "@kube-forward/protocol"
import type * as Http from "node:http"
import type { PodPhase, TransportMode, UpgradeFault } from "../FakeCluster.ts"
import { invalidPortCause, parsePort } from "./dialer.ts"
import * as Obj from "./objects.ts"

const { ProtocolName, UpgradeHeader } = PortForwardProtocol

/** An upgrade request, as the server received it. */
export interface UpgradeRequest {
  readonly method: string
  /** Path and query. */
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
}

/** What the decision depends on besides the request. */
export interface UpgradeState {
  readonly mode: TransportMode
  readonly fault: UpgradeFault | undefined
  /** A pod's phase, or undefined when there is no such pod. */
  readonly podPhase: (namespace: string, name: string) => PodPhase | undefined
}

/** A port-forward transport: plain SPDY, SPDY over WebSocket, or the v4 channel protocol. */
export type Transport = "spdy" | "tunnel" | "websocket"

/** What to do with an upgrade request. */
export type Decision =
  /**
   * Answer with this status and body — a `Status` (JSON), or the plain text a Go handler writes
   * with `http.Error` — and these extra headers, then close.
   */
  | {
    readonly _tag: "Reject"
    readonly code: number
    readonly body: Obj.Json | string
    readonly headers?: Readonly<Record<string, string>>
  }
  /** Close the connection without any response. */
  | { readonly _tag: "Drop" }
  /** Keep the connection and never answer. */
  | { readonly _tag: "Hold" }
  /** Write `response` (alone: nothing may share its write) and start a session. */
  | {
    readonly _tag: "Accept"
    readonly transport: Transport
    readonly namespace: string
    readonly name: string
    readonly response: string
    /** The `ports` of a channel session (empty otherwise). */
    readonly ports: ReadonlyArray<number>
  }

/** The SPDY `101`, exactly. */
const SPDY_101 = "HTTP/1.1 101 Switching Protocols\r\n" +
  `${UpgradeHeader.Connection}: Upgrade\r\n` +
  `${UpgradeHeader.Upgrade}: ${ProtocolName.Spdy}\r\n` +
  `${UpgradeHeader.StreamProtocolVersion}: ${ProtocolName.PortForward}\r\n` +
  "\r\n"

const badRequest = (message: string): Decision => ({
  _tag: "Reject",
  code: 400,
  body: Obj.status(400, { message, reason: "BadRequest" })
})

/** A fault's Status body, as RBAC or a missing pod would word it. */
const faultStatus = (code: number, namespace: string, name: string): Obj.Json => {
  switch (code) {
    case 403:
      return Obj.forbidden({ resource: "pods" }, name, "create", namespace, "portforward")
    case 404:
      return Obj.notFound({ resource: "pods" }, name)
    default:
      return Obj.status(code)
  }
}

/** The pod an upgrade is for. */
interface Target {
  readonly namespace: string
  readonly name: string
}

/**
 * Parses `ports` query values (repeated and/or comma-separated) as the API server converts them
 * (K `Convert_Slice_string_To_Slice_int32`: split at commas, each part a number as it is — no
 * trimming, an empty part is an error), then kubelet's range check.
 */
export const parsePorts = (values: ReadonlyArray<string>): Array<number> | string => {
  const ports: Array<number> = []
  for (const value of values) {
    for (const text of value.split(",")) {
      const port = parsePort(text)
      if (port === undefined) return invalidPortCause(text)
      ports.push(port)
    }
  }
  return ports.length === 0 ? "query parameter \"port\" is required" : ports
}

/** The rejection for a pod that is missing or not Running, or undefined when it may be forwarded to. */
const podProblem = (state: UpgradeState, namespace: string, name: string): Decision | undefined => {
  const phase = state.podPhase(namespace, name)
  if (phase === undefined) return { _tag: "Reject", code: 404, body: Obj.notFound({ resource: "pods" }, name) }
  if (phase !== "Running") {
    return badRequest(`unable to upgrade connection: pod ${name} is not running (phase ${phase})`)
  }
  return undefined
}

/** The subprotocols a WebSocket request offers, in order. */
const offeredProtocols = (headers: Http.IncomingHttpHeaders): Array<string> =>
  (headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim()).filter((p) => p.length > 0)

/** What Go's `http.Error(w, text, code)` writes: the text and a newline, as `text/plain`. */
const goError = (code: number, text: string, headers?: Record<string, string>): Decision => ({
  _tag: "Reject",
  code,
  body: `${text}\n`,
  headers: { "X-Content-Type-Options": "nosniff", ...headers }
})

/** gorilla/websocket's answer to a bad handshake: the status text, with the version it speaks. */
const gorillaError = (code: number): Decision =>
  goError(code, Obj.STATUS_TEXT[code] ?? "Error", { "Sec-Websocket-Version": "13" })

/** A header's values split at commas, trimmed, empty ones dropped (K `commaSeparatedHeaderValues`). */
const tokens = (value: string | Array<string> | undefined): Array<string> =>
  (Array.isArray(value) ? value : value === undefined ? [] : [value])
    .flatMap((v) => v.split(","))
    .map((p) => p.trim())
    .filter((p) => p.length > 0)

/** gorilla's `isValidChallengeKey`: base64 of exactly 16 bytes. */
const validKey = (key: unknown): key is string => typeof key === "string" && /^[A-Za-z0-9+/]{22}==$/.test(key)

/** The tunnel, on a server with the `PortForwardWebsockets` feature or without it. */
const negotiateTunnel = (request: UpgradeRequest, state: UpgradeState, target: Target): Decision => {
  if (state.mode === "spdy-only") {
    if (state.podPhase(target.namespace, target.name) === undefined) {
      return { _tag: "Reject", code: 404, body: Obj.notFound({ resource: "pods" }, target.name) }
    }
    // kubelet's NewV4Options, passed through by the API server's proxy as it is
    return {
      _tag: "Reject",
      code: 400,
      body: "query parameter \"port\" is required",
      headers: { "Content-Type": "text/plain; charset=utf-8" }
    }
  }
  const problem = podProblem(state, target.namespace, target.name)
  if (problem !== undefined) return problem
  if (request.method !== "GET") return gorillaError(405)
  if (!tokens(request.headers["sec-websocket-version"]).includes("13")) return gorillaError(400)
  const key = request.headers["sec-websocket-key"]
  if (!validKey(key)) return gorillaError(400)
  const response = WebSocket.handshakeResponse(key, ProtocolName.Tunnel)
  return { _tag: "Accept", transport: "tunnel", ...target, response, ports: [] }
}

/** The channel protocol (`v4.channel.k8s.io`, or no subprotocol) with `?ports=`. */
const negotiateChannel = (request: UpgradeRequest, url: URL, state: UpgradeState, target: Target): Decision => {
  if (request.method !== "GET") {
    return {
      _tag: "Reject",
      code: 405,
      body: Obj.status(405, {
        message: "websocket: the client is not using the websocket protocol: request method is not GET"
      })
    }
  }
  const key = request.headers["sec-websocket-key"]
  if (typeof key !== "string" || key.length === 0) return badRequest("missing Sec-WebSocket-Key")
  // kubelet's golang.org/x/net/websocket (`hybiServerHandshaker.ReadHandshake`, `newServerConn`)
  if (request.headers["sec-websocket-version"] !== "13") {
    return { _tag: "Reject", code: 400, body: "bad protocol version", headers: { "Sec-WebSocket-Version": "13" } }
  }
  const protocols = offeredProtocols(request.headers)
  if (protocols.length > 0 && !protocols.includes(ProtocolName.ChannelV4)) {
    return badRequest(
      `unable to upgrade connection: none of the requested subprotocols are supported: ${protocols.join(", ")}`
    )
  }
  const ports = parsePorts(url.searchParams.getAll(PortForwardProtocol.PORTS_PARAMETER))
  if (typeof ports === "string") return badRequest(ports)
  const response = WebSocket.handshakeResponse(key, protocols.length === 0 ? undefined : ProtocolName.ChannelV4)
  return podProblem(state, target.namespace, target.name) ??
    { _tag: "Accept", transport: "websocket", ...target, response, ports }
}

/** Go's `%#v` of an `http.Header`, near enough: canonical names, sorted. */
const goHeaders = (headers: Http.IncomingHttpHeaders): string => {
  const canonical = (name: string) =>
    name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase())
  const entries = Object.entries(headers)
    .filter((e): e is [string, string | Array<string>] => e[1] !== undefined)
    .map(([name, value]) => [canonical(name), Array.isArray(value) ? value : [value]] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `http.Header{${
    entries.map(([name, values]) =>
      `${JSON.stringify(name)}:[]string{${values.map((v) => JSON.stringify(v)).join(", ")}}`
    )
      .join(", ")
  }}`
}

/** kubelet's SPDY handler: the stream protocol handshake, then the upgrade headers. */
const negotiateSpdy = (request: UpgradeRequest, state: UpgradeState, target: Target): Decision => {
  const problem = podProblem(state, target.namespace, target.name)
  if (problem !== undefined) return problem
  const offered = tokens(request.headers["x-stream-protocol-version"])
  // Handshake's error is only logged: the handler returns without writing, so Go answers 200
  if (offered.length === 0) return { _tag: "Reject", code: 200, body: "" }
  if (!offered.includes(ProtocolName.PortForward)) {
    return goError(
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${
        offered.join(" ")
      }], server accepts [${ProtocolName.PortForward}]`,
      { "X-Accepted-Stream-Protocol-Versions": ProtocolName.PortForward }
    )
  }
  const connection = (request.headers.connection ?? "").toLowerCase()
  const upgrade = (request.headers.upgrade ?? "").toLowerCase()
  if (!connection.includes("upgrade") || !upgrade.includes(ProtocolName.Spdy.toLowerCase())) {
    return goError(400, `unable to upgrade: missing upgrade headers in request: ${goHeaders(request.headers)}`)
  }
  return { _tag: "Accept", transport: "spdy", ...target, response: SPDY_101, ports: [] }
}

/** Decides what to do with a port-forward upgrade request. */
export const negotiate = (request: UpgradeRequest, state: UpgradeState): Decision => {
  const url = new URL(request.url, "http://fake")
  const path = PortForwardProtocol.parsePath(url.pathname)
  if (path === undefined) return { _tag: "Reject", code: 404, body: Obj.status(404, { details: {} }) }
  const target = { namespace: path.namespace, name: path.pod }
  const fault = state.fault
  if (fault !== undefined) {
    switch (fault._tag) {
      case "Status":
        return { _tag: "Reject", code: fault.code, body: faultStatus(fault.code, target.namespace, target.name) }
      case "CloseWithoutStatus":
        return { _tag: "Drop" }
      case "Hang":
        return { _tag: "Hold" }
    }
  }
  // K wsstream.IsWebSocketRequest: Upgrade equal to "websocket"
  if ((request.headers.upgrade ?? "").toLowerCase() === ProtocolName.WebSocket) {
    return offeredProtocols(request.headers).includes(ProtocolName.Tunnel) ?
      negotiateTunnel(request, state, target) :
      negotiateChannel(request, url, state, target)
  }
  return negotiateSpdy(request, state, target)
}

/**
 * The raw HTTP response of a rejection (the socket is closed after it): a `Status` as JSON, or
 * plain text as Go's `http.Error` writes it.
 */
export const statusResponse = (
  code: number,
  body: Obj.Json | string,
  headers: Readonly<Record<string, string>> = {}
): string => {
  const text = typeof body === "string" ? body : JSON.stringify(body)
  const all: Record<string, string> = {
    "Content-Type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    ...(typeof body === "string" ? {} : { "Cache-Control": "no-cache, private" }),
    ...headers,
    "Content-Length": String(Buffer.byteLength(text)),
    Connection: "close"
  }
  return `HTTP/1.1 ${code} ${Obj.STATUS_TEXT[code] ?? "Error"}\r\n` +
    Object.entries(all).map(([name, value]) => `${name}: ${value}\r\n`).join("") +
    "\r\n" + text
}
