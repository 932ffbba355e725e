/**
 * What both ends of a Kubernetes port forward must agree on, whichever carries the bytes: the
 * request path, the upgrade headers and protocol names of the three transports, and the SPDY
 * stream headers that pair an `error` stream with a `data` stream.
 *
 * - Plain SPDY (kubectl ≤ 1.30, and the fallback): `POST` with `Upgrade: SPDY/3.1` and
 *   `X-Stream-Protocol-Version: portforward.k8s.io`; the `101` repeats both (kubectl ≥ 1.33 checks
 *   the protocol). K `staging/src/k8s.io/apimachinery/pkg/util/httpstream/spdy/roundtripper.go`.
 * - The tunnel (kubectl ≥ 1.31): a WebSocket `GET` with the subprotocol
 *   `SPDY/3.1+portforward.k8s.io`, whose binary messages carry the SPDY byte stream.
 *   K `staging/src/k8s.io/client-go/tools/portforward/tunneling_connection.go`.
 * - The channel protocol (client-node, Python): a WebSocket `GET` with `?ports=…` and the
 *   subprotocol `v4.channel.k8s.io` (see `Channel`).
 *
 * Over SPDY, each forwarded connection is two client-opened streams with the same `port` and
 * `requestid` headers: `streamtype: error` first, then `streamtype: data`.
 * K `staging/src/k8s.io/client-go/tools/portforward/portforward.go`, K
 * `pkg/kubelet/cri/streaming/portforward/httpstream.go`.
 *
 * @since 0.1.0
 */

/**
 * Protocol names, as they appear in `Upgrade`, `X-Stream-Protocol-Version` and
 * `Sec-WebSocket-Protocol` headers.
 *
 * @category constants
 * @since 0.1.0
 */
export const ProtocolName = {
  /** The port-forward stream protocol, in `X-Stream-Protocol-Version`. */
  PortForward: "portforward.k8s.io",
  /** The `Upgrade` token of plain SPDY. */
  Spdy: "SPDY/3.1",
  /** The WebSocket subprotocol of kubectl's SPDY-over-WebSocket tunnel. */
  Tunnel: "SPDY/3.1+portforward.k8s.io",
  /** The channel protocol kubelet speaks for port forwarding. */
  ChannelV4: "v4.channel.k8s.io",
  /** The channel protocol with close signals (exec/attach; not port forwarding). */
  ChannelV5: "v5.channel.k8s.io",
  /** The `Upgrade` token of a WebSocket handshake. */
  WebSocket: "websocket"
} as const

/**
 * HTTP header names of the upgrade requests and responses.
 *
 * @category constants
 * @since 0.1.0
 */
export const UpgradeHeader = {
  Connection: "Connection",
  Upgrade: "Upgrade",
  StreamProtocolVersion: "X-Stream-Protocol-Version",
  WebSocketKey: "Sec-WebSocket-Key",
  WebSocketAccept: "Sec-WebSocket-Accept",
  WebSocketVersion: "Sec-WebSocket-Version",
  WebSocketProtocol: "Sec-WebSocket-Protocol"
} as const

/**
 * The SPDY stream headers of a forwarded connection (lowercase, as on the wire).
 *
 * @category constants
 * @since 0.1.0
 */
export const StreamHeader = {
  /** {@link StreamType}. */
  StreamType: "streamtype",
  /** The remote port, in decimal. */
  Port: "port",
  /** A decimal counter per session from 0, the same on both streams of a connection. */
  RequestId: "requestid"
} as const

/**
 * The two streams of a forwarded connection: `error` (the server writes failure text, then FIN;
 * the client only FINs it) and `data` (the bytes, both ways).
 *
 * @category constants
 * @since 0.1.0
 */
export const StreamType = {
  Data: "data",
  Error: "error"
} as const

/**
 * The query parameter of the channel protocol that lists the ports (repeated, or comma-separated).
 *
 * @category constants
 * @since 0.1.0
 */
export const PORTS_PARAMETER = "ports"

/**
 * The port-forward subresource path of a pod (names percent-encoded).
 *
 * @category paths
 * @since 0.1.0
 */
export const path = (namespace: string, pod: string): string =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward`

/**
 * Splits a port-forward path back into namespace and pod name (a trailing slash allowed), or
 * undefined for any other path.
 *
 * @category paths
 * @since 0.1.0
 */
export const parsePath = (pathname: string): { readonly namespace: string; readonly pod: string } | undefined => {
  const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward\/?$/.exec(pathname)
  if (m === null) return undefined
  try {
    return { namespace: decodeURIComponent(m[1]!), pod: decodeURIComponent(m[2]!) }
  } catch {
    return undefined
  }
}
