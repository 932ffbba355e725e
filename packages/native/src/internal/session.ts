/**
 * The client side of a port-forward SPDY/3.1 session, as client-go speaks it
 * (`tools/portforward/portforward.go` over moby/spdystream), with what kubectl lacks:
 *
 * - one pair of streams per connection, `error` then `data` (stream ids odd and rising, headers
 *   `streamtype`, `port`, `requestid`), FIN on the error stream at once (the client never writes
 *   there), data sent once the data stream is replied to;
 * - a connection that fails (the kubelet's text on its error stream, or a reset) fails alone:
 *   the session and every other connection go on;
 * - PINGs (odd ids) on an interval: a session whose server does not answer within the timeout
 *   is dead; the server's own PINGs (even ids) are echoed;
 * - memory bounded per connection: a local reader that falls behind stops the reading of the
 *   session (the kubelet has no per-stream flow control, as spdystream has none), and where a
 *   server does send SETTINGS or WINDOW_UPDATE, its windows are honoured and granted back.
 *
 * Pure of Effect: callbacks in, frames out, so that the per-byte path is plain code.
 *
 * @internal
 */
import { PortForwardProtocol, Spdy } from "@kube-forward/protocol"
import type { Transport, TransportEvents } from "./transport.ts"

/** What one connection (a stream pair) reports to its owner. */
export interface PairEvents {
  /** The data stream was accepted: the owner may write. */
  readonly onReady: () => void
  /** Bytes from the pod; answer `false` when the owner's buffer is full (see {@link Pair.drained}). */
  readonly onData: (bytes: Buffer) => boolean
  /** The pod's side ended (FIN on the data stream). */
  readonly onEnd: () => void
  /**
   * The connection failed: the kubelet's text or a reset (`lost` false: this connection alone),
   * or the session's end (`lost` true: the whole forward lost its carrier). Called at most once.
   */
  readonly onFail: (reason: string, lost: boolean) => void
  /** Writing may go on after a `write` answered `false`. */
  readonly onWritable: () => void
  /** Both sides ended and the error stream ended empty: the connection is over, cleanly. */
  readonly onClosed?: (() => void) | undefined
}

/** SPDY's default initial window, used once a server shows it does flow control. */
const DEFAULT_WINDOW = 64 * 1024
/** Grant a window back once this much of it was used (half the default). */
const GRANT_AT = 32 * 1024
const SETTINGS_INITIAL_WINDOW_SIZE = 7
/** The largest stream id (31 bits). */
const MAX_STREAM_ID = 0x7fffffff

/** One connection's two streams. */
export class Pair {
  readonly errorId: number
  readonly dataId: number
  /** True once the data stream was replied to. */
  ready = false
  private errorText: Array<Buffer> = []
  private remoteEnded = false
  private errorEnded = false
  private localEnded = false
  private done = false
  private backedUp = false
  /** Bytes received and handed over but not yet granted back (flow control only). */
  private ungranted = 0
  private finSent = false
  /** Send window (flow control only). */
  window: number
  private pending: Array<Buffer> = []
  private readonly session: Session
  readonly port: number
  readonly requestId: number
  readonly events: PairEvents

  constructor(session: Session, port: number, requestId: number, errorId: number, events: PairEvents) {
    this.session = session
    this.port = port
    this.requestId = requestId
    this.events = events
    this.errorId = errorId
    this.dataId = errorId + 2
    this.window = session.initialWindow
  }

  /** Sends bytes to the pod; `false` when the owner should wait for `onWritable`. */
  write(bytes: Buffer): boolean {
    if (this.done || this.localEnded) return true
    if (!this.ready || this.pending.length > 0) {
      this.pending.push(bytes)
      return false
    }
    return this.session.sendData(this, bytes)
  }

  /** Ends our side (FIN on the data stream), after anything still pending. */
  end(): void {
    if (this.done || this.localEnded) return
    this.localEnded = true
    if (this.pending.length === 0) this.sendFin()
  }

  private sendFin(): void {
    if (this.finSent || !this.ready || this.done) return
    this.finSent = true
    this.session.sendFin(this)
    this.settle()
  }

  /** Abandons the connection: both streams reset, nothing more reported. */
  reset(): void {
    if (this.done) return
    this.done = true
    this.session.forget(this, true)
  }

  /** The owner's buffer has room again (after `onData` answered `false`). */
  drained(): void {
    if (!this.backedUp) return
    this.backedUp = false
    this.session.unblock(this)
    this.grant(0)
  }

  /** @internal the data stream was replied to. */
  replied(): void {
    if (this.ready || this.done) return
    this.ready = true
    this.events.onReady()
    this.flush()
  }

  /** @internal sends what waited for the reply, for window or for the transport to drain. */
  flush(): void {
    while (this.pending.length > 0 && !this.done) {
      const next = this.pending.shift()!
      const writable = this.session.sendData(this, next)
      // requeued and waiting for window, or the transport is full: a later flush goes on
      if (this.session.blocked(this) || !writable) return
    }
    if (this.localEnded) this.sendFin()
    if (!this.done) this.events.onWritable()
  }

  /** @internal put back what a window did not allow. */
  requeue(bytes: Buffer): void {
    this.pending.unshift(bytes)
  }

  /** @internal bytes on one of our streams. */
  received(streamId: number, payload: Buffer, fin: boolean): void {
    if (this.done) return
    if (streamId === this.errorId) {
      if (payload.length > 0) this.errorText.push(payload)
      if (fin) this.errorEnded = true
    } else {
      if (payload.length > 0) {
        if (!this.events.onData(payload)) this.backUp()
        // the session's window is given back as soon as the bytes left the session: a reader
        // that falls behind withholds its own stream's window only, never the other pairs'
        this.session.consumed(payload.length)
        this.grant(payload.length)
      }
      if (fin && !this.remoteEnded) {
        this.remoteEnded = true
        this.events.onEnd()
      }
    }
    this.settle()
  }

  private backUp(): void {
    if (this.backedUp) return
    this.backedUp = true
    this.session.block(this)
  }

  /** This stream's window back to the server, unless its reader is behind. */
  private grant(bytes: number): void {
    // never more than our receive window (we advertise SPDY's default): a server that kept count
    // from the start cannot have sent more unanswered, and a larger grant could overflow one
    // that starts counting only now
    this.ungranted = Math.min(this.ungranted + bytes, DEFAULT_WINDOW)
    if (this.backedUp || this.ungranted < GRANT_AT) return
    if (this.session.sendGrant(this.dataId, this.ungranted)) this.ungranted = 0
  }

  /** A failed connection is reported once its error stream ended (or when a reset says so). */
  private settle(): void {
    if (this.errorEnded && this.errorText.length > 0) {
      this.fail(Buffer.concat(this.errorText).toString("utf8"))
      return
    }
    if (this.errorEnded && this.remoteEnded && this.finSent) {
      this.done = true
      this.session.forget(this, false)
      this.events.onClosed?.()
    }
  }

  /** @internal the connection failed; `lost`: because the session ended. */
  fail(reason: string, lost = false): void {
    if (this.done) return
    this.done = true
    this.session.forget(this, true)
    this.events.onFail(reason, lost)
  }
}

/** Settings of a session. */
export interface SessionOptions {
  /** How often to PING the server, in milliseconds (0: never). */
  readonly pingIntervalMs: number
  /** How long a PING may go unanswered before the session counts as dead. */
  readonly pingTimeoutMs: number
}

/** A SPDY/3.1 client session on a transport. */
export class Session {
  // DATA payloads are passed on as they arrive: a frame spanning two reads is not copied together
  private readonly decoder = new Spdy.Decoder({ streamData: true })
  private readonly headers = new Spdy.StoredHeaderCompressor()
  private readonly pairs = new Map<number, Pair>()
  private readonly blockedPairs = new Set<Pair>()
  private readonly waitingForWindow = new Set<Pair>()
  private nextStreamId = 1
  private nextRequestId = 0
  private nextPingId = 1
  private pingDeadline: ReturnType<typeof setTimeout> | undefined = undefined
  private pingTimer: ReturnType<typeof setInterval> | undefined
  private endReason: string | undefined
  private readonly endListeners: Array<(reason: string) => void> = []
  /** Whether the server does flow control (it sent SETTINGS or WINDOW_UPDATE). */
  private flowControl = false
  private sessionWindow = DEFAULT_WINDOW
  /** DATA bytes received and handed over, not yet granted back to the server. */
  private sessionUngranted = 0
  initialWindow = DEFAULT_WINDOW
  readonly transport: Transport

  private readonly options: SessionOptions

  constructor(makeTransport: (events: TransportEvents) => Transport, options: SessionOptions) {
    this.options = options
    this.transport = makeTransport({
      onData: (bytes) => this.read(bytes),
      onDrain: () => this.drainWriters(),
      onClose: (reason) => this.finish(reason)
    })
    if (options.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.ping(), options.pingIntervalMs)
      this.pingTimer.unref()
    }
  }

  /** Why the session ended, once it has. */
  get ended(): string | undefined {
    return this.endReason
  }

  /** Calls `f` once with the reason when the session ends (at once if it has). */
  onEnd(f: (reason: string) => void): void {
    if (this.endReason !== undefined) f(this.endReason)
    else this.endListeners.push(f)
  }

  /** Opens a connection to `port` of the pod: its two streams, at once. */
  open(port: number, events: PairEvents): Pair {
    const errorId = this.nextStreamId
    const requestId = this.nextRequestId++
    const pair = new Pair(this, port, requestId, errorId, events)
    if (this.endReason !== undefined || errorId + 2 > MAX_STREAM_ID) {
      const lost = this.endReason !== undefined
      queueMicrotask(() => pair.fail(this.endReason ?? "the session has used all its stream ids", lost))
      return pair
    }
    this.nextStreamId += 4
    this.pairs.set(pair.errorId, pair)
    this.pairs.set(pair.dataId, pair)
    this.transport.write(this.synStream(pair, PortForwardProtocol.StreamType.Error))
    // the client never writes on the error stream
    this.transport.write(Spdy.encodeDataFrame(pair.errorId, Buffer.alloc(0), true))
    this.transport.write(this.synStream(pair, PortForwardProtocol.StreamType.Data))
    return pair
  }

  private synStream(pair: Pair, type: string): Buffer {
    const block = this.headers.compress(Spdy.encodeHeaderBlock([
      [PortForwardProtocol.StreamHeader.StreamType, type],
      [PortForwardProtocol.StreamHeader.Port, String(pair.port)],
      [PortForwardProtocol.StreamHeader.RequestId, String(pair.requestId)]
    ]))
    return Spdy.encodeSynStream(type === PortForwardProtocol.StreamType.Error ? pair.errorId : pair.dataId, block)
  }

  /** Ends the session politely: GOAWAY, then the transport's end. */
  close(reason = "closed"): void {
    if (this.endReason !== undefined) return
    this.transport.write(Spdy.encodeGoAway(0))
    this.transport.end()
    this.finish(reason)
  }

  // ------------------------------------------------------------------------------------------
  // writing

  /** @internal DATA frames for `pair`, as far as the windows allow, in one write to the transport. */
  sendData(pair: Pair, bytes: Buffer): boolean {
    return this.transport.batch(() => this.sendFrames(pair, bytes))
  }

  private sendFrames(pair: Pair, bytes: Buffer): boolean {
    let offset = 0
    let writable = true
    while (offset < bytes.length) {
      let size = Math.min(Spdy.MAX_DATA_PAYLOAD, bytes.length - offset)
      if (this.flowControl) size = Math.min(size, pair.window, this.sessionWindow)
      if (size <= 0) {
        pair.requeue(bytes.subarray(offset))
        this.waitingForWindow.add(pair)
        return false
      }
      if (this.flowControl) {
        pair.window -= size
        this.sessionWindow -= size
      }
      writable = this.transport.writeData(
        Spdy.encodeDataHeader(pair.dataId, size, false),
        bytes.subarray(offset, offset + size)
      )
      offset += size
    }
    return writable
  }

  /** @internal FIN on `pair`'s data stream. */
  sendFin(pair: Pair): void {
    if (this.endReason === undefined) this.transport.write(Spdy.encodeDataFrame(pair.dataId, Buffer.alloc(0), true))
  }

  /**
   * @internal window granted back to the server for `streamId` (0: the session), once it
   * showed it does flow control; `false` when nothing was sent (the bytes stay to be granted).
   */
  sendGrant(streamId: number, bytes: number): boolean {
    if (!this.flowControl || this.endReason !== undefined) return false
    this.transport.write(Spdy.encodeWindowUpdate(streamId, bytes))
    return true
  }

  /** @internal DATA bytes handed to their owners: the session's window, granted back in steps. */
  consumed(bytes: number): void {
    // capped at the session's window, as a stream's grant is at its own (see `Pair.grant`)
    this.sessionUngranted = Math.min(this.sessionUngranted + bytes, DEFAULT_WINDOW)
    if (this.sessionUngranted >= GRANT_AT && this.sendGrant(0, this.sessionUngranted)) this.sessionUngranted = 0
  }

  /** @internal whether `pair` waits for window. */
  blocked(pair: Pair): boolean {
    return this.waitingForWindow.has(pair)
  }

  private drainWriters(): void {
    for (const pair of new Set(this.pairs.values())) if (pair.ready && !this.waitingForWindow.has(pair)) pair.flush()
  }

  // ------------------------------------------------------------------------------------------
  // backpressure towards the server

  /** @internal `pair`'s owner cannot take more: stop reading the session (no per-stream windows). */
  block(pair: Pair): void {
    this.blockedPairs.add(pair)
    if (!this.flowControl) this.transport.pause()
  }

  /** @internal `pair`'s owner has room again. */
  unblock(pair: Pair): void {
    this.blockedPairs.delete(pair)
    if (this.blockedPairs.size === 0) this.transport.resume()
  }

  /** @internal `pair` is over; `reset` sends RST_STREAM for streams not finished. */
  forget(pair: Pair, reset: boolean): void {
    this.pairs.delete(pair.errorId)
    this.pairs.delete(pair.dataId)
    this.waitingForWindow.delete(pair)
    if (this.blockedPairs.has(pair)) this.unblock(pair)
    if (reset && this.endReason === undefined) {
      this.transport.write(Spdy.encodeRstStream(pair.dataId, Spdy.RstStatus.Cancel))
      this.transport.write(Spdy.encodeRstStream(pair.errorId, Spdy.RstStatus.Cancel))
    }
  }

  // ------------------------------------------------------------------------------------------
  // reading

  private read(bytes: Buffer): void {
    if (this.endReason !== undefined) return
    let frames: ReadonlyArray<Spdy.Frame>
    try {
      frames = this.decoder.push(bytes)
      for (const frame of frames) {
        if (frame._tag === "Data") {
          this.pairs.get(frame.streamId)?.received(frame.streamId, frame.payload, (frame.flags & Spdy.FLAG_FIN) !== 0)
        } else this.control(Spdy.decodeControl(frame))
        if (this.endReason !== undefined) return
      }
    } catch (e) {
      this.transport.destroy()
      this.finish(`the server broke the SPDY protocol: ${(e as Error).message}`)
    }
  }

  private control(frame: Spdy.Control): void {
    switch (frame._tag) {
      case "SynReply":
        return this.synReply(frame)
      case "RstStream":
        return this.pairs.get(frame.streamId)?.fail(`the server reset the stream (status ${frame.status})`)
      case "Ping":
        return this.pinged(frame.id)
      case "GoAway":
        this.transport.end()
        return this.finish("the API server ended the session (GOAWAY)")
      case "Settings":
        return this.settings(frame)
      case "WindowUpdate":
        return this.windowUpdate(frame)
      case "SynStream":
        // servers never open streams in port forwarding
        this.transport.write(Spdy.encodeRstStream(frame.streamId, Spdy.RstStatus.RefusedStream))
        return
      case "Headers":
        return
    }
  }

  private synReply(frame: Spdy.SynReply): void {
    const pair = this.pairs.get(frame.streamId)
    if (pair !== undefined && frame.streamId === pair.dataId) pair.replied()
    if (pair !== undefined && (frame.flags & Spdy.FLAG_FIN) !== 0) pair.received(frame.streamId, Buffer.alloc(0), true)
  }

  private settings(frame: Spdy.Settings): void {
    const entry = frame.entries.find((e) => e.id === SETTINGS_INITIAL_WINDOW_SIZE)
    if (entry === undefined) return
    this.enableFlowControl()
    const delta = entry.value - this.initialWindow
    this.initialWindow = entry.value
    for (const pair of new Set(this.pairs.values())) pair.window += delta
    this.releaseWaiting()
  }

  private windowUpdate(frame: Spdy.WindowUpdate): void {
    this.enableFlowControl()
    if (frame.streamId === 0) this.sessionWindow += frame.delta
    else {
      const pair = this.pairs.get(frame.streamId)
      if (pair !== undefined) pair.window += frame.delta
    }
    this.releaseWaiting()
  }

  private enableFlowControl(): void {
    if (this.flowControl) return
    this.flowControl = true
    // from now on a slow reader withholds its window instead of stopping the whole session
    if (this.blockedPairs.size > 0) this.transport.resume()
  }

  private releaseWaiting(): void {
    for (const pair of [...this.waitingForWindow]) {
      if (pair.window <= 0 || this.sessionWindow <= 0) continue
      this.waitingForWindow.delete(pair)
      pair.flush()
    }
  }

  // ------------------------------------------------------------------------------------------
  // liveness

  /** Sends a PING unless one is outstanding; no answer within the timeout ends the session. */
  private ping(): void {
    if (this.endReason !== undefined || this.pingDeadline !== undefined) return
    this.pingDeadline = setTimeout(() => {
      this.transport.destroy()
      this.finish(`the API server did not answer a PING within ${this.options.pingTimeoutMs} ms`)
    }, this.options.pingTimeoutMs)
    this.pingDeadline.unref()
    this.transport.write(Spdy.encodePing(this.nextPingId))
  }

  private pinged(id: number): void {
    if (id % 2 === 0) {
      // the server's own: echo it
      this.transport.write(Spdy.encodePing(id))
      return
    }
    if (id === this.nextPingId && this.pingDeadline !== undefined) {
      clearTimeout(this.pingDeadline)
      this.pingDeadline = undefined
      this.nextPingId = this.nextPingId + 2 > MAX_STREAM_ID ? 1 : this.nextPingId + 2
    }
  }

  private finish(reason: string): void {
    if (this.endReason !== undefined) return
    this.endReason = reason
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer)
    if (this.pingDeadline !== undefined) clearTimeout(this.pingDeadline)
    for (const pair of new Set(this.pairs.values())) pair.fail(reason, true)
    this.pairs.clear()
    for (const f of this.endListeners.splice(0)) f(reason)
  }
}
