/**
 * SPDY/3.1 framing as kubectl, kube-apiserver and kubelet speak it (github.com/moby/spdystream):
 * every frame both ways, an incremental decoder, header blocks and their zlib compression.
 *
 * Layout (big-endian; spdystream `spdy/types.go`, `read.go`, `write.go`):
 * - control frame: `80 03 | type:u16 | flags:u8 | length:u24 | payload`
 * - DATA frame:    `streamId:u32 (top bit 0) | flags:u8 | length:u24 | payload`
 *
 * Header blocks (`count:u32`, then `nameLen:u32 name valueLen:u32 value` pairs) are compressed with
 * one zlib stream per direction per session, primed with the SPDY/3 dictionary and sync-flushed
 * after every block. {@link HeaderInflater} and {@link HeaderDeflater} are those streams (node:zlib,
 * asynchronous); {@link StoredHeaderCompressor} writes the same stream synchronously with stored
 * (uncompressed) deflate blocks, which every zlib reader accepts.
 *
 * Everything here is bytes in, frames out: no sockets, no timers. Malformed input throws a
 * {@link SpdyError}.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { ByteQueue } from "./internal/byteQueue.ts"
import { SPDY_DICTIONARY, SPDY_DICTIONARY_ID } from "./internal/spdyDictionary.ts"
import { ZlibContext } from "./internal/zlibContext.ts"

/**
 * The protocol version carried by every control frame.
 *
 * @category constants
 * @since 0.1.0
 */
export const VERSION = 3

/**
 * Control frame types (SPDY/3). spdystream fails the session on any other type.
 *
 * @category constants
 * @since 0.1.0
 */
export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9
} as const

/**
 * FIN: the sender's last frame on a stream (DATA, SYN_STREAM, SYN_REPLY, HEADERS).
 *
 * @category constants
 * @since 0.1.0
 */
export const FLAG_FIN = 0x01

/**
 * UNIDIRECTIONAL, on SYN_STREAM: the receiver never sends on the stream.
 *
 * @category constants
 * @since 0.1.0
 */
export const FLAG_UNIDIRECTIONAL = 0x02

/**
 * RST_STREAM status codes (spdystream `spdy/types.go`). `0` is invalid.
 *
 * @category constants
 * @since 0.1.0
 */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
  InvalidCredentials: 10,
  FrameTooLarge: 11
} as const

/**
 * GOAWAY status codes.
 *
 * @category constants
 * @since 0.1.0
 */
export const GoAwayStatus = {
  Ok: 0,
  ProtocolError: 1,
  InternalError: 2
} as const

/**
 * The largest DATA payload to send: kubectl and kubelet write at most 32 KiB per frame.
 *
 * @category constants
 * @since 0.1.0
 */
export const MAX_DATA_PAYLOAD = 32 * 1024

/**
 * The largest frame payload the 24-bit length field allows (16 MiB − 1).
 *
 * @category constants
 * @since 0.1.0
 */
export const MAX_FRAME_PAYLOAD = 0xffffff

/**
 * Malformed SPDY input: a truncated control payload, a bad header block, an unknown control type.
 *
 * @category errors
 * @since 0.1.0
 */
export class SpdyError extends Schema.TaggedError<SpdyError>("@kube-forward/protocol/SpdyError")("SpdyError", {
  message: Schema.String
}) {}

// -------------------------------------------------------------------------------------------------
// frames and the decoder

/**
 * A DATA frame. `payload` may share memory with the decoder's input.
 *
 * @category models
 * @since 0.1.0
 */
export interface DataFrame {
  readonly _tag: "Data"
  readonly streamId: number
  readonly flags: number
  readonly payload: Buffer
}

/**
 * A control frame as read off the wire; {@link decodeControl} gives its fields.
 *
 * @category models
 * @since 0.1.0
 */
export interface ControlFrame {
  readonly _tag: "Control"
  readonly version: number
  readonly type: number
  readonly flags: number
  readonly payload: Buffer
}

/**
 * One frame as read off the wire.
 *
 * @category models
 * @since 0.1.0
 */
export type Frame = DataFrame | ControlFrame

/**
 * Options of {@link Decoder}.
 *
 * @category decoding
 * @since 0.1.0
 */
export interface DecoderOptions {
  /**
   * Hand DATA payloads over as they arrive instead of whole: a frame whose payload spans input
   * chunks comes out as several `Data` frames of the same stream (only the last with the
   * frame's flags, FIN among them), each a view of an input chunk — never a copy. Stream data
   * means the same either way; for receivers that pass bytes on rather than parse them.
   */
  readonly streamData?: boolean
}

/**
 * An incremental frame decoder: push arbitrary chunks of the byte stream (TCP segments, or the
 * payloads of kubectl's tunnel WebSocket messages, whose boundaries mean nothing) and get whole
 * frames back, in order. A frame whose header and payload arrive in separate chunks is not copied.
 *
 * @category decoding
 * @since 0.1.0
 */
export class Decoder {
  private readonly queue = new ByteQueue()
  private readonly streamData: boolean
  /** The DATA frame whose payload is being handed over in pieces (`streamData`). */
  private data: { readonly streamId: number; readonly flags: number; remaining: number } | undefined = undefined

  constructor(options: DecoderOptions = {}) {
    this.streamData = options.streamData ?? false
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.queue.length
  }

  /** Adds bytes and returns every frame they complete, in order. */
  push(chunk: Uint8Array): Array<Frame> {
    this.queue.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    const frames: Array<Frame> = []
    while (true) {
      if (this.data !== undefined) {
        if (this.queue.length === 0) break
        frames.push(this.dataPiece(this.data))
        continue
      }
      if (this.queue.length < 8) break
      const header = this.queue.peek(8)
      const length = header.readUIntBE(5, 3)
      const word = header.readUInt32BE(0)
      const flags = header[4]!
      const isData = (word & 0x80000000) === 0
      if (isData && this.streamData && length > 0) {
        this.queue.take(8)
        this.data = { streamId: word & 0x7fffffff, flags, remaining: length }
        continue
      }
      if (this.queue.length < 8 + length) break
      // header and payload taken apart: a payload that sits in one input chunk is not copied
      this.queue.take(8)
      const payload = length === 0 ? Buffer.alloc(0) : this.queue.take(length)
      frames.push(
        isData
          ? { _tag: "Data", streamId: word & 0x7fffffff, flags, payload }
          : { _tag: "Control", version: (word >>> 16) & 0x7fff, type: word & 0xffff, flags, payload }
      )
    }
    return frames
  }

  /** The next piece of the DATA frame in progress, as far as the first queued chunk goes. */
  private dataPiece(data: { readonly streamId: number; readonly flags: number; remaining: number }): DataFrame {
    const payload = this.queue.takeContiguous(data.remaining)
    data.remaining -= payload.length
    const last = data.remaining === 0
    if (last) this.data = undefined
    return { _tag: "Data", streamId: data.streamId, flags: last ? data.flags : data.flags & ~FLAG_FIN, payload }
  }
}

// -------------------------------------------------------------------------------------------------
// control frames, decoded

/**
 * SYN_STREAM: a new stream. `headerBlock` is still compressed.
 *
 * @category models
 * @since 0.1.0
 */
export interface SynStream {
  readonly _tag: "SynStream"
  readonly flags: number
  readonly streamId: number
  readonly associatedId: number
  /** 0 (highest) to 7. */
  readonly priority: number
  readonly slot: number
  readonly headerBlock: Buffer
}

/**
 * SYN_REPLY: the answer to a SYN_STREAM. `headerBlock` is still compressed.
 *
 * @category models
 * @since 0.1.0
 */
export interface SynReply {
  readonly _tag: "SynReply"
  readonly flags: number
  readonly streamId: number
  readonly headerBlock: Buffer
}

/**
 * RST_STREAM: the stream is over, abnormally ({@link RstStatus}).
 *
 * @category models
 * @since 0.1.0
 */
export interface RstStream {
  readonly _tag: "RstStream"
  readonly streamId: number
  readonly status: number
}

/**
 * One SETTINGS entry.
 *
 * @category models
 * @since 0.1.0
 */
export interface Setting {
  readonly flags: number
  readonly id: number
  readonly value: number
}

/**
 * SETTINGS (spdystream ignores them; there is no flow control).
 *
 * @category models
 * @since 0.1.0
 */
export interface Settings {
  readonly _tag: "Settings"
  readonly flags: number
  readonly entries: ReadonlyArray<Setting>
}

/**
 * PING. Clients use odd ids, servers even ids; a ping of the other parity is a reply to echo never.
 *
 * @category models
 * @since 0.1.0
 */
export interface Ping {
  readonly _tag: "Ping"
  readonly id: number
}

/**
 * GOAWAY: the sender opens no more streams after `lastGoodStreamId`.
 *
 * @category models
 * @since 0.1.0
 */
export interface GoAway {
  readonly _tag: "GoAway"
  readonly lastGoodStreamId: number
  readonly status: number
}

/**
 * HEADERS: more headers for a stream. `headerBlock` is still compressed.
 *
 * @category models
 * @since 0.1.0
 */
export interface Headers {
  readonly _tag: "Headers"
  readonly flags: number
  readonly streamId: number
  readonly headerBlock: Buffer
}

/**
 * WINDOW_UPDATE (spdystream ignores it).
 *
 * @category models
 * @since 0.1.0
 */
export interface WindowUpdate {
  readonly _tag: "WindowUpdate"
  readonly streamId: number
  readonly delta: number
}

/**
 * A decoded control frame.
 *
 * @category models
 * @since 0.1.0
 */
export type Control = SynStream | SynReply | RstStream | Settings | Ping | GoAway | Headers | WindowUpdate

const u31 = (payload: Buffer, offset: number): number => payload.readUInt32BE(offset) & 0x7fffffff

const need = (payload: Buffer, length: number, what: string): void => {
  if (payload.length < length) throw new SpdyError({ message: `${what} payload too short (${payload.length} bytes)` })
}

/**
 * A control frame of a fixed size must have exactly that length: spdystream reads the fixed
 * fields and ignores the length, so any other length leaves a real peer out of step.
 */
const exactly = (payload: Buffer, length: number, what: string): void => {
  if (payload.length !== length) {
    throw new SpdyError({ message: `${what} payload must be ${length} bytes (got ${payload.length})` })
  }
}

const decodeSettings = (frame: ControlFrame): Settings => {
  const payload = frame.payload
  need(payload, 4, "SETTINGS")
  const count = payload.readUInt32BE(0)
  exactly(payload, 4 + 8 * count, "SETTINGS")
  const entries: Array<Setting> = []
  for (let i = 0, at = 4; i < count; i++, at += 8) {
    entries.push({ flags: payload[at]!, id: payload.readUIntBE(at + 1, 3), value: payload.readUInt32BE(at + 4) })
  }
  return { _tag: "Settings", flags: frame.flags, entries }
}

/**
 * The fields of a control frame. Throws a {@link SpdyError} on a version other than 3, an unknown
 * type or a payload too short for its type, as spdystream's reader fails on them.
 *
 * @category decoding
 * @since 0.1.0
 */
export const decodeControl = (frame: ControlFrame): Control => {
  const { flags, payload } = frame
  if (frame.version !== VERSION) throw new SpdyError({ message: `unsupported SPDY version ${frame.version}` })
  switch (frame.type) {
    case FrameType.SynStream:
      need(payload, 10, "SYN_STREAM")
      return {
        _tag: "SynStream",
        flags,
        streamId: u31(payload, 0),
        associatedId: u31(payload, 4),
        priority: payload[8]! >> 5,
        slot: payload[9]!,
        headerBlock: payload.subarray(10)
      }
    case FrameType.SynReply:
      need(payload, 4, "SYN_REPLY")
      return { _tag: "SynReply", flags, streamId: u31(payload, 0), headerBlock: payload.subarray(4) }
    case FrameType.RstStream:
      exactly(payload, 8, "RST_STREAM")
      return { _tag: "RstStream", streamId: u31(payload, 0), status: payload.readUInt32BE(4) }
    case FrameType.Settings:
      return decodeSettings(frame)
    case FrameType.Ping:
      exactly(payload, 4, "PING")
      return { _tag: "Ping", id: payload.readUInt32BE(0) }
    case FrameType.GoAway:
      exactly(payload, 8, "GOAWAY")
      return { _tag: "GoAway", lastGoodStreamId: u31(payload, 0), status: payload.readUInt32BE(4) }
    case FrameType.Headers:
      need(payload, 4, "HEADERS")
      return { _tag: "Headers", flags, streamId: u31(payload, 0), headerBlock: payload.subarray(4) }
    case FrameType.WindowUpdate:
      exactly(payload, 8, "WINDOW_UPDATE")
      return { _tag: "WindowUpdate", streamId: u31(payload, 0), delta: u31(payload, 4) }
    default:
      throw new SpdyError({ message: `unknown control frame type ${frame.type}` })
  }
}

// -------------------------------------------------------------------------------------------------
// encoding

/**
 * Encodes a control frame of any type around a ready payload.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeControlFrame = (type: number, flags: number, payload: Uint8Array): Buffer => {
  const frame = Buffer.allocUnsafe(8 + payload.length)
  frame.writeUInt16BE(0x8000 | VERSION, 0)
  frame.writeUInt16BE(type, 2)
  frame[4] = flags
  frame.writeUIntBE(payload.length, 5, 3)
  frame.set(payload, 8)
  return frame
}

/**
 * The 8-byte header of a DATA frame, to send before a payload of `length` bytes that is written
 * separately (so that a large payload is never copied).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeDataHeader = (streamId: number, length: number, fin: boolean): Buffer => {
  const header = Buffer.allocUnsafe(8)
  header.writeUInt32BE(streamId & 0x7fffffff, 0)
  header[4] = fin ? FLAG_FIN : 0
  header.writeUIntBE(length, 5, 3)
  return header
}

/**
 * One DATA frame; an empty payload with `fin` is how a side ends its half of a stream. Keep payloads
 * at {@link MAX_DATA_PAYLOAD} or less ({@link encodeDataFrames} splits).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeDataFrame = (streamId: number, payload: Uint8Array, fin = false): Buffer => {
  const frame = Buffer.allocUnsafe(8 + payload.length)
  frame.writeUInt32BE(streamId & 0x7fffffff, 0)
  frame[4] = fin ? FLAG_FIN : 0
  frame.writeUIntBE(payload.length, 5, 3)
  frame.set(payload, 8)
  return frame
}

/**
 * Splits a payload into DATA frames of at most `max` bytes; `fin` goes on the last one (an empty
 * payload with `fin` gives one empty FIN frame).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeDataFrames = (
  streamId: number,
  payload: Uint8Array,
  options: { readonly fin?: boolean; readonly max?: number } = {}
): Array<Buffer> => {
  const max = options.max ?? MAX_DATA_PAYLOAD
  const fin = options.fin ?? false
  const frames: Array<Buffer> = []
  for (let offset = 0; offset < payload.length; offset += max) {
    const end = Math.min(payload.length, offset + max)
    frames.push(encodeDataFrame(streamId, payload.subarray(offset, end), fin && end === payload.length))
  }
  if (fin && payload.length === 0) frames.push(encodeDataFrame(streamId, payload, true))
  return frames
}

const words = (...values: ReadonlyArray<number>): Buffer => {
  const payload = Buffer.allocUnsafe(4 * values.length)
  values.forEach((value, i) => payload.writeUInt32BE(value >>> 0, 4 * i))
  return payload
}

/**
 * SYN_STREAM around an already compressed header block. Clients open odd ids, rising from 1.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeSynStream = (
  streamId: number,
  headerBlock: Uint8Array,
  options: {
    readonly associatedId?: number
    /** 0 (highest) to 7. */
    readonly priority?: number
    /** {@link FLAG_FIN}, {@link FLAG_UNIDIRECTIONAL}. */
    readonly flags?: number
  } = {}
): Buffer => {
  const fixed = Buffer.alloc(10)
  fixed.writeUInt32BE(streamId & 0x7fffffff, 0)
  fixed.writeUInt32BE((options.associatedId ?? 0) & 0x7fffffff, 4)
  fixed[8] = ((options.priority ?? 0) & 0x7) << 5
  return encodeControlFrame(FrameType.SynStream, options.flags ?? 0, Buffer.concat([fixed, headerBlock]))
}

/**
 * SYN_REPLY around an already compressed header block.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeSynReply = (streamId: number, headerBlock: Uint8Array, flags = 0): Buffer =>
  encodeControlFrame(FrameType.SynReply, flags, Buffer.concat([words(streamId & 0x7fffffff), headerBlock]))

/**
 * RST_STREAM with a {@link RstStatus} (spdystream rejects status 0).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeRstStream = (streamId: number, status: number): Buffer =>
  encodeControlFrame(FrameType.RstStream, 0, words(streamId & 0x7fffffff, status))

/**
 * SETTINGS with the given entries.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeSettings = (entries: ReadonlyArray<Setting>, flags = 0): Buffer => {
  const payload = Buffer.allocUnsafe(4 + 8 * entries.length)
  payload.writeUInt32BE(entries.length, 0)
  entries.forEach((entry, i) => {
    payload[4 + 8 * i] = entry.flags
    payload.writeUIntBE(entry.id, 5 + 8 * i, 3)
    payload.writeUInt32BE(entry.value >>> 0, 8 + 8 * i)
  })
  return encodeControlFrame(FrameType.Settings, flags, payload)
}

/**
 * PING with the given id: odd when a client pings, even when a server does.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodePing = (id: number): Buffer => encodeControlFrame(FrameType.Ping, 0, words(id))

/**
 * GOAWAY with the last stream id the sender accepted and a {@link GoAwayStatus}.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeGoAway = (lastGoodStreamId: number, status: number = GoAwayStatus.Ok): Buffer =>
  encodeControlFrame(FrameType.GoAway, 0, words(lastGoodStreamId & 0x7fffffff, status))

/**
 * HEADERS around an already compressed header block.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeHeaders = (streamId: number, headerBlock: Uint8Array, flags = 0): Buffer =>
  encodeControlFrame(FrameType.Headers, flags, Buffer.concat([words(streamId & 0x7fffffff), headerBlock]))

/**
 * WINDOW_UPDATE (stream 0 for the session window).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeWindowUpdate = (streamId: number, delta: number): Buffer =>
  encodeControlFrame(FrameType.WindowUpdate, 0, words(streamId & 0x7fffffff, delta & 0x7fffffff))

// -------------------------------------------------------------------------------------------------
// header blocks

/**
 * Parses an uncompressed header block. Names are lowercased; a value holding several entries stays
 * NUL-separated, as on the wire.
 *
 * @category headers
 * @since 0.1.0
 */
export const decodeHeaderBlock = (raw: Buffer): Map<string, string> => {
  const headers = new Map<string, string>()
  if (raw.length < 4) throw new SpdyError({ message: "header block too short" })
  const count = raw.readUInt32BE(0)
  let offset = 4
  const take = (): string => {
    if (raw.length - offset < 4) throw new SpdyError({ message: "truncated header block" })
    const length = raw.readUInt32BE(offset)
    offset += 4
    if (raw.length - offset < length) throw new SpdyError({ message: "truncated header block" })
    const value = raw.toString("utf8", offset, offset + length)
    offset += length
    return value
  }
  for (let i = 0; i < count; i++) {
    const name = take().toLowerCase()
    headers.set(name, take())
  }
  return headers
}

/**
 * Builds an uncompressed header block from name/value pairs (names lowercased; join several values
 * of one name with NUL yourself).
 *
 * @category headers
 * @since 0.1.0
 */
export const encodeHeaderBlock = (headers: Iterable<readonly [string, string]>): Buffer => {
  const parts: Array<Buffer> = []
  let count = 0
  for (const [name, value] of headers) {
    for (const s of [name.toLowerCase(), value]) {
      const bytes = Buffer.from(s, "utf8")
      parts.push(words(bytes.length), bytes)
    }
    count++
  }
  return Buffer.concat([words(count), ...parts])
}

/**
 * One direction's header decompressor: a zlib stream primed with the SPDY dictionary, never reset
 * for the life of the session. Blocks must be inflated in arrival order (calls are queued);
 * `inflate` resolves once the block's sync flush has been processed. Uses node:zlib, whose
 * streaming API is asynchronous.
 *
 * @category headers
 * @since 0.1.0
 */
export class HeaderInflater {
  private readonly context = new ZlibContext("inflate", SPDY_DICTIONARY)

  /** Inflates one compressed header block (the rest of a SYN_STREAM, SYN_REPLY or HEADERS payload). */
  inflate(block: Uint8Array): Promise<Buffer> {
    return this.context.process(block)
  }

  /** Releases the zlib handle. */
  close(): void {
    this.context.close()
  }
}

/**
 * One direction's header compressor as kubectl's (Go's compress/zlib): a zlib deflate stream primed
 * with the SPDY dictionary, sync-flushed after every block. Asynchronous (node:zlib); see
 * {@link StoredHeaderCompressor} for a synchronous one.
 *
 * @category headers
 * @since 0.1.0
 */
export class HeaderDeflater {
  private readonly context = new ZlibContext("deflate", SPDY_DICTIONARY)

  /** Compresses one header block and sync-flushes it. */
  deflate(raw: Uint8Array): Promise<Buffer> {
    return this.context.process(raw)
  }

  /** Releases the zlib handle. */
  close(): void {
    this.context.close()
  }
}

/** The largest stored deflate block. */
const STORED_MAX = 0xffff

/** An empty stored block: what a zlib sync flush ends with. */
const SYNC_MARKER = Buffer.from("000000ffff", "hex")

/**
 * The zlib stream header that opens a session's first block: CMF `78` (deflate, 32 KiB window),
 * FLG `bb` (a preset dictionary, FLEVEL 2, FCHECK), then the dictionary's adler32.
 */
const ZLIB_HEADER = Buffer.concat([Buffer.from("78bb", "hex"), words(SPDY_DICTIONARY_ID)])

/**
 * One direction's header compressor, synchronous and deterministic: it writes each block as stored
 * (uncompressed) deflate blocks followed by an empty stored block, the sync-flush marker, so every
 * block ends on a byte boundary with exactly the frame's bytes (spdystream's reader requires that).
 * The first block of the session starts the zlib stream with the dictionary id. Any zlib reader with
 * the SPDY dictionary (Go's compress/zlib, node:zlib) reads it; the stream is never finished, so no
 * adler32 trailer is ever due.
 *
 * An empty header block (kubelet's SYN_REPLY) becomes `78 bb e3 c6 a7 c2 00 04 00 fb ff 00 00 00 00
 * 00 00 00 ff ff` the first time and the same without the first 6 bytes afterwards.
 *
 * @category headers
 * @since 0.1.0
 */
export class StoredHeaderCompressor {
  private started = false

  /** Compresses one header block (from {@link encodeHeaderBlock}). */
  compress(raw: Uint8Array): Buffer {
    const parts: Array<Uint8Array> = []
    if (!this.started) {
      this.started = true
      parts.push(ZLIB_HEADER)
    }
    for (let offset = 0; offset < raw.length; offset += STORED_MAX) {
      const block = raw.subarray(offset, Math.min(raw.length, offset + STORED_MAX))
      const head = Buffer.allocUnsafe(5)
      head[0] = 0x00 // BFINAL 0, BTYPE 00 (stored), padded to the byte boundary
      head.writeUInt16LE(block.length, 1)
      head.writeUInt16LE(~block.length & 0xffff, 3)
      parts.push(head, block)
    }
    parts.push(SYNC_MARKER)
    return Buffer.concat(parts)
  }
}
