/**
 * The byte stream a SPDY session runs on, whichever upgrade produced it: the socket itself
 * (SPDY/3.1 over an HTTP/1.1 upgrade), or the binary messages of a WebSocket whose subprotocol
 * is `SPDY/3.1+portforward.k8s.io` (kubectl's tunnel, where message boundaries mean nothing).
 *
 * @internal
 */
import { WebSocket } from "@kube-forward/protocol"
import type * as Net from "node:net"

/** What the session needs from the bytes under it. */
export interface Transport {
  /** `"spdy"` or `"tunnel"`. */
  readonly kind: "spdy" | "tunnel"
  /** Writes SPDY bytes; `false` when the socket's buffer is full (wait for `onDrain`). */
  readonly write: (bytes: Uint8Array) => boolean
  /**
   * Writes a DATA frame's head and payload without copying the payload; the payload may be
   * changed in place (the tunnel masks it), so the caller gives it up.
   */
  readonly writeData: (head: Buffer, payload: Buffer) => boolean
  /** Runs `writes` with the socket corked: everything they write leaves in one writev. */
  readonly batch: <A>(writes: () => A) => A
  /** Stops reading (backpressure towards the API server) and starts again. */
  readonly pause: () => void
  readonly resume: () => void
  /** Ends the stream politely (a WebSocket close 1000, or a TCP FIN). */
  readonly end: () => void
  /** Ends it at once. */
  readonly destroy: () => void
  /** Bytes buffered for writing. */
  readonly buffered: () => number
}

/** What the transport tells its session. */
export interface TransportEvents {
  readonly onData: (bytes: Buffer) => void
  readonly onDrain: () => void
  /** Called once, when the stream has ended (`reason` in a few words). */
  readonly onClose: (reason: string) => void
}

const watchSocket = (socket: Net.Socket, events: TransportEvents, describe: (error: Error) => string) => {
  let closed = false
  const close = (reason: string) => {
    if (closed) return
    closed = true
    events.onClose(reason)
  }
  socket.on("drain", events.onDrain)
  socket.on("error", (error) => close(describe(error)))
  socket.on("end", () => close("the API server closed the connection"))
  socket.on("close", () => close("the connection to the API server closed"))
}

const corked = <A>(socket: Net.Socket, writes: () => A): A => {
  socket.cork()
  try {
    return writes()
  } finally {
    socket.uncork()
  }
}

/** SPDY straight on the upgraded socket; `head` is what arrived with the 101. */
export const socketTransport = (socket: Net.Socket, head: Buffer, events: TransportEvents): Transport => {
  socket.setNoDelay(true)
  watchSocket(socket, events, (e) => `connection to the API server failed: ${e.message}`)
  socket.on("data", events.onData)
  if (head.length > 0) queueMicrotask(() => events.onData(head))
  return {
    kind: "spdy",
    write: (bytes) => socket.write(bytes),
    writeData: (head, payload) => {
      socket.write(head)
      return socket.write(payload)
    },
    batch: (writes) => corked(socket, writes),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    end: () => socket.end(),
    destroy: () => socket.destroy(),
    buffered: () => socket.writableLength
  }
}

/**
 * SPDY in the binary messages of a WebSocket (client side: every frame masked). Pings are
 * answered; a close frame ends the stream.
 */
export const tunnelTransport = (socket: Net.Socket, head: Buffer, events: TransportEvents): Transport => {
  socket.setNoDelay(true)
  const decoder = new WebSocket.Decoder({ from: "server" })
  let closing = false
  const read = (chunk: Buffer) => {
    let frames: ReadonlyArray<WebSocket.Frame>
    try {
      frames = decoder.push(chunk)
    } catch (e) {
      socket.destroy(e as Error)
      return
    }
    for (const frame of frames) {
      if (frame.opcode === WebSocket.Opcode.Binary || frame.opcode === WebSocket.Opcode.Continuation) {
        if (frame.payload.length > 0) events.onData(frame.payload)
      } else if (frame.opcode === WebSocket.Opcode.Ping) {
        socket.write(WebSocket.encodeFrame(WebSocket.Opcode.Pong, frame.payload, { mask: true }))
      } else if (frame.opcode === WebSocket.Opcode.Close) {
        if (!closing) socket.end(WebSocket.encodeClose(WebSocket.CloseCode.Normal, "", { mask: true }))
        closing = true
      }
    }
  }
  watchSocket(socket, events, (e) => `connection to the API server failed: ${e.message}`)
  socket.on("data", read)
  if (head.length > 0) queueMicrotask(() => read(head))
  return {
    kind: "tunnel",
    write: (bytes) => socket.write(WebSocket.encodeFrame(WebSocket.Opcode.Binary, bytes, { mask: true })),
    writeData: (head, payload) => {
      // one message: the SPDY head masked into the frame's head, the payload masked in place
      const [frameHead, masked] = WebSocket.encodeMaskedParts(WebSocket.Opcode.Binary, head, payload)
      socket.write(frameHead)
      return socket.write(masked)
    },
    batch: (writes) => corked(socket, writes),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    end: () => {
      if (closing) return socket.end()
      closing = true
      socket.end(WebSocket.encodeClose(WebSocket.CloseCode.Normal, "", { mask: true }))
    },
    destroy: () => socket.destroy(),
    buffered: () => socket.writableLength
  }
}
