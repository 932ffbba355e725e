/**
 * The server half of a kubectl port-forward SPDY session, kubelet style: reply to every valid
 * SYN_STREAM at once, pair the `error` and `data` streams by `requestid`, dial the pod's port when
 * both have arrived (see `dialer.ts`), then copy bytes both ways. spdystream has no flow control,
 * so none is used here either: socket backpressure only.
 *
 * As strict as kubelet on spdystream about what the client sends (S = moby/spdystream,
 * K = kubernetes/kubernetes; the table is in the package README):
 * - a frame spdystream's reader rejects ends the session (S `spdy/read.go`; the `Serve` loop stops
 *   and kubelet closes the connection after resetting its streams, K `.../httpstream/spdy/
 *   connection.go` `Close`): an unknown control type, a PING with flags or id 0, an RST_STREAM
 *   with status 0 or stream 0, a GOAWAY or WINDOW_UPDATE with flags or a length other than 8, a
 *   SYN_STREAM, HEADERS or DATA for stream 0, a header block that does not inflate, has an
 *   uppercase or repeated name, or (SYN_STREAM) a `connection`, `host`, `keep-alive`,
 *   `proxy-connection` or `transfer-encoding` header; a GOAWAY ends it too (the loop stops);
 * - a SYN_STREAM whose id is not above the last one gets RST_STREAM PROTOCOL_ERROR and is
 *   ignored (S `connection.go` `validateStreamId`);
 * - a stream without a valid `port` (1–65535) or `streamtype` (`data`, `error`) gets
 *   RST_STREAM CANCEL and no reply (K `pkg/kubelet/cri/streaming/portforward/httpstream.go`
 *   `httpStreamReceived`, then `stream.Reset()`);
 * - a second stream of one type for a `requestid` is accepted but kubelet writes
 *   `error processing stream for request N: data stream already assigned` on the pair's error
 *   stream (K `httpstream.go` `add`);
 * - DATA on an unknown stream, on the error stream, or after the client's FIN is dropped
 *   (S `connection.go` `handleDataFrame`, `stream.go`).
 *
 * @internal
 */
import { PortForwardProtocol, Spdy } from "@kube-forward/protocol"
import { Backpressure, parsePort, PodConnection } from "./dialer.ts"
import type { ForwardHost } from "./host.ts"
import type { Transport } from "./transport.ts"

const { StreamHeader, StreamType } = PortForwardProtocol

/** The two streams of one forwarded connection. */
interface Pair {
  /** The `requestid` (or kubelet's pseudo id from the stream id). */
  readonly requestId: string
  errorId: number | undefined
  dataId: number | undefined
  /** Exists from the first stream on, so that early client bytes are kept; dialled once both arrived. */
  readonly connection: PodConnection
  started: boolean
  done: boolean
  dataFinSent: boolean
  errorFinSent: boolean
  /** The client FINned the data stream. */
  clientFin: boolean
  /** The stream creation timeout, until the pair is complete. */
  timer: ReturnType<typeof setTimeout> | undefined
}

interface StreamRef {
  /** Undefined for a duplicate stream: accepted, but no part of any pair. */
  readonly pair: Pair | undefined
  readonly type: "data" | "error"
  readonly port: number
}

/** A frame spdystream's reader refuses: the session ends. */
class Violation extends Error {}

/** Headers spdystream refuses in a SYN_STREAM (S `spdy/types.go` `invalidReqHeaders`). */
const INVALID_REQUEST_HEADERS = new Set(["connection", "host", "keep-alive", "proxy-connection", "transfer-encoding"])

/**
 * A header block as spdystream's `parseHeaderValueBlock` reads it: names must be lowercase and
 * unique; a value holding several NUL-separated entries counts as its first (`Header.Get`).
 */
const parseHeaders = (raw: Buffer): Map<string, string> => {
  if (raw.length < 4) throw new Violation("header block too short")
  const headers = new Map<string, string>()
  let offset = 4
  const take = (): string => {
    if (raw.length - offset < 4) throw new Violation("truncated header block")
    const length = raw.readUInt32BE(offset)
    offset += 4
    if (raw.length - offset < length) throw new Violation("truncated header block")
    offset += length
    return raw.toString("utf8", offset - length, offset)
  }
  for (let i = raw.readUInt32BE(0); i > 0; i--) {
    const name = take()
    const value = take()
    if (name !== name.toLowerCase()) throw new Violation(`header name ${JSON.stringify(name)} is not lowercase`)
    if (headers.has(name)) throw new Violation(`header ${JSON.stringify(name)} repeated`)
    headers.set(name, value.split("\0")[0]!)
  }
  return headers
}

/** Why kubelet refuses a stream (K `httpStreamReceived`), or undefined when it takes it. */
const streamProblem = (headers: Map<string, string>): string | undefined => {
  const port = headers.get(StreamHeader.Port) ?? ""
  if (port === "") return "\"port\" header is required"
  if (parsePort(port) === undefined) return `unable to parse "${port}" as a port`
  const type = headers.get(StreamHeader.StreamType) ?? ""
  if (type === "") return "\"streamtype\" header is required"
  if (type !== StreamType.Data && type !== StreamType.Error) return `invalid stream type "${type}"`
  return undefined
}

/** Checks a decoded control frame as spdystream's reader does (S `spdy/read.go`). */
const checkControl = (frame: Spdy.ControlFrame, control: Spdy.Control): void => {
  const fixed = frame.flags === 0 && frame.payload.length === 8
  switch (control._tag) {
    case "Ping":
      if (frame.flags !== 0 || control.id === 0) throw new Violation("invalid PING")
      return
    case "RstStream":
      if (control.status === 0 || control.streamId === 0) throw new Violation("invalid RST_STREAM")
      return
    case "GoAway":
    case "WindowUpdate":
      if (!fixed) throw new Violation(`invalid ${control._tag}`)
      return
    case "SynStream":
    case "SynReply":
    case "Headers":
      if (control.streamId === 0) throw new Violation(`${control._tag} for stream 0`)
      return
    case "Settings":
      return
  }
}

/** How long a finished pair's stream ids stay known, so late RST/FIN frames for them are quiet. */
const FORGET_AFTER_MS = 5000

/** kubelet's stream creation timeout (K `pkg/kubelet/server/server.go`, 30 s). */
const STREAM_CREATION_TIMEOUT_MS = 30_000

/**
 * One SPDY/3.1 port-forward session. Feed it the client's bytes with {@link SpdySession.feed}; it
 * writes through the given transport.
 */
export class SpdySession {
  private readonly transport: Transport
  private readonly host: ForwardHost
  private readonly flow: Backpressure
  private readonly decoder = new Spdy.Decoder()
  private readonly inflater = new Spdy.HeaderInflater()
  private readonly compressor = new Spdy.StoredHeaderCompressor()
  private readonly emptyHeaders = Spdy.encodeHeaderBlock([])
  private readonly streams = new Map<number, StreamRef>()
  /** Pairs still waiting for their second stream, by request id (kubelet's `streamPairs`). */
  private readonly waiting = new Map<string, Pair>()
  /** Every pair whose connection is not over. */
  private readonly live = new Set<Pair>()
  /** Stream ids this side has FINned or reset. */
  private readonly finished = new Set<number>()
  private queue: Array<Spdy.Frame> = []
  private busy = false
  private closed = false
  /** The lowest stream id the client may open next (S `receivedStreamId`). */
  private nextStreamId = 1

  constructor(transport: Transport, host: ForwardHost) {
    this.transport = transport
    this.host = host
    this.flow = new Backpressure(transport)
  }

  /** Client bytes (any chunking). */
  feed(chunk: Buffer): void {
    if (this.closed) return
    this.host.debug?.(`spdy <- ${chunk.length} bytes ${chunk.subarray(0, 256).toString("hex")}`)
    const frames = this.decoder.push(chunk)
    if (frames.length === 0) return
    for (const frame of frames) this.queue.push(frame)
    this.pump()
  }

  /** The client's transport has room again. */
  drained(): void {
    this.flow.drained()
  }

  /** The transport is gone: tear everything down. */
  closedByTransport(): void {
    if (this.closed) return
    this.closed = true
    this.queue = []
    this.flow.close()
    for (const pair of this.live) pair.connection.destroy()
    this.live.clear()
    this.waiting.clear()
    this.streams.clear()
    this.inflater.close()
  }

  // ---------------------------------------------------------------------------------------------
  // inbound frames

  /** Handles queued frames in order; header blocks are inflated asynchronously, in order. */
  private pump(): void {
    while (!this.busy && !this.closed && this.queue.length > 0) {
      const frame = this.queue.shift()!
      try {
        if (frame._tag === "Data") {
          this.onData(frame.streamId, frame.flags, frame.payload)
          continue
        }
        const control = this.decode(frame)
        if (control._tag === "SynStream" || control._tag === "SynReply" || control._tag === "Headers") {
          return this.inflateThen(control)
        }
        this.onControl(control)
      } catch (error) {
        return this.violation(error)
      }
    }
  }

  private decode(frame: Spdy.ControlFrame): Spdy.Control {
    let control: Spdy.Control
    try {
      control = Spdy.decodeControl(frame)
    } catch (error) {
      throw new Violation(String(error))
    }
    checkControl(frame, control)
    return control
  }

  /**
   * Inflates a header block (every one goes through the session's zlib stream, even those of
   * frames that are then ignored, or the stream would fall out of step); frames after it wait.
   */
  private inflateThen(control: Spdy.SynStream | Spdy.SynReply | Spdy.Headers): void {
    this.busy = true
    this.inflater.inflate(control.headerBlock).then(
      (raw) => {
        this.busy = false
        if (this.closed) return
        try {
          const headers = parseHeaders(raw)
          if (control._tag === "SynStream") this.onSynStream(control, headers)
        } catch (error) {
          return this.violation(error)
        }
        this.pump()
      },
      (error) => {
        this.busy = false
        this.violation(new Violation(`header block does not inflate: ${String(error)}`))
      }
    )
  }

  /**
   * A frame spdystream refuses, or the client's GOAWAY: kubelet's `Serve` loop ends, and its
   * handler closes the connection, resetting every stream it had not finished first.
   */
  private violation(error: unknown): void {
    if (this.closed) return
    if (!(error instanceof Violation)) throw error
    this.host.debug?.(`spdy: ${error.message}: closing the session`)
    this.queue = []
    // kubelet forgets the streams of a complete pair (RemoveStreams); the rest are reset by Close
    for (const [id, ref] of this.streams) {
      const registered = ref.pair === undefined || this.waiting.get(ref.pair.requestId) === ref.pair
      if (registered && !this.finished.has(id)) this.reset(id, Spdy.RstStatus.Cancel)
    }
    for (const pair of this.live) pair.connection.destroy()
    this.transport.end()
    this.closedByTransport()
  }

  /** PING, RST_STREAM, GOAWAY; SETTINGS and WINDOW_UPDATE are ignored as spdystream does. */
  private onControl(control: Spdy.Control): void {
    switch (control._tag) {
      case "Ping":
        // Echo the client's pings (odd ids). Even ids would be replies to our own pings; this
        // server never pings, and echoing a reply would loop forever.
        if (control.id % 2 === 1) this.send(Spdy.encodePing(control.id))
        return
      case "RstStream": {
        const ref = this.streams.get(control.streamId)
        if (ref !== undefined) this.finished.add(control.streamId)
        // the pair ends with its connection (onClose)
        if (ref?.type === "data") ref.pair?.connection.destroy()
        return
      }
      case "GoAway":
        return this.violation(new Violation("GOAWAY"))
      default:
        return
    }
  }

  private onSynStream(syn: Spdy.SynStream, headers: Map<string, string>): void {
    const streamId = syn.streamId
    // the reader's check comes before the stream id's
    for (const name of headers.keys()) {
      if (INVALID_REQUEST_HEADERS.has(name)) throw new Violation(`SYN_STREAM with a ${name} header`)
    }
    if (streamId < this.nextStreamId) return this.reset(streamId, Spdy.RstStatus.ProtocolError)
    this.nextStreamId = streamId + 2
    const problem = streamProblem(headers)
    if (problem !== undefined) {
      this.host.debug?.(`spdy: stream ${streamId} rejected: ${problem}`)
      return this.reset(streamId, Spdy.RstStatus.Cancel)
    }
    this.host.counters.streams++
    this.host.countersChanged()
    const type = headers.get(StreamHeader.StreamType) === StreamType.Error ? "error" : "data"
    const pair = this.pairFor(streamId, type, headers)
    const taken = type === "error" ? pair.errorId : pair.dataId
    const port = parsePort(headers.get(StreamHeader.Port)!)!
    this.streams.set(streamId, { pair: taken === undefined ? pair : undefined, type, port })
    // Reply once the stream is known: the client may send DATA as soon as it sees the reply.
    this.send(Spdy.encodeSynReply(streamId, this.compressor.compress(this.emptyHeaders)))
    if (taken !== undefined) {
      return this.printError(
        pair,
        `error processing stream for request ${pair.requestId}: ${type} stream already assigned`
      )
    }
    if (type === "error") pair.errorId = streamId
    else pair.dataId = streamId
    if ((syn.flags & Spdy.FLAG_FIN) !== 0 && type === "data") this.onData(streamId, Spdy.FLAG_FIN, Buffer.alloc(0))
    if (pair.errorId !== undefined && pair.dataId !== undefined && !pair.started) {
      // complete: kubelet forgets the request id, so a later stream with it starts a new pair
      this.waiting.delete(pair.requestId)
      clearTimeout(pair.timer)
      this.start(pair)
    }
  }

  /** The pair a stream belongs to: by `requestid`; clients older than it pair consecutive streams. */
  private pairFor(streamId: number, type: "data" | "error", headers: Map<string, string>): Pair {
    const requestId = headers.get(StreamHeader.RequestId) || String(type === "error" ? streamId : streamId - 2)
    const existing = this.waiting.get(requestId)
    if (existing !== undefined) return existing
    const pair: Pair = {
      requestId,
      errorId: undefined,
      dataId: undefined,
      connection: new PodConnection(this.host, this.flow, {
        onData: (chunk) => this.fromPod(pair, chunk),
        onEnd: () => this.podEnded(pair),
        onFail: (message) => this.fail(pair, message),
        onClose: () => this.finishPair(pair)
      }, { halfOpen: true }),
      started: false,
      done: false,
      dataFinSent: false,
      errorFinSent: false,
      clientFin: false,
      timer: undefined
    }
    this.waiting.set(requestId, pair)
    this.live.add(pair)
    // kubelet's monitorStreamPair: a pair whose second stream never comes is given up
    pair.timer = setTimeout(() => {
      this.waiting.delete(requestId)
      this.printError(pair, `(conn=&{…}, request=${requestId}) timed out waiting for streams`)
      pair.connection.destroy()
    }, STREAM_CREATION_TIMEOUT_MS)
    pair.timer.unref()
    return pair
  }

  private onData(streamId: number, flags: number, payload: Buffer): void {
    if (streamId === 0) throw new Violation("DATA for stream 0")
    const ref = this.streams.get(streamId)
    // kubelet never reads the error stream: spdystream's handleDataFrame then blocks on its
    // unread channel and the whole session stalls (S `connection.go`); ended here instead
    if (ref?.type === "error" && payload.length > 0) throw new Violation("DATA with a payload on an error stream")
    // a duplicate stream belongs to no pair; an unknown one is gone (S: "Data frame gone away")
    if (ref === undefined || ref.type === "error" || ref.pair === undefined) return
    const pair = ref.pair
    if (pair.clientFin) return
    if (payload.length > 0 && !pair.done) pair.connection.write(payload)
    if ((flags & Spdy.FLAG_FIN) !== 0) {
      pair.clientFin = true
      pair.connection.end()
    }
  }

  // ---------------------------------------------------------------------------------------------
  // the pod side

  /** Both streams are there: dial the data stream's port (kubelet reads it from there). */
  private start(pair: Pair): void {
    pair.started = true
    pair.connection.start(this.streams.get(pair.dataId!)!.port)
  }

  /** kubelet's `printError`: text on the pair's error stream, if it has one (no FIN). */
  private printError(pair: Pair, message: string): void {
    this.host.debug?.(`spdy: ${message}`)
    if (pair.errorId !== undefined && !pair.errorFinSent) {
      this.sendData(pair.errorId, Buffer.from(message, "utf8"), false)
    }
  }

  private fromPod(pair: Pair, chunk: Buffer): void {
    if (this.closed || pair.dataFinSent) return
    const dataId = pair.dataId!
    const max = Spdy.MAX_DATA_PAYLOAD
    if (chunk.length <= max) return this.sendData(dataId, chunk, false)
    for (let offset = 0; offset < chunk.length; offset += max) {
      this.sendData(dataId, chunk.subarray(offset, Math.min(chunk.length, offset + max)), false)
    }
  }

  /** The pod finished sending: FIN the data stream, then the error stream (kubectl waits for it). */
  private podEnded(pair: Pair): void {
    if (this.closed) return
    if (!pair.dataFinSent && pair.dataId !== undefined) {
      pair.dataFinSent = true
      this.sendData(pair.dataId, undefined, true)
    }
    if (!pair.errorFinSent && pair.errorId !== undefined) {
      pair.errorFinSent = true
      this.sendData(pair.errorId, undefined, true)
    }
  }

  /** Kubelet's failure path: the message on the error stream, then FIN both streams. */
  private fail(pair: Pair, message: string): void {
    if (this.closed || pair.done) return
    this.host.debug?.(`spdy: ${message}`)
    if (pair.errorId !== undefined && !pair.errorFinSent) {
      this.sendData(pair.errorId, Buffer.from(message, "utf8"), false)
      pair.errorFinSent = true
      this.sendData(pair.errorId, undefined, true)
    }
    if (pair.dataId !== undefined && !pair.dataFinSent) {
      pair.dataFinSent = true
      this.sendData(pair.dataId, undefined, true)
    }
  }

  private finishPair(pair: Pair): void {
    if (pair.done) return
    pair.done = true
    this.live.delete(pair)
    clearTimeout(pair.timer)
    if (this.waiting.get(pair.requestId) === pair) this.waiting.delete(pair.requestId)
    if (this.closed) return
    // Stream ids stay known until the client has had time to RST/FIN them; forget them later.
    const ids = [pair.errorId, pair.dataId]
    setTimeout(() => {
      for (const id of ids) {
        if (id !== undefined && this.streams.get(id)?.pair === pair) {
          this.streams.delete(id)
          this.finished.delete(id)
        }
      }
    }, FORGET_AFTER_MS).unref()
  }

  // ---------------------------------------------------------------------------------------------
  // outbound frames

  private send(frame: Buffer): void {
    if (this.closed || this.transport.closed()) return
    this.flow.wrote(this.transport.write(frame))
  }

  /** Resets a stream (RST_STREAM with `status`). */
  private reset(streamId: number, status: number): void {
    this.finished.add(streamId)
    this.send(Spdy.encodeRstStream(streamId, status))
  }

  /** Sends one DATA frame (payload ≤ 32 KiB); the payload is not copied. */
  private sendData(streamId: number, payload: Buffer | undefined, fin: boolean): void {
    if (this.closed || this.transport.closed()) return
    if (fin) this.finished.add(streamId)
    const length = payload?.length ?? 0
    const header = Spdy.encodeDataHeader(streamId, length, fin)
    this.flow.wrote(
      payload === undefined || length === 0 ? this.transport.write(header) : this.transport.writeFrame(header, payload)
    )
  }
}
