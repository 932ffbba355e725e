/**
 * `@kube-forward/protocol`: pure codecs of the Kubernetes port-forward wire protocols. Bytes in,
 * frames out; no sockets, no timers. Shared by the testkit's fake API server and kube-forward's
 * in-process client.
 *
 * @since 0.1.0
 */

/**
 * SPDY/3.1 frames (every control frame and DATA), the incremental decoder, header blocks and their
 * zlib contexts, and a synchronous stored-block header compressor.
 *
 * @since 0.1.0
 */
export * as Spdy from "./Spdy.ts"

/**
 * RFC 6455 frames for both sides: handshake keys, the decoder, masked and unmasked encoders.
 *
 * @since 0.1.0
 */
export * as WebSocket from "./WebSocket.ts"

/**
 * The `v4.channel.k8s.io` port-forward framing: data channel `2i`, error channel `2i + 1`, the port
 * announcements.
 *
 * @since 0.1.0
 */
export * as Channel from "./Channel.ts"

/**
 * The names both ends agree on: protocols, upgrade headers, SPDY stream headers and types, paths.
 *
 * @since 0.1.0
 */
export * as PortForwardProtocol from "./PortForwardProtocol.ts"
