/**
 * The server half of a kubectl port-forward SPDY session, kubelet style: reply to every SYN_STREAM
 * at once, pair the `error` and `data` streams by `requestid`, dial the pod's port when both have
 * arrived (see `dialer.ts`), then copy bytes both ways. spdystream has no flow control, so none is
 * used here either: socket backpressure only.
 *
 * @internal
 */
import { PortForwardProtocol, Spdy } from "@kube-forward/protocol"
import { Backpressure, forwardingError, invalidPortCause, parsePort, PodConnection } from "./dialer.ts"
import type { ForwardHost } from "./host.ts"
import type { Transport } from "./transport.ts"

const { StreamHeader, StreamType } = PortForwardProtocol

/** The two streams of one forwarded connection. */
interface Pair {
  readonly key: string
  readonly portHeader: string
  errorId: number | undefined
  dataId: number | undefined
  /** Exists from the first stream on, so that early client bytes are kept; dialled once both arrived. */
  readonly connection: PodConnection
  started: boolean
  done: boolean
  dataFinSent: boolean
  errorFinSent: boolean
}

interface StreamRef {
  readonly pair: Pair
  readonly type: "data" | "error"
}

/** How long a finished pair's stream ids stay known, so late RST/FIN frames for them are quiet. */
const FORGET_AFTER_MS = 5000

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
  private readonly pairs = new Map<string, Pair>()
  private queue: Array<Spdy.Frame> = []
  private busy = false
  private closed = false
  private goingAway = false

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
    for (const pair of this.pairs.values()) pair.connection.destroy()
    this.pairs.clear()
    this.streams.clear()
    this.inflater.close()
  }

  // ---------------------------------------------------------------------------------------------
  // inbound frames

  /** Handles queued frames in order; header blocks are inflated asynchronously. */
  private pump(): void {
    while (!this.busy && !this.closed && this.queue.length > 0) {
      const frame = this.queue.shift()!
      if (frame._tag === "Data") {
        this.onData(frame.streamId, frame.flags, frame.payload)
      } else if (frame.type === Spdy.FrameType.SynStream) {
        this.onSynStreamFrame(frame)
        return
      } else {
        this.onControl(frame)
      }
    }
  }

  /** Decodes a SYN_STREAM and inflates its headers; frames after it wait (header blocks are ordered). */
  private onSynStreamFrame(frame: Spdy.ControlFrame): void {
    let syn: Spdy.Control
    try {
      syn = Spdy.decodeControl(frame)
    } catch (error) {
      return this.protocolError(String(error))
    }
    if (syn._tag !== "SynStream") return
    this.busy = true
    this.inflater.inflate(syn.headerBlock).then(
      (raw) => {
        this.busy = false
        if (this.closed) return
        let headers: Map<string, string>
        try {
          headers = Spdy.decodeHeaderBlock(raw)
        } catch (error) {
          return this.protocolError(String(error))
        }
        this.onSynStream(syn.streamId, headers)
        this.pump()
      },
      (error) => {
        this.busy = false
        this.protocolError(`header inflate failed: ${String(error)}`)
      }
    )
  }

  private protocolError(message: string): void {
    this.host.debug?.(`spdy: ${message}`)
    this.transport.destroy()
  }

  /** PING, RST_STREAM, GOAWAY; SETTINGS, WINDOW_UPDATE and HEADERS are ignored as spdystream does. */
  private onControl(frame: Spdy.ControlFrame): void {
    const { Ping, RstStream, GoAway } = Spdy.FrameType
    if (frame.type !== Ping && frame.type !== RstStream && frame.type !== GoAway) return
    let control: Spdy.Control
    try {
      control = Spdy.decodeControl(frame)
    } catch (error) {
      this.host.debug?.(`spdy: ${String(error)}`)
      return
    }
    switch (control._tag) {
      case "Ping":
        // Echo the client's pings (odd ids). Even ids would be replies to our own pings; this
        // server never pings, and echoing a reply would loop forever.
        if (control.id % 2 === 1) this.send(Spdy.encodePing(control.id))
        return
      case "RstStream": {
        const ref = this.streams.get(control.streamId)
        // the pair ends with its connection (onClose)
        if (ref?.type === "data") ref.pair.connection.destroy()
        return
      }
      case "GoAway":
        this.goingAway = true
        return
    }
  }

  private onSynStream(streamId: number, headers: Map<string, string>): void {
    this.host.counters.streams++
    this.host.countersChanged()
    const type = headers.get(StreamHeader.StreamType)
    let pair: Pair | undefined
    if (!this.goingAway && (type === StreamType.Data || type === StreamType.Error)) {
      pair = this.pairFor(streamId, type, headers)
      if (type === StreamType.Error) pair.errorId = streamId
      else pair.dataId = streamId
      this.streams.set(streamId, { pair, type })
    } else {
      this.host.debug?.(`spdy: stream ${streamId} with streamtype ${String(type)} ignored`)
    }
    // Reply only once the stream is known: the client may send DATA as soon as it sees the reply.
    this.send(Spdy.encodeSynReply(streamId, this.compressor.compress(this.emptyHeaders)))
    if (pair && pair.errorId !== undefined && pair.dataId !== undefined && !pair.started) this.start(pair)
  }

  /** The pair a stream belongs to: by `requestid`; clients older than it pair consecutive streams. */
  private pairFor(streamId: number, type: string, headers: Map<string, string>): Pair {
    const requestId = headers.get(StreamHeader.RequestId)
    const key = requestId !== undefined ? `r${requestId}` : `n${type === StreamType.Error ? streamId : streamId - 2}`
    const existing = this.pairs.get(key)
    if (existing !== undefined) return existing
    const pair: Pair = {
      key,
      portHeader: headers.get(StreamHeader.Port) ?? "",
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
      errorFinSent: false
    }
    this.pairs.set(key, pair)
    return pair
  }

  private onData(streamId: number, flags: number, payload: Buffer): void {
    const ref = this.streams.get(streamId)
    // the client never writes on the error stream
    if (ref === undefined || ref.type === "error") return
    const pair = ref.pair
    if (payload.length > 0 && !pair.done) pair.connection.write(payload)
    if ((flags & Spdy.FLAG_FIN) !== 0) pair.connection.end()
  }

  // ---------------------------------------------------------------------------------------------
  // the pod side

  private start(pair: Pair): void {
    pair.started = true
    const port = parsePort(pair.portHeader)
    if (port === undefined) {
      this.fail(pair, forwardingError(this.host.pod, pair.portHeader, invalidPortCause(pair.portHeader)))
      pair.connection.destroy()
      return
    }
    pair.connection.start(port)
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
    this.pairs.delete(pair.key)
    if (this.closed) return
    // Stream ids stay known until the client has had time to RST/FIN them; forget them later.
    const ids = [pair.errorId, pair.dataId]
    setTimeout(() => {
      for (const id of ids) if (id !== undefined && this.streams.get(id)?.pair === pair) this.streams.delete(id)
    }, FORGET_AFTER_MS).unref()
  }

  // ---------------------------------------------------------------------------------------------
  // outbound frames

  private send(frame: Buffer): void {
    if (this.closed || this.transport.closed()) return
    this.flow.wrote(this.transport.write(frame))
  }

  /** Sends one DATA frame (payload ≤ 32 KiB); the payload is not copied. */
  private sendData(streamId: number, payload: Buffer | undefined, fin: boolean): void {
    if (this.closed || this.transport.closed()) return
    const length = payload?.length ?? 0
    const header = Spdy.encodeDataHeader(streamId, length, fin)
    this.flow.wrote(
      payload === undefined || length === 0 ? this.transport.write(header) : this.transport.writeFrame(header, payload)
    )
  }
}
