/**
 * Port-forward upgrade negotiation as one pure function: the request (method, path and query,
 * headers) and the cluster's mode, fault and pods in, a decision out (reject with a Status, drop,
 * hold, or accept one of the three transports with the exact `101` to write). The server applies
 * the decision; nothing here touches a socket.
 *
 * Rules and their sources:
 * - plain SPDY: `Upgrade` containing `spdy/3.1`; the `101` names `SPDY/3.1` and the stream protocol
 *   (K `staging/src/k8s.io/apimachinery/pkg/util/httpstream/spdy/upgrade.go`; kubectl ≥ 1.33 checks
 *   it);
 * - WebSocket: `GET` only, with a `Sec-WebSocket-Key` (gorilla/websocket `server.go` `Upgrade`);
 *   the tunnel subprotocol unless the mode is `spdy-only`
 *   (K `staging/src/k8s.io/apiserver/pkg/util/proxy/streamtunnel.go`), else `v4.channel.k8s.io` or
 *   no subprotocol with `?ports=` (K `pkg/kubelet/cri/streaming/portforward/websocket.go`);
 * - the pod must exist and be Running (kubelet refuses otherwise).
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
  /** Answer with this status and `Status` body, then close. */
  | { readonly _tag: "Reject"; readonly code: number; readonly body: Obj.Json }
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

/** Parses `ports` query values (repeated and/or comma-separated), as kubelet does. */
export const parsePorts = (values: ReadonlyArray<string>): Array<number> | string => {
  const ports: Array<number> = []
  for (const value of values) {
    for (const part of value.split(",")) {
      const text = part.trim()
      if (text === "") continue
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

/** A WebSocket upgrade: the tunnel or the channel protocol. */
const negotiateWebSocket = (
  request: UpgradeRequest,
  url: URL,
  state: UpgradeState,
  target: { readonly namespace: string; readonly name: string }
): Decision => {
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
  const protocols = offeredProtocols(request.headers)
  if (protocols.includes(ProtocolName.Tunnel)) {
    if (state.mode === "spdy-only") {
      return badRequest(`unable to upgrade connection: subprotocol "${ProtocolName.Tunnel}" is not supported`)
    }
    const response = WebSocket.handshakeResponse(key, ProtocolName.Tunnel)
    return podProblem(state, target.namespace, target.name) ??
      { _tag: "Accept", transport: "tunnel", ...target, response, ports: [] }
  }
  if (protocols.length === 0 || protocols.includes(ProtocolName.ChannelV4)) {
    const ports = parsePorts(url.searchParams.getAll(PortForwardProtocol.PORTS_PARAMETER))
    if (typeof ports === "string") return badRequest(ports)
    const response = WebSocket.handshakeResponse(key, protocols.length === 0 ? undefined : ProtocolName.ChannelV4)
    return podProblem(state, target.namespace, target.name) ??
      { _tag: "Accept", transport: "websocket", ...target, response, ports }
  }
  return badRequest(
    `unable to upgrade connection: none of the requested subprotocols are supported: ${protocols.join(", ")}`
  )
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
  const upgrade = (request.headers.upgrade ?? "").toLowerCase()
  if (upgrade === ProtocolName.WebSocket) return negotiateWebSocket(request, url, state, target)
  if (upgrade.includes(ProtocolName.Spdy.toLowerCase())) {
    return podProblem(state, target.namespace, target.name) ??
      { _tag: "Accept", transport: "spdy", ...target, response: SPDY_101, ports: [] }
  }
  return badRequest(`unable to upgrade connection: unsupported upgrade "${upgrade}"`)
}

/** The raw HTTP response of a rejection (the socket is closed after it). */
export const statusResponse = (code: number, body: Obj.Json): string => {
  const text = JSON.stringify(body)
  return `HTTP/1.1 ${code} ${Obj.STATUS_TEXT[code] ?? "Error"}\r\n` +
    "Content-Type: application/json\r\n" +
    "Cache-Control: no-cache, private\r\n" +
    `Content-Length: ${Buffer.byteLength(text)}\r\n` +
    "Connection: close\r\n\r\n" +
    text
}
