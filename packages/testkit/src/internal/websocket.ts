/**
 * Minimal RFC 6455 framing for the server side: handshake key, an incremental frame decoder that
 * unmasks client frames, and frame encoders. Written by hand because the `ws` package rejects
 * kubectl's `SPDY/3.1+portforward.k8s.io` subprotocol (`/` is not a token character).
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import { ByteQueue } from "./byteQueue.ts"

/** WebSocket opcodes. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

/** Close codes used here. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  NoStatus: 1005,
  MessageTooBig: 1009
} as const

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`. */
export const acceptKey = (key: string): string =>
  Crypto.createHash("sha1").update(key + GUID).digest("base64")

/** One decoded frame (payload already unmasked). */
export interface WsFrame {
  readonly fin: boolean
  readonly opcode: number
  readonly masked: boolean
  readonly payload: Buffer
}

/** Thrown by the decoder on frames that violate RFC 6455. */
export class WsProtocolError extends Error {
  override readonly name = "WsProtocolError"
}

/** The largest frame payload accepted (a guard against garbage lengths). */
export const MAX_WS_PAYLOAD = 16 * 1024 * 1024

/** Incremental decoder: feed TCP chunks, get whole frames back in order. */
export class WsDecoder {
  private readonly queue = new ByteQueue()

  /** Adds bytes and returns every frame they complete. */
  push(chunk: Buffer): Array<WsFrame> {
    this.queue.push(chunk)
    const frames: Array<WsFrame> = []
    for (;;) {
      const available = this.queue.length
      if (available < 2) break
      const start = this.queue.peek(2)
      const b0 = start[0]!
      const b1 = start[1]!
      let length = b1 & 0x7f
      let headerLength = 2
      if (length === 126) {
        if (available < 4) break
        length = this.queue.peek(4).readUInt16BE(2)
        headerLength = 4
      } else if (length === 127) {
        if (available < 10) break
        const ext = this.queue.peek(10)
        if (ext.readUInt32BE(2) !== 0) throw new WsProtocolError("frame too large")
        length = ext.readUInt32BE(6)
        headerLength = 10
      }
      if (length > MAX_WS_PAYLOAD) throw new WsProtocolError("frame too large")
      const opcode = b0 & 0x0f
      if ((b0 & 0x70) !== 0) throw new WsProtocolError("reserved bits set")
      if (opcode >= 0x8 && (length > 125 || (b0 & 0x80) === 0)) throw new WsProtocolError("invalid control frame")
      const masked = (b1 & 0x80) !== 0
      if (masked) headerLength += 4
      if (available < headerLength + length) break
      const frame = this.queue.take(headerLength + length)
      let payload = frame.subarray(headerLength)
      if (masked) {
        const mask = frame.subarray(headerLength - 4, headerLength)
        const unmasked = Buffer.allocUnsafe(length)
        for (let i = 0; i < length; i++) unmasked[i] = payload[i]! ^ mask[i & 3]!
        payload = unmasked
      }
      frames.push({ fin: (b0 & 0x80) !== 0, opcode, masked, payload })
    }
    return frames
  }
}

/**
 * Encodes one frame. Servers send unmasked frames; pass `mask: true` to encode as a client
 * (used by tests).
 */
export const encodeFrame = (
  opcode: number,
  payload: Uint8Array,
  options: { readonly fin?: boolean; readonly mask?: boolean } = {}
): Buffer => {
  const fin = options.fin ?? true
  const length = payload.length
  const headerLength = (length < 126 ? 2 : length < 65536 ? 4 : 10) + (options.mask ? 4 : 0)
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = (fin ? 0x80 : 0) | opcode
  const maskBit = options.mask ? 0x80 : 0
  let offset: number
  if (length < 126) {
    frame[1] = maskBit | length
    offset = 2
  } else if (length < 65536) {
    frame[1] = maskBit | 126
    frame.writeUInt16BE(length, 2)
    offset = 4
  } else {
    frame[1] = maskBit | 127
    frame.writeUInt32BE(0, 2)
    frame.writeUInt32BE(length, 6)
    offset = 10
  }
  if (options.mask) {
    const mask = Crypto.randomBytes(4)
    mask.copy(frame, offset)
    offset += 4
    for (let i = 0; i < length; i++) frame[offset + i] = payload[i]! ^ mask[i & 3]!
  } else {
    frame.set(payload, offset)
  }
  return frame
}

/** Encodes a close frame with a status code and optional reason. */
export const encodeClose = (code: number, reason = "", options: { readonly mask?: boolean } = {}): Buffer => {
  const reasonBytes = Buffer.from(reason, "utf8").subarray(0, 123)
  const payload = Buffer.allocUnsafe(2 + reasonBytes.length)
  payload.writeUInt16BE(code, 0)
  reasonBytes.copy(payload, 2)
  return encodeFrame(Opcode.Close, payload, options)
}

/** The status code in a close frame payload, or 1005 when it carries none. */
export const closeCodeOf = (payload: Buffer): number => payload.length >= 2 ? payload.readUInt16BE(0) : 1005

/** The `101 Switching Protocols` response for a WebSocket handshake. */
export const handshakeResponse = (key: string, protocol: string | undefined): string =>
  "HTTP/1.1 101 Switching Protocols\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
  (protocol !== undefined ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") +
  "\r\n"
