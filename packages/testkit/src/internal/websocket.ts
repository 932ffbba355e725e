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

// -------------------------------------------------------------------------------------------------
// masking

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Payloads shorter than this are unmasked byte by byte (a typed-array view costs more). */
const WORDWISE_MIN = 32

/**
 * XORs `data` in place with the 4-byte `mask`, starting at mask byte `phase` (0–3), and returns
 * the phase after the last byte. Fragments of one payload can be unmasked one after the other by
 * passing the returned phase on: `unmask(b, m, unmask(a, m, 0))` equals unmasking `a ++ b`.
 *
 * Works a 32-bit word at a time over the 4-byte-aligned middle of `data` (whatever its offset in
 * its `ArrayBuffer`), bytewise over the unaligned head and tail.
 */
export const unmask = (data: Uint8Array, mask: Uint8Array, phase = 0): number => {
  const length = data.length
  let p = phase & 3
  let i = 0
  if (length >= WORDWISE_MIN) {
    // head: up to 3 bytes until the absolute offset is 4-byte aligned
    const head = (4 - (data.byteOffset & 3)) & 3
    for (; i < head; i++, p = (p + 1) & 3) data[i] = data[i]! ^ mask[p]!
    const words = (length - i) >>> 2
    // the mask rotated to the phase of the first aligned byte, in memory order
    const b0 = mask[p]!
    const b1 = mask[(p + 1) & 3]!
    const b2 = mask[(p + 2) & 3]!
    const b3 = mask[(p + 3) & 3]!
    const word = LITTLE_ENDIAN ?
      (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) :
      ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3)
    const view = new Int32Array(data.buffer, data.byteOffset + i, words)
    let w = 0
    for (const end = words - 3; w < end; w += 4) {
      view[w] = view[w]! ^ word
      view[w + 1] = view[w + 1]! ^ word
      view[w + 2] = view[w + 2]! ^ word
      view[w + 3] = view[w + 3]! ^ word
    }
    for (; w < words; w++) view[w] = view[w]! ^ word
    i += words << 2 // whole words keep the phase
  }
  for (; i < length; i++, p = (p + 1) & 3) data[i] = data[i]! ^ mask[p]!
  return p
}

// -------------------------------------------------------------------------------------------------
// decoding

/** Options of {@link WsDecoder}. */
export interface WsDecoderOptions {
  /**
   * Unmask payloads inside the pushed chunks themselves instead of into copies: the decoder then
   * owns (and modifies) every chunk pushed to it. For socket reads, which nothing else keeps.
   */
  readonly inPlace?: boolean
}

/** Incremental decoder: feed TCP chunks, get whole frames back in order. */
export class WsDecoder {
  private readonly queue = new ByteQueue()
  private readonly inPlace: boolean

  constructor(options: WsDecoderOptions = {}) {
    this.inPlace = options.inPlace ?? false
  }

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
      const header = this.queue.take(headerLength)
      let payload: Buffer
      if (length === 0) {
        payload = Buffer.alloc(0)
      } else if (!masked) {
        payload = this.queue.take(length)
      } else {
        const mask = header.subarray(headerLength - 4, headerLength)
        if (this.inPlace) {
          // a view of the input chunk when the payload sits in one (else a fresh copy)
          payload = this.queue.take(length)
        } else {
          // one copy into a buffer of our own: the input chunks stay untouched
          payload = Buffer.allocUnsafe(length)
          this.queue.takeInto(payload)
        }
        unmask(payload, mask)
      }
      frames.push({ fin: (b0 & 0x80) !== 0, opcode, masked, payload })
    }
    return frames
  }
}

// -------------------------------------------------------------------------------------------------
// encoding

/** Length of a frame header for a payload of `length` bytes. */
const headerLengthFor = (length: number, mask: boolean): number =>
  (length < 126 ? 2 : length < 65536 ? 4 : 10) + (mask ? 4 : 0)

/**
 * Writes a frame header (without masking key) into `target` at `offset`; returns the offset
 * after it.
 */
const writeHeader = (target: Buffer, offset: number, opcode: number, length: number, fin: boolean, mask: boolean): number => {
  target[offset] = (fin ? 0x80 : 0) | opcode
  const maskBit = mask ? 0x80 : 0
  if (length < 126) {
    target[offset + 1] = maskBit | length
    return offset + 2
  }
  if (length < 65536) {
    target[offset + 1] = maskBit | 126
    target.writeUInt16BE(length, offset + 2)
    return offset + 4
  }
  target[offset + 1] = maskBit | 127
  target.writeUInt32BE(0, offset + 2)
  target.writeUInt32BE(length, offset + 6)
  return offset + 10
}

/**
 * The header of an unmasked (server) frame whose payload is `prefix` followed by `rest` bytes,
 * with `prefix` already appended: send it, then the `rest` bytes themselves, so that a large
 * payload is never copied into a frame buffer.
 */
export const encodeFrameHead = (opcode: number, prefix: Uint8Array, rest: number, fin = true): Buffer => {
  const length = prefix.length + rest
  const head = Buffer.allocUnsafe(headerLengthFor(length, false) + prefix.length)
  const offset = writeHeader(head, 0, opcode, length, fin, false)
  head.set(prefix, offset)
  return head
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
  const mask = options.mask ?? false
  const length = payload.length
  const frame = Buffer.allocUnsafe(headerLengthFor(length, mask) + length)
  let offset = writeHeader(frame, 0, opcode, length, options.fin ?? true, mask)
  if (mask) {
    const key = Crypto.randomBytes(4)
    key.copy(frame, offset)
    offset += 4
    const body = frame.subarray(offset)
    body.set(payload)
    unmask(body, key)
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
