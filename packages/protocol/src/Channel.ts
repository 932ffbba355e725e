/**
 * The channel framing of port forwarding over a WebSocket (`v4.channel.k8s.io`; kubelet
 * `pkg/kubelet/cri/streaming/portforward/websocket.go`, client-node `src/portforward.ts`, the Python
 * client `kubernetes/base/stream/ws_client.py`):
 *
 * - every binary message is `[channel:u8] + payload`;
 * - the port at index `i` of the `ports` query uses data channel `2i` and error channel `2i + 1`;
 * - right after the handshake the server sends, for each port, `[2i, lo, hi]` then `[2i + 1, lo, hi]`
 *   (the port, u16 little-endian), each as a separate 3-byte message;
 * - then client → server `[2i] + bytes`; server → client `[2i] + bytes` and `[2i + 1] + error text`.
 *
 * `v5.channel.k8s.io` adds one message, the close signal `[255, channel]` (k8s.io/apimachinery
 * `pkg/util/remotecommand` `StreamClose`), which kubelet's port forwarding does not speak.
 *
 * Bytes in, messages out. Malformed input throws a {@link ChannelError}.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The v5 close-signal channel.
 *
 * @category constants
 * @since 0.1.0
 */
export const CLOSE_SIGNAL = 255

/**
 * The most ports one WebSocket can carry (two channels each, below the close-signal channel).
 *
 * @category constants
 * @since 0.1.0
 */
export const MAX_PORTS = 127

/**
 * A malformed channel message: empty, or a port announcement that is not 3 bytes.
 *
 * @category errors
 * @since 0.1.0
 */
export class ChannelError extends Schema.TaggedError<ChannelError>("@kube-forward/protocol/ChannelError")(
  "ChannelError",
  { message: Schema.String }
) {}

/**
 * The data channel of the port at `index`.
 *
 * @category channels
 * @since 0.1.0
 */
export const dataChannel = (index: number): number => 2 * index

/**
 * The error channel of the port at `index`.
 *
 * @category channels
 * @since 0.1.0
 */
export const errorChannel = (index: number): number => 2 * index + 1

/**
 * What a channel number stands for, given how many ports the WebSocket carries: a port's data or
 * error channel, the v5 close signal, or nothing (kubelet ignores such messages; clients treat them
 * as a protocol error).
 *
 * @category channels
 * @since 0.1.0
 */
export const classify = (
  channel: number,
  ports: number
):
  | { readonly _tag: "Data"; readonly index: number }
  | { readonly _tag: "Error"; readonly index: number }
  | { readonly _tag: "CloseSignal" }
  | { readonly _tag: "Unknown" } =>
{
  if (channel === CLOSE_SIGNAL) return { _tag: "CloseSignal" }
  const index = channel >> 1
  if (index >= ports) return { _tag: "Unknown" }
  return (channel & 1) === 0 ? { _tag: "Data", index } : { _tag: "Error", index }
}

/**
 * The one-byte channel prefix of a message, to write before a payload sent separately (so that a
 * large payload is never copied).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodePrefix = (channel: number): Buffer => Buffer.from([channel])

/**
 * A message on `channel`.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeMessage = (channel: number, payload: Uint8Array): Buffer => {
  const message = Buffer.allocUnsafe(1 + payload.length)
  message[0] = channel
  message.set(payload, 1)
  return message
}

/**
 * A message's channel and payload (a view of the message). Throws on an empty message.
 *
 * @category decoding
 * @since 0.1.0
 */
export const decodeMessage = (message: Buffer): { readonly channel: number; readonly payload: Buffer } => {
  if (message.length === 0) throw new ChannelError({ message: "empty channel message" })
  return { channel: message[0]!, payload: message.subarray(1) }
}

/**
 * One port announcement, `[channel, lo, hi]`.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodePortAnnouncement = (channel: number, port: number): Buffer =>
  Buffer.from([channel, port & 0xff, (port >> 8) & 0xff])

/**
 * The messages a server sends first, in order: for each port, its data channel's announcement then
 * its error channel's. Each must go out as a message of its own (the Python client checks the
 * 3-byte size).
 *
 * @category encoding
 * @since 0.1.0
 */
export const portAnnouncements = (ports: ReadonlyArray<number>): Array<Buffer> =>
  ports.flatMap((port, index) => [
    encodePortAnnouncement(dataChannel(index), port),
    encodePortAnnouncement(errorChannel(index), port)
  ])

/**
 * Reads a port announcement, the first message of each channel. Throws unless it is exactly 3
 * bytes, as the Python client does (`Unexpected initial channel frame data size`).
 *
 * @category decoding
 * @since 0.1.0
 */
export const decodePortAnnouncement = (message: Buffer): { readonly channel: number; readonly port: number } => {
  if (message.length !== 3) {
    throw new ChannelError({ message: `unexpected initial channel frame data size ${message.length}` })
  }
  return { channel: message[0]!, port: message.readUInt16LE(1) }
}

/**
 * The v5 close signal for `channel`: the sender writes nothing more on it.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeCloseSignal = (channel: number): Buffer => Buffer.from([CLOSE_SIGNAL, channel])
