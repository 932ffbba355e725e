/**
 * The server half of a kubectl port-forward SPDY session, kubelet style: reply to every
 * SYN_STREAM at once, pair the `error` and `data` streams by `requestid`, dial the pod's port
 * when both have arrived, then copy bytes both ways with socket backpressure (spdystream has no
 * flow control, so none is used here either).
 *
 * @internal
 */
import * as Net from "node:net"
import type { Counters, ForwardHost } from "./host.ts"
import {
  decodeHeaderBlock,
  decodeSynStream,
  encodeDataHeader,
  encodePing,
  encodeSynReply,
  FLAG_FIN,
  type Frame,
  FrameDecoder,
  FrameType,
  HeaderInflater,
  MAX_DATA_PAYLOAD,
  readId,
  readIdAndStatus
} from "./spdy.ts"
import type { Transport } from "./transport.ts"

interface Pair {
  readonly key: string
  port: number | undefined
  portHeader: string
  errorId: number | undefined
  dataId: number | undefined
  socket: Net.Socket | undefined
  started: boolean
  done: boolean
  /** Client bytes that arrived before the target socket existed. */
  pending: Array<Buffer>
  clientFin: boolean
  dataFinSent: boolean
  errorFinSent: boolean
  /** The target's write buffer is full: the session stopped reading the client for this pair. */
  blocked: boolean
}

interface StreamRef {
  readonly pair: Pair
  readonly type: "data" | "error"
}

/** Buffered client bytes (before the target is dialled) above which the client is paused. */
const PENDING_LIMIT = 1024 * 1024

/** Callbacks the owner of a session gets. */
export interface SpdySessionEvents {
  readonly onClose: () => void
}

/**
 * One SPDY/3.1 port-forward session. Feed it the client's bytes with {@link SpdySession.feed};
 * it writes through the given transport.
 */
export class SpdySession {
  private readonly transport: Transport
  private readonly host: ForwardHost
  private readonly counters: Counters
  private readonly decoder = new FrameDecoder()
  private readonly inflater = new HeaderInflater()
  private readonly streams = new Map<number, StreamRef>()
  private readonly pairs = new Map<string, Pair>()
  private readonly pausedTargets = new Set<Pair>()
  private queue: Array<Frame> = []
  private busy = false
  private replySent = false
  private transportBlocked = false
  private blockedPairs = 0
  private closed = false
  private goingAway = false

  constructor(transport: Transport, host: ForwardHost) {
    this.transport = transport
    this.host = host
    this.counters = host.counters
  }

  /** Client bytes (any chunking). */
  feed(chunk: Buffer): void {
    if (this.closed) return
    this.host.debug?.(`spdy <- ${chunk.length} bytes ${chunk.subarray(0, 256).toString("hex")}`)
    let frames: Array<Frame>
    try {
      frames = this.decoder.push(chunk)
    } catch (error) {
      this.host.debug?.(`spdy: bad frame: ${String(error)}`)
      this.transport.destroy()
      return
    }
    if (frames.length === 0) return
    for (const frame of frames) this.queue.push(frame)
    this.pump()
  }

  /** The client's transport has room again. */
  drained(): void {
    this.transportBlocked = false
    for (const pair of this.pausedTargets) pair.socket?.resume()
    this.pausedTargets.clear()
  }

  /** The transport is gone: tear everything down. */
  closedByTransport(): void {
    if (this.closed) return
    this.closed = true
    this.queue = []
    for (const pair of this.pairs.values()) pair.socket?.destroy()
    this.pairs.clear()
    this.streams.clear()
    this.pausedTargets.clear()
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
        continue
      }
      if (frame.type === FrameType.SynStream) {
        this.busy = true
        let syn
        try {
          syn = decodeSynStream(frame.payload)
        } catch (error) {
          this.host.debug?.(`spdy: ${String(error)}`)
          this.transport.destroy()
          return
        }
        this.inflater.inflate(syn.headerBlock).then(
          (raw) => {
            this.busy = false
            if (this.closed) return
            let headers: Map<string, string>
            try {
              headers = decodeHeaderBlock(raw)
            } catch (error) {
              this.host.debug?.(`spdy: ${String(error)}`)
              this.transport.destroy()
              return
            }
            this.onSynStream(syn.streamId, headers)
            this.pump()
          },
          (error) => {
            this.busy = false
            this.host.debug?.(`spdy: header inflate failed: ${String(error)}`)
            this.transport.destroy()
          }
        )
        return
      }
      this.onControl(frame.type, frame.flags, frame.payload)
    }
  }

  private onControl(type: number, _flags: number, payload: Buffer): void {
    try {
      switch (type) {
        case FrameType.Ping: {
          const id = readId(payload)
          // Echo the client's pings (odd ids). Even ids would be replies to our own pings; this
          // server never pings, and echoing a reply would loop forever.
          if (id % 2 === 1) this.send(encodePing(id))
          return
        }
        case FrameType.RstStream: {
          const { id } = readIdAndStatus(payload)
          const ref = this.streams.get(id)
          if (ref === undefined) return
          if (ref.type === "data") {
            ref.pair.socket?.destroy()
            this.finishPair(ref.pair)
          }
          return
        }
        case FrameType.GoAway:
          this.goingAway = true
          return
        default:
          // SETTINGS, WINDOW_UPDATE, HEADERS, NOOP: spdystream has no flow control; ignore.
          return
      }
    } catch (error) {
      this.host.debug?.(`spdy: ${String(error)}`)
    }
  }

  private onSynStream(streamId: number, headers: Map<string, string>): void {
    this.counters.streams++
    this.host.countersChanged?.()
    const type = headers.get("streamtype")
    const accepted = !this.goingAway && (type === "data" || type === "error")
    let pair: Pair | undefined
    if (accepted) {
      // Pair by requestid; clients older than requestid pair consecutive streams.
      const requestId = headers.get("requestid")
      const key = requestId !== undefined ? `r${requestId}` : `n${type === "error" ? streamId : streamId - 2}`
      pair = this.pairs.get(key)
      if (pair === undefined) {
        pair = {
          key,
          port: undefined,
          portHeader: headers.get("port") ?? "",
          errorId: undefined,
          dataId: undefined,
          socket: undefined,
          started: false,
          done: false,
          pending: [],
          clientFin: false,
          dataFinSent: false,
          errorFinSent: false,
          blocked: false
        }
        this.pairs.set(key, pair)
      }
      if (type === "error") pair.errorId = streamId
      else pair.dataId = streamId
      this.streams.set(streamId, { pair, type })
    } else {
      this.host.debug?.(`spdy: stream ${streamId} with streamtype ${String(type)} ignored`)
    }
    // Reply only once the stream is known: the client may send DATA as soon as it sees the reply.
    this.send(encodeSynReply(streamId, !this.replySent))
    this.replySent = true
    if (pair && pair.errorId !== undefined && pair.dataId !== undefined && !pair.started) this.start(pair)
  }

  private onData(streamId: number, flags: number, payload: Buffer): void {
    const ref = this.streams.get(streamId)
    if (ref === undefined) return
    const pair = ref.pair
    if (ref.type === "error") return // the client never writes on the error stream
    if (payload.length > 0 && !pair.done) {
      this.counters.bytesToPod += payload.length
      this.host.countersChanged?.()
      if (pair.socket !== undefined) {
        if (!pair.socket.write(payload)) this.blockOn(pair)
      } else {
        pair.pending.push(payload)
        if (!pair.blocked && pair.pending.reduce((n, b) => n + b.length, 0) > PENDING_LIMIT) {
          pair.blocked = true
          this.addBlocked()
        }
      }
    }
    if ((flags & FLAG_FIN) !== 0) {
      pair.clientFin = true
      pair.socket?.end()
    }
  }

  // ---------------------------------------------------------------------------------------------
  // the target side

  private start(pair: Pair): void {
    pair.started = true
    const port = Number(pair.portHeader)
    if (!/^\d+$/.test(pair.portHeader) || port < 1 || port > 65535) {
      this.fail(pair, `unable to parse "${pair.portHeader}" as a port: invalid port`)
      return
    }
    pair.port = port
    this.counters.connections++
    this.host.countersChanged?.()
    this.host.resolve(port).then(
      (address) => {
        if (this.closed || pair.done) return
        if (address === undefined) {
          this.fail(pair, this.host.refusedCause(port))
          return
        }
        this.connect(pair, address)
      },
      (error) => {
        if (!this.closed && !pair.done) this.fail(pair, String(error))
      }
    )
  }

  private connect(pair: Pair, address: { readonly host: string; readonly port: number }): void {
    const socket = Net.connect({ host: address.host, port: address.port, allowHalfOpen: true })
    socket.setNoDelay(true)
    pair.socket = socket
    let connected = false
    socket.on("connect", () => {
      connected = true
    })
    socket.on("data", (chunk: Buffer) => this.fromTarget(pair, chunk))
    socket.on("end", () => this.targetEnded(pair))
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (!connected) this.fail(pair, this.host.dialCause(pair.port ?? 0, error))
      else this.targetEnded(pair)
    })
    socket.on("close", () => {
      this.targetEnded(pair)
      this.finishPair(pair)
    })
    // Flush what the client sent while the target was being resolved.
    const pending = pair.pending
    pair.pending = []
    for (const chunk of pending) socket.write(chunk)
    if (pair.blocked) {
      pair.blocked = false
      this.removeBlocked()
    }
    if (pair.clientFin) socket.end()
    else if (socket.writableNeedDrain) this.blockOn(pair)
  }

  private fromTarget(pair: Pair, chunk: Buffer): void {
    if (this.closed || pair.dataFinSent || pair.dataId === undefined) return
    this.counters.bytesFromPod += chunk.length
    this.host.countersChanged?.()
    for (let offset = 0; offset < chunk.length; offset += MAX_DATA_PAYLOAD) {
      this.sendData(pair.dataId, chunk.subarray(offset, Math.min(chunk.length, offset + MAX_DATA_PAYLOAD)), false)
    }
    if (this.transportBlocked && pair.socket !== undefined && !this.pausedTargets.has(pair)) {
      pair.socket.pause()
      this.pausedTargets.add(pair)
    }
  }

  /** The target finished sending: FIN the data stream, then the error stream (kubectl waits for it). */
  private targetEnded(pair: Pair): void {
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
  private fail(pair: Pair, cause: string): void {
    if (this.closed || pair.done) return
    const message = `error forwarding port ${pair.port ?? pair.portHeader} to pod ${this.host.pod.name}, uid ${this.host.pod.uid}: ${cause}`
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
    pair.socket?.destroy()
    this.finishPair(pair)
  }

  private finishPair(pair: Pair): void {
    if (pair.done) return
    pair.done = true
    pair.pending = []
    if (pair.blocked) {
      pair.blocked = false
      this.removeBlocked()
    }
    this.pausedTargets.delete(pair)
    this.pairs.delete(pair.key)
    // Stream ids stay known until the client has had time to RST/FIN them; forget them later.
    const ids = [pair.errorId, pair.dataId]
    setTimeout(() => {
      for (const id of ids) if (id !== undefined && this.streams.get(id)?.pair === pair) this.streams.delete(id)
    }, 5000).unref()
  }

  // ---------------------------------------------------------------------------------------------
  // backpressure

  private blockOn(pair: Pair): void {
    if (pair.blocked || pair.socket === undefined) return
    pair.blocked = true
    this.addBlocked()
    pair.socket.once("drain", () => {
      if (pair.blocked) {
        pair.blocked = false
        this.removeBlocked()
      }
    })
  }

  private addBlocked(): void {
    this.blockedPairs++
    if (this.blockedPairs === 1) this.transport.pause()
  }

  private removeBlocked(): void {
    this.blockedPairs--
    if (this.blockedPairs === 0 && !this.closed) this.transport.resume()
  }

  private send(frame: Buffer): void {
    if (this.closed || this.transport.closed()) return
    if (!this.transport.write(frame)) this.transportBlocked = true
  }

  /** Sends one DATA frame (payload ≤ {@link MAX_DATA_PAYLOAD}); the payload is not copied. */
  private sendData(streamId: number, payload: Buffer | undefined, fin: boolean): void {
    if (this.closed || this.transport.closed()) return
    const length = payload?.length ?? 0
    const header = encodeDataHeader(streamId, length, fin)
    const ok = payload === undefined || length === 0 ?
      this.transport.write(header) :
      this.transport.writeFrame(header, payload)
    if (!ok) this.transportBlocked = true
  }
}
