/**
 * RFC 6455 framing, both sides: the handshake keys, an incremental frame decoder (it unmasks what a
 * client sent and checks the mask bit when told which side it reads), and frame encoders for a
 * server (unmasked, with a zero-copy head for large payloads) and for a client (masked).
 *
 * Written by hand because the `ws` package rejects kubectl's `SPDY/3.1+portforward.k8s.io`
 * subprotocol (`/` is not an RFC 7230 token character). Bytes in, frames out: no sockets, no timers.
 * Malformed input throws a {@link WebSocketError}.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Crypto from "node:crypto"
import { ByteQueue } from "./internal/byteQueue.ts"

/**
 * Frame opcodes.
 *
 * @category constants
 * @since 0.1.0
 */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

/**
 * Close status codes (RFC 6455 §7.4.1). `NoStatus` (1005) and `Abnormal` (1006) are never sent; they
 * stand for "the close frame carried no code" and "there was no close frame".
 *
 * @category constants
 * @since 0.1.0
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  NoStatus: 1005,
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011
} as const

/**
 * The largest frame payload the decoder accepts (a guard against garbage lengths).
 *
 * @category constants
 * @since 0.1.0
 */
export const MAX_PAYLOAD = 16 * 1024 * 1024

/**
 * A frame that violates RFC 6455: reserved bits, a fragmented or oversized control frame, a
 * payload over {@link MAX_PAYLOAD}, the wrong mask bit for the side.
 *
 * @category errors
 * @since 0.1.0
 */
export class WebSocketError extends Schema.TaggedError<WebSocketError>("@kube-forward/protocol/WebSocketError")(
  "WebSocketError",
  { message: Schema.String }
) {}

// -------------------------------------------------------------------------------------------------
// handshake

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/**
 * A fresh `Sec-WebSocket-Key` for a client handshake (16 random bytes, base64).
 *
 * @category handshake
 * @since 0.1.0
 */
export const generateKey = (): string => Crypto.randomBytes(16).toString("base64")

/**
 * The `Sec-WebSocket-Accept` a server answers to a `Sec-WebSocket-Key` (and a client checks).
 *
 * @category handshake
 * @since 0.1.0
 */
export const acceptKey = (key: string): string => Crypto.createHash("sha1").update(key + GUID).digest("base64")

/**
 * The complete `101 Switching Protocols` response to a handshake, with the chosen subprotocol (or
 * none).
 *
 * @category handshake
 * @since 0.1.0
 */
export const handshakeResponse = (key: string, protocol: string | undefined): string =>
  "HTTP/1.1 101 Switching Protocols\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
  (protocol !== undefined ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") +
  "\r\n"

// -------------------------------------------------------------------------------------------------
// masking

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Payloads shorter than this are (un)masked byte by byte (a typed-array view costs more). */
const WORDWISE_MIN = 32

/**
 * XORs `data` in place with the 4-byte `mask`, starting at mask byte `phase` (0–3), and returns the
 * phase after the last byte; masking and unmasking are the same operation. Fragments of one payload
 * can be processed one after the other by passing the returned phase on:
 * `unmask(b, m, unmask(a, m, 0))` equals unmasking `a ++ b`.
 *
 * Works a 32-bit word at a time over the 4-byte-aligned middle of `data` (whatever its offset in
 * its `ArrayBuffer`), bytewise over the unaligned head and tail.
 *
 * @category masking
 * @since 0.1.0
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

/**
 * One decoded frame (payload already unmasked).
 *
 * @category models
 * @since 0.1.0
 */
export interface Frame {
  readonly fin: boolean
  readonly opcode: number
  readonly masked: boolean
  readonly payload: Buffer
}

/**
 * Options of {@link Decoder}.
 *
 * @category decoding
 * @since 0.1.0
 */
export interface DecoderOptions {
  /**
   * Which side's frames are read: `"client"` frames must be masked and `"server"` frames must not
   * be (RFC 6455 §5.1); a frame with the wrong mask bit throws. Unset: both are accepted.
   */
  readonly from?: "client" | "server"
  /**
   * Unmask payloads inside the pushed chunks themselves instead of into copies: the decoder then
   * owns (and modifies) every chunk pushed to it. For socket reads, which nothing else keeps.
   */
  readonly inPlace?: boolean
}

/**
 * The frame header at the front of `queue`, or undefined while it is incomplete. Throws on frames
 * that are invalid whatever their payload.
 */
const readHeader = (
  queue: ByteQueue
):
  | { readonly b0: number; readonly masked: boolean; readonly length: number; readonly headerLength: number }
  | undefined =>
{
  const available = queue.length
  if (available < 2) return undefined
  const start = queue.peek(2)
  const b0 = start[0]!
  const b1 = start[1]!
  let length = b1 & 0x7f
  let headerLength = 2
  if (length === 126) {
    if (available < 4) return undefined
    length = queue.peek(4).readUInt16BE(2)
    headerLength = 4
  } else if (length === 127) {
    if (available < 10) return undefined
    const ext = queue.peek(10)
    if (ext.readUInt32BE(2) !== 0) throw new WebSocketError({ message: "frame too large" })
    length = ext.readUInt32BE(6)
    headerLength = 10
  }
  if (length > MAX_PAYLOAD) throw new WebSocketError({ message: "frame too large" })
  if ((b0 & 0x70) !== 0) throw new WebSocketError({ message: "reserved bits set" })
  if ((b0 & 0x0f) >= 0x8 && (length > 125 || (b0 & 0x80) === 0)) {
    throw new WebSocketError({ message: "invalid control frame" })
  }
  const masked = (b1 & 0x80) !== 0
  return { b0, masked, length, headerLength: masked ? headerLength + 4 : headerLength }
}

/**
 * Incremental decoder: push chunks of the byte stream in any sizes, get whole frames back in order.
 * Fragmented messages come out as their frames (`fin`, `Continuation`); joining them is the
 * caller's choice.
 *
 * @category decoding
 * @since 0.1.0
 */
export class Decoder {
  private readonly queue = new ByteQueue()
  private readonly inPlace: boolean
  private readonly from: "client" | "server" | undefined

  constructor(options: DecoderOptions = {}) {
    this.inPlace = options.inPlace ?? false
    this.from = options.from
  }

  /** Adds bytes and returns every frame they complete. */
  push(chunk: Uint8Array): Array<Frame> {
    this.queue.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    const frames: Array<Frame> = []
    for (;;) {
      const header = readHeader(this.queue)
      if (header === undefined) break
      const { b0, masked, length, headerLength } = header
      if (this.from !== undefined && masked !== (this.from === "client")) {
        throw new WebSocketError({ message: masked ? "masked frame from a server" : "unmasked frame from a client" })
      }
      if (this.queue.length < headerLength + length) break
      const head = this.queue.take(headerLength)
      frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, payload: this.payload(head, masked, length) })
    }
    return frames
  }

  private payload(head: Buffer, masked: boolean, length: number): Buffer {
    if (length === 0) return Buffer.alloc(0)
    if (!masked) return this.queue.take(length)
    const mask = head.subarray(head.length - 4)
    let payload: Buffer
    if (this.inPlace) {
      // a view of the input chunk when the payload sits in one (else a fresh copy)
      payload = this.queue.take(length)
    } else {
      // one copy into a buffer of our own: the input chunks stay untouched
      payload = Buffer.allocUnsafe(length)
      this.queue.takeInto(payload)
    }
    unmask(payload, mask)
    return payload
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
const writeHeader = (
  target: Buffer,
  offset: number,
  opcode: number,
  length: number,
  fin: boolean,
  mask: boolean
): number => {
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
 * The head of an unmasked (server) frame whose payload is `prefix` followed by `rest` more bytes,
 * `prefix` included: send it, then the `rest` bytes themselves, so that a large payload is never
 * copied into a frame buffer.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeFrameHead = (opcode: number, prefix: Uint8Array, rest: number, fin = true): Buffer => {
  const length = prefix.length + rest
  const head = Buffer.allocUnsafe(headerLengthFor(length, false) + prefix.length)
  const offset = writeHeader(head, 0, opcode, length, fin, false)
  head.set(prefix, offset)
  return head
}

/**
 * Options of {@link encodeFrame}.
 *
 * @category encoding
 * @since 0.1.0
 */
export interface EncodeOptions {
  /** The last frame of its message (default true). */
  readonly fin?: boolean
  /**
   * Mask the payload, as a client must: `true` for a random key, or the 4-byte key itself.
   * Default false (a server frame).
   */
  readonly mask?: boolean | Uint8Array
}

/**
 * Encodes one frame: unmasked (a server's) by default, masked with `mask` (a client's).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeFrame = (opcode: number, payload: Uint8Array, options: EncodeOptions = {}): Buffer => {
  const key = options.mask === true ? maskingKey() : options.mask === false ? undefined : options.mask
  if (key !== undefined && key.length !== 4) throw new WebSocketError({ message: "a masking key has 4 bytes" })
  const length = payload.length
  const frame = Buffer.allocUnsafe(headerLengthFor(length, key !== undefined) + length)
  let offset = writeHeader(frame, 0, opcode, length, options.fin ?? true, key !== undefined)
  if (key !== undefined) {
    frame.set(key, offset)
    offset += 4
    const body = frame.subarray(offset)
    body.set(payload)
    unmask(body, key)
  } else {
    frame.set(payload, offset)
  }
  return frame
}

/** Random bytes for masking keys, drawn from the CSPRNG a pool at a time (one call per 1024 keys). */
const keyPool = Buffer.allocUnsafe(4096)
let keyOffset = keyPool.length

/**
 * A fresh masking key (RFC 6455 §5.3: unpredictable, from a strong source), taken from a pool
 * that is refilled from the operating system's CSPRNG.
 *
 * @category masking
 * @since 0.1.0
 */
export const maskingKey = (): Buffer => {
  if (keyOffset === keyPool.length) {
    Crypto.randomFillSync(keyPool)
    keyOffset = 0
  }
  const key = Buffer.from(keyPool.subarray(keyOffset, keyOffset + 4))
  keyOffset += 4
  return key
}

/**
 * One masked (client) frame as two parts to write one after the other, without copying
 * `payload`: a small buffer with the header, the key and the masked `prefix`, and `payload`
 * itself, masked IN PLACE — the caller gives it up (for buffers nothing else keeps, such as a
 * socket's reads). The same bytes as {@link encodeFrame} with `mask` of `prefix ++ payload`.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeMaskedParts = (
  opcode: number,
  prefix: Uint8Array,
  payload: Uint8Array,
  options: { readonly fin?: boolean; readonly mask?: Uint8Array } = {}
): readonly [Buffer, Uint8Array] => {
  const key = options.mask ?? maskingKey()
  if (key.length !== 4) throw new WebSocketError({ message: "a masking key has 4 bytes" })
  const length = prefix.length + payload.length
  const head = Buffer.allocUnsafe(headerLengthFor(length, true) + prefix.length)
  let offset = writeHeader(head, 0, opcode, length, options.fin ?? true, true)
  head.set(key, offset)
  offset += 4
  head.set(prefix, offset)
  const phase = unmask(head.subarray(offset), key)
  unmask(payload, key, phase)
  return [head, payload]
}

/**
 * Encodes a close frame with a status code and an optional reason (cut, on a character
 * boundary, to the 123 bytes a control frame has room for).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeClose = (
  code: number,
  reason = "",
  options: { readonly mask?: boolean | Uint8Array } = {}
): Buffer => {
  // cut on a character boundary: a close reason must be valid UTF-8 (RFC 6455 §5.5.1)
  const chars = Array.from(reason)
  while (Buffer.byteLength(chars.join(""), "utf8") > 123) chars.pop()
  const reasonBytes = Buffer.from(chars.join(""), "utf8")
  const payload = Buffer.allocUnsafe(2 + reasonBytes.length)
  payload.writeUInt16BE(code, 0)
  reasonBytes.copy(payload, 2)
  return encodeFrame(Opcode.Close, payload, options)
}

/**
 * The status code in a close frame's payload, or 1005 ({@link CloseCode}.NoStatus) when it carries
 * none.
 *
 * @category decoding
 * @since 0.1.0
 */
export const closeCodeOf = (payload: Buffer): number =>
  payload.length >= 2 ? payload.readUInt16BE(0) : CloseCode.NoStatus

/**
 * The reason text in a close frame's payload (empty when there is none).
 *
 * @category decoding
 * @since 0.1.0
 */
export const closeReasonOf = (payload: Buffer): string => payload.length > 2 ? payload.toString("utf8", 2) : ""
