/**
 * SPDY/3.1 framing as spoken by kubectl (github.com/moby/spdystream): frame encoder and an
 * incremental decoder, header blocks, and the per-session zlib header inflater.
 *
 * Layout (big-endian):
 * - control frame: `80 03 | type:u16 | flags:u8 | length:u24 | payload`
 * - data frame:    `streamId:u32 (top bit 0) | flags:u8 | length:u24 | payload`
 *
 * @internal
 */
import * as Zlib from "node:zlib"
import { ByteQueue } from "./byteQueue.ts"
import { SPDY_DICTIONARY } from "./spdyDictionary.ts"

/** Control frame types (SPDY/3). */
export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Noop: 5,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9
} as const

/** FIN flag, on DATA, SYN_STREAM and SYN_REPLY frames. */
export const FLAG_FIN = 0x01

/** RST_STREAM status codes used here. */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  Cancel: 5,
  InternalError: 6
} as const

/** The largest DATA payload this server ever sends. */
export const MAX_DATA_PAYLOAD = 32 * 1024

/** The largest frame payload the decoder accepts (the 24-bit length field allows 16 MiB). */
export const MAX_FRAME_PAYLOAD = 0xffffff

/** A decoded frame. `payload` may share memory with the decoder input. */
export type Frame =
  | { readonly _tag: "Data"; readonly streamId: number; readonly flags: number; readonly payload: Buffer }
  | {
    readonly _tag: "Control"
    readonly version: number
    readonly type: number
    readonly flags: number
    readonly payload: Buffer
  }

/** The fixed part of a SYN_STREAM payload; `headerBlock` is still compressed. */
export interface SynStream {
  readonly streamId: number
  readonly associatedId: number
  readonly priority: number
  readonly slot: number
  readonly headerBlock: Buffer
}

/** Thrown by decoding functions on malformed input. */
export class SpdyProtocolError extends Error {
  override readonly name = "SpdyProtocolError"
}

/**
 * An incremental frame decoder: feed it arbitrary chunks of the byte stream (TCP segments or
 * WebSocket message payloads, whose boundaries mean nothing) and get whole frames back.
 */
export class FrameDecoder {
  private readonly queue = new ByteQueue()

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.queue.length
  }

  /** Adds bytes and returns every frame they complete, in order. */
  push(chunk: Uint8Array): Array<Frame> {
    this.queue.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    const frames: Array<Frame> = []
    while (this.queue.length >= 8) {
      const header = this.queue.peek(8)
      const length = header.readUIntBE(5, 3)
      if (this.queue.length < 8 + length) break
      const word = header.readUInt32BE(0)
      const flags = header[4]!
      // header and payload taken apart: a payload that sits in one input chunk (kubectl's tunnel
      // sends a DATA frame's header and payload as separate WebSocket messages) is not copied
      this.queue.take(8)
      const payload = length === 0 ? Buffer.alloc(0) : this.queue.take(length)
      if ((word & 0x80000000) !== 0) {
        frames.push({ _tag: "Control", version: (word >>> 16) & 0x7fff, type: word & 0xffff, flags, payload })
      } else {
        frames.push({ _tag: "Data", streamId: word & 0x7fffffff, flags, payload })
      }
    }
    return frames
  }
}

const controlHeader = (type: number, flags: number, length: number): Buffer => {
  const header = Buffer.allocUnsafe(8)
  header.writeUInt16BE(0x8003, 0)
  header.writeUInt16BE(type, 2)
  header[4] = flags
  header.writeUIntBE(length, 5, 3)
  return header
}

/** Encodes a control frame. */
export const encodeControlFrame = (type: number, flags: number, payload: Uint8Array): Buffer =>
  Buffer.concat([controlHeader(type, flags, payload.length), payload])

/** Encodes the 8-byte header of a DATA frame. */
export const encodeDataHeader = (streamId: number, length: number, fin: boolean): Buffer => {
  const header = Buffer.allocUnsafe(8)
  header.writeUInt32BE(streamId & 0x7fffffff, 0)
  header[4] = fin ? FLAG_FIN : 0
  header.writeUIntBE(length, 5, 3)
  return header
}

/** Encodes one DATA frame (payload must be at most 16 MiB; callers keep it ≤ 32 KiB). */
export const encodeDataFrame = (streamId: number, payload: Uint8Array, fin = false): Buffer =>
  payload.length === 0 ?
    encodeDataHeader(streamId, 0, fin) :
    Buffer.concat([encodeDataHeader(streamId, payload.length, fin), payload])

/** Splits a payload into DATA frames of at most `max` bytes each. */
export const encodeDataFrames = (streamId: number, payload: Uint8Array, max = MAX_DATA_PAYLOAD): Array<Buffer> => {
  const frames: Array<Buffer> = []
  for (let offset = 0; offset < payload.length; offset += max) {
    frames.push(encodeDataFrame(streamId, payload.subarray(offset, Math.min(payload.length, offset + max))))
  }
  return frames
}

const u32Pair = (a: number, b: number): Buffer => {
  const buf = Buffer.allocUnsafe(8)
  buf.writeUInt32BE(a >>> 0, 0)
  buf.writeUInt32BE(b >>> 0, 4)
  return buf
}

/** PING with the given id (4-byte payload). */
export const encodePing = (id: number): Buffer => {
  const payload = Buffer.allocUnsafe(4)
  payload.writeUInt32BE(id >>> 0, 0)
  return encodeControlFrame(FrameType.Ping, 0, payload)
}

/** GOAWAY with the last good stream id and a status (0 = OK). */
export const encodeGoAway = (lastGoodStreamId: number, status = 0): Buffer =>
  encodeControlFrame(FrameType.GoAway, 0, u32Pair(lastGoodStreamId & 0x7fffffff, status))

/** RST_STREAM. A status of 0 is invalid for spdystream, so callers use {@link RstStatus}. */
export const encodeRstStream = (streamId: number, status: number): Buffer =>
  encodeControlFrame(FrameType.RstStream, 0, u32Pair(streamId & 0x7fffffff, status))

/**
 * The zlib bytes of an empty header block (`count = 0`), as a stored block followed by an empty
 * stored block (the sync-flush marker). The first block of a session carries the zlib header
 * `78 bb` plus the dictionary id `e3 c6 a7 c2`; later blocks continue the same stream.
 */
const EMPTY_BLOCK_NEXT = Buffer.from("000400fbff" + "00000000" + "000000ffff", "hex")
const EMPTY_BLOCK_FIRST = Buffer.concat([Buffer.from("78bbe3c6a7c2", "hex"), EMPTY_BLOCK_NEXT])

/**
 * SYN_REPLY with an empty header block, as constant bytes. `first` must be true for the first
 * header block this side of the session ever sends (it starts the zlib stream).
 */
export const encodeSynReply = (streamId: number, first: boolean): Buffer => {
  const block = first ? EMPTY_BLOCK_FIRST : EMPTY_BLOCK_NEXT
  const id = Buffer.allocUnsafe(4)
  id.writeUInt32BE(streamId & 0x7fffffff, 0)
  return encodeControlFrame(FrameType.SynReply, 0, Buffer.concat([id, block]))
}

/** Parses the fixed part of a SYN_STREAM payload. */
export const decodeSynStream = (payload: Buffer): SynStream => {
  if (payload.length < 10) throw new SpdyProtocolError(`SYN_STREAM payload too short (${payload.length} bytes)`)
  return {
    streamId: payload.readUInt32BE(0) & 0x7fffffff,
    associatedId: payload.readUInt32BE(4) & 0x7fffffff,
    priority: payload[8]! >> 5,
    slot: payload[9]!,
    headerBlock: payload.subarray(10)
  }
}

/** Reads the 4-byte stream id (or PING id) at the start of a control payload. */
export const readId = (payload: Buffer): number => {
  if (payload.length < 4) throw new SpdyProtocolError("control frame payload too short")
  return payload.readUInt32BE(0) & 0x7fffffff
}

/** Reads the `(id, status)` pair of RST_STREAM, GOAWAY and WINDOW_UPDATE payloads. */
export const readIdAndStatus = (payload: Buffer): { readonly id: number; readonly status: number } => {
  if (payload.length < 8) throw new SpdyProtocolError("control frame payload too short")
  return { id: payload.readUInt32BE(0) & 0x7fffffff, status: payload.readUInt32BE(4) }
}

/**
 * Parses an uncompressed header block: `count:u32` then `nameLen:u32 name valueLen:u32 value`
 * pairs. Values holding several entries are NUL-separated; they are returned joined as in the
 * wire format. Names are lowercased.
 */
export const decodeHeaderBlock = (raw: Buffer): Map<string, string> => {
  const headers = new Map<string, string>()
  if (raw.length < 4) throw new SpdyProtocolError("header block too short")
  const count = raw.readUInt32BE(0)
  let offset = 4
  const take = (): string => {
    if (raw.length - offset < 4) throw new SpdyProtocolError("truncated header block")
    const length = raw.readUInt32BE(offset)
    offset += 4
    if (raw.length - offset < length) throw new SpdyProtocolError("truncated header block")
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

/** Builds an uncompressed header block (used by tests and by the client-side codec helpers). */
export const encodeHeaderBlock = (headers: Iterable<readonly [string, string]>): Buffer => {
  const parts: Array<Buffer> = []
  let count = 0
  for (const [name, value] of headers) {
    for (const s of [name.toLowerCase(), value]) {
      const bytes = Buffer.from(s, "utf8")
      const len = Buffer.allocUnsafe(4)
      len.writeUInt32BE(bytes.length, 0)
      parts.push(len, bytes)
    }
    count++
  }
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(count, 0)
  return Buffer.concat([head, ...parts])
}

/**
 * One direction's header decompressor: a single zlib stream primed with the SPDY dictionary,
 * never reset for the life of the session. Blocks must be inflated in arrival order; `inflate`
 * resolves once the block's sync flush has been processed.
 */
export class HeaderInflater {
  private readonly zlib: Zlib.Inflate
  private chunks: Array<Buffer> = []
  private failure: Error | undefined = undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor() {
    this.zlib = Zlib.createInflate({ dictionary: SPDY_DICTIONARY })
    this.zlib.on("data", (chunk: Buffer) => this.chunks.push(chunk))
    this.zlib.on("error", (error) => {
      this.failure = error
    })
  }

  /** Inflates one compressed header block (the whole remainder of a SYN_STREAM payload). */
  inflate(block: Buffer): Promise<Buffer> {
    const result = this.queue.then(() =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.failure) return reject(this.failure)
        const onError = (error: Error) => reject(error)
        this.zlib.once("error", onError)
        this.zlib.write(block)
        this.zlib.flush(Zlib.constants.Z_SYNC_FLUSH, () => {
          this.zlib.off("error", onError)
          if (this.failure) return reject(this.failure)
          const out = Buffer.concat(this.chunks)
          this.chunks = []
          resolve(out)
        })
      })
    )
    this.queue = result.catch(() => undefined)
    return result
  }

  /** Releases the zlib handle. */
  close(): void {
    this.zlib.removeAllListeners("data")
    this.zlib.on("error", () => undefined)
    this.zlib.close()
  }
}

/**
 * The compressing side (what kubectl does): one zlib deflate stream with the SPDY dictionary,
 * sync-flushed after every block. The server never needs it (it only sends empty blocks as
 * constant bytes); tests use it to play a client.
 */
export class HeaderDeflater {
  private readonly zlib: Zlib.Deflate
  private chunks: Array<Buffer> = []
  private queue: Promise<unknown> = Promise.resolve()

  constructor() {
    this.zlib = Zlib.createDeflate({ dictionary: SPDY_DICTIONARY })
    this.zlib.on("data", (chunk: Buffer) => this.chunks.push(chunk))
  }

  /** Compresses one header block and sync-flushes it. */
  deflate(raw: Buffer): Promise<Buffer> {
    const result = this.queue.then(() =>
      new Promise<Buffer>((resolve) => {
        this.zlib.write(raw)
        this.zlib.flush(Zlib.constants.Z_SYNC_FLUSH, () => {
          const out = Buffer.concat(this.chunks)
          this.chunks = []
          resolve(out)
        })
      })
    )
    this.queue = result
    return result
  }

  /** Releases the zlib handle. */
  close(): void {
    this.zlib.close()
  }
}

/** Encodes a SYN_STREAM frame around an already-compressed header block. */
export const encodeSynStream = (
  streamId: number,
  headerBlock: Uint8Array,
  options: { readonly associatedId?: number; readonly priority?: number; readonly flags?: number } = {}
): Buffer => {
  const fixed = Buffer.alloc(10)
  fixed.writeUInt32BE(streamId & 0x7fffffff, 0)
  fixed.writeUInt32BE((options.associatedId ?? 0) & 0x7fffffff, 4)
  fixed[8] = ((options.priority ?? 0) & 0x7) << 5
  fixed[9] = 0
  return encodeControlFrame(FrameType.SynStream, options.flags ?? 0, Buffer.concat([fixed, headerBlock]))
}
