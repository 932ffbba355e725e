/**
 * Byte transports for a SPDY session: the upgraded TCP socket itself (plain SPDY/3.1), or the
 * payloads of binary WebSocket messages (kubectl's SPDY-over-WebSocket tunnel). Also the
 * server-side WebSocket connection used by the tunnel and by the v4 channel protocol.
 *
 * @internal
 */
import { WebSocket } from "@kube-forward/protocol"
import type * as Stream from "node:stream"

const { CloseCode, Opcode } = WebSocket

/** What a SPDY session needs from the connection underneath it. */
export interface Transport {
  /** Sends bytes; `false` means "stop producing until the drain listener fires". */
  readonly write: (chunk: Buffer) => boolean
  /**
   * Sends `header` then `payload` as if they were one chunk (same result and backpressure as
   * `write(Buffer.concat([header, payload]))`), without copying `payload`.
   */
  readonly writeFrame: (header: Buffer, payload: Buffer) => boolean
  /** Stops delivering inbound bytes (backpressure towards the client). */
  readonly pause: () => void
  /** Resumes inbound bytes. */
  readonly resume: () => void
  /**
   * Closes the connection politely: a TCP FIN, or a WebSocket close 1000 as the API server's
   * tunnel sends (K `tunneling_connection.go` `Close`); destroyed if the peer lingers.
   */
  readonly end: () => void
  /** Closes the connection abruptly. */
  readonly destroy: () => void
  /** Whether the connection is gone. */
  readonly closed: () => boolean
}

/** Callbacks a transport reports to. */
export interface TransportEvents {
  readonly onData: (chunk: Buffer) => void
  readonly onDrain: () => void
  readonly onClose: () => void
}

/**
 * Payloads up to this size are copied next to their header into one buffer (cheaper than an
 * extra `write` call); larger ones are written by reference after it.
 */
export const COPY_LIMIT = 1024

/**
 * Writes `head` then `payload` to `socket` as one `writev` (corked), or as one small buffer when
 * the payload is tiny; returns what a single `write` of both would.
 */
export const writeParts = (socket: Stream.Duplex, head: Buffer, payload: Uint8Array): boolean => {
  if (payload.length <= COPY_LIMIT) {
    const joined = Buffer.allocUnsafe(head.length + payload.length)
    head.copy(joined, 0)
    joined.set(payload, head.length)
    return socket.write(joined)
  }
  socket.cork()
  socket.write(head)
  const ok = socket.write(payload)
  socket.uncork()
  return ok
}

/** Plain SPDY: the upgraded socket carries the SPDY byte stream directly. */
export const socketTransport = (socket: Stream.Duplex, events: TransportEvents): Transport => {
  let closed = false
  socket.on("data", (chunk: Buffer) => events.onData(chunk))
  socket.on("drain", () => events.onDrain())
  socket.on("error", () => socket.destroy())
  socket.on("end", () => socket.end())
  socket.on("close", () => {
    closed = true
    events.onClose()
  })
  return {
    write: (chunk) => closed ? true : socket.write(chunk),
    writeFrame: (header, payload) => closed ? true : writeParts(socket, header, payload),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    end: () => {
      socket.end()
      setTimeout(() => socket.destroy(), 2000).unref()
    },
    destroy: () => socket.destroy(),
    closed: () => closed
  }
}

/** Callbacks of a {@link WsConnection}. */
export interface WsEvents {
  /**
   * Called with binary data. In `"stream"` mode every frame payload is delivered as it arrives
   * (message boundaries carry no meaning); in `"message"` mode every frame is a message, as
   * kubelet's x/net/websocket reads them (a fragment too).
   */
  readonly onBinary: (payload: Buffer) => void
  readonly onDrain: () => void
  /** The peer sent a close frame (with its code) or the socket went away (code undefined). */
  readonly onClose: (code: number | undefined) => void
}

/** Server side of one WebSocket connection over an upgraded socket. */
export class WsConnection {
  private readonly socket: Stream.Duplex
  private readonly events: WsEvents
  private readonly mode: "stream" | "message"
  /**
   * Client frames must be masked (RFC 6455 §5.1, as gorilla/websocket and golang.org/x/net/websocket
   * insist). Socket reads belong to nobody else, so payloads are unmasked where they arrived.
   */
  private readonly decoder = new WebSocket.Decoder({ from: "client", inPlace: true })
  /** A fragmented message is under way (its last frame has not come). */
  private inMessage = false
  private closeSent = false
  private closedFlag = false
  private reported = false
  private killTimer: ReturnType<typeof setTimeout> | undefined = undefined

  constructor(socket: Stream.Duplex, mode: "stream" | "message", events: WsEvents) {
    this.socket = socket
    this.mode = mode
    this.events = events
    socket.on("data", (chunk: Buffer) => this.onSocketData(chunk))
    socket.on("drain", () => events.onDrain())
    socket.on("error", () => socket.destroy())
    socket.on("end", () => socket.end())
    socket.on("close", () => {
      this.closedFlag = true
      if (this.killTimer) clearTimeout(this.killTimer)
      this.report(undefined)
    })
  }

  /** Whether the socket is gone. */
  get closed(): boolean {
    return this.closedFlag
  }

  private report(code: number | undefined): void {
    if (this.reported) return
    this.reported = true
    this.events.onClose(code)
  }

  private onSocketData(chunk: Buffer): void {
    let frames
    try {
      frames = this.decoder.push(chunk)
    } catch {
      this.close(CloseCode.ProtocolError)
      return
    }
    for (const frame of frames) {
      if (this.closedFlag) return
      switch (frame.opcode) {
        case Opcode.Ping:
          this.socket.write(WebSocket.encodeFrame(Opcode.Pong, frame.payload))
          break
        case Opcode.Pong:
          break
        case Opcode.Close: {
          const code = WebSocket.closeCodeOf(frame.payload)
          this.report(code)
          this.close(code === CloseCode.NoStatus ? CloseCode.Normal : code)
          return
        }
        case Opcode.Binary:
        case Opcode.Text:
        case Opcode.Continuation: {
          if (this.mode === "stream") {
            if (!this.streamFrame(frame)) return
            break
          }
          // kubelet's x/net/websocket (`Codec.Receive`) takes every data frame as a message of
          // its own, a fragment too: its first byte is read as the channel
          this.events.onBinary(frame.payload)
          break
        }
        default:
          this.close(CloseCode.ProtocolError)
          return
      }
    }
  }

  /**
   * One data frame of the tunnel, checked as gorilla/websocket's reader (`conn.go`
   * `advanceFrame`: a continuation needs a message under way, a new message needs none, else
   * close 1002) and the API server's `TunnelingConnection.Read` (a text message is "invalid
   * message type received": the tunnel is closed, 1000) check it. False when the connection
   * is closing.
   */
  private streamFrame(frame: WebSocket.Frame): boolean {
    const continuation = frame.opcode === Opcode.Continuation
    if (continuation !== this.inMessage) {
      this.close(CloseCode.ProtocolError)
      return false
    }
    if (frame.opcode === Opcode.Text) {
      this.close(CloseCode.Normal)
      return false
    }
    this.inMessage = !frame.fin
    if (frame.payload.length > 0) this.events.onBinary(frame.payload)
    return true
  }

  /** Sends one binary message; `false` means the socket buffer is full (wait for drain). */
  send(payload: Uint8Array): boolean {
    if (this.closedFlag || this.closeSent) return true
    return this.socket.write(WebSocket.encodeFrame(Opcode.Binary, payload))
  }

  /**
   * Sends one binary message made of `prefix` (a few bytes: a SPDY frame header, a channel
   * byte) followed by `payload`, without copying `payload` into a frame buffer. Same result
   * and return value as `send(Buffer.concat([prefix, payload]))`.
   */
  sendParts(prefix: Uint8Array, payload: Uint8Array): boolean {
    if (this.closedFlag || this.closeSent) return true
    return writeParts(this.socket, WebSocket.encodeFrameHead(Opcode.Binary, prefix, payload.length), payload)
  }

  /** Sends a close frame and half-closes; the socket is destroyed if the peer lingers. */
  close(code: number = CloseCode.Normal, reason = ""): void {
    if (this.closedFlag) return
    if (!this.closeSent) {
      this.closeSent = true
      this.socket.end(WebSocket.encodeClose(code, reason))
      this.killTimer = setTimeout(() => this.socket.destroy(), 2000)
      this.killTimer.unref?.()
    }
  }

  /** Drops the connection without a close frame. */
  destroy(): void {
    this.socket.destroy()
  }

  /** Stops reading. */
  pause(): void {
    this.socket.pause()
  }

  /** Resumes reading. */
  resume(): void {
    this.socket.resume()
  }

  /** Feeds bytes that arrived together with the upgrade request. */
  feed(head: Buffer): void {
    if (head.length > 0) this.onSocketData(head)
  }
}

/** kubectl's tunnel: SPDY bytes inside binary WebSocket messages. */
export const tunnelTransport = (
  socket: Stream.Duplex,
  events: TransportEvents
): { readonly transport: Transport; readonly connection: WsConnection } => {
  const connection = new WsConnection(socket, "stream", {
    onBinary: events.onData,
    onDrain: events.onDrain,
    onClose: () => undefined
  })
  socket.on("close", () => events.onClose())
  const transport: Transport = {
    write: (chunk) => connection.send(chunk),
    writeFrame: (header, payload) => connection.sendParts(header, payload),
    pause: () => connection.pause(),
    resume: () => connection.resume(),
    end: () => connection.close(CloseCode.Normal),
    destroy: () => connection.destroy(),
    closed: () => connection.closed
  }
  return { transport, connection }
}
