/**
 * Live port-forward sessions: starting one on an upgraded socket (plain SPDY, the tunnel, or the
 * channel protocol), counting it, and dropping it when its pod goes or a test says so.
 *
 * @internal
 */
import type * as Net from "node:net"
import type * as Stream from "node:stream"
import { ChannelSession } from "./channelSession.ts"
import type { CounterBoard } from "./counters.ts"
import type { ForwardHost } from "./host.ts"
import { SpdySession } from "./spdySession.ts"
import { socketTransport, type Transport, tunnelTransport } from "./transport.ts"

interface LiveSession {
  readonly podKey: string
  readonly drop: () => void
}

/** The live sessions of a cluster; `activeSessions` in the counters follows their number. */
export class Sessions {
  private readonly live = new Set<LiveSession>()
  private readonly counters: CounterBoard

  constructor(counters: CounterBoard) {
    this.counters = counters
  }

  /** Starts a SPDY session (plain, or inside the tunnel's WebSocket) on an upgraded socket. */
  openSpdy(podKey: string, host: ForwardHost, socket: Stream.Duplex, head: Buffer, kind: "spdy" | "tunnel"): void {
    let session: SpdySession | undefined = undefined
    let unregister = () => {}
    const events = {
      onData: (chunk: Buffer) => session?.feed(chunk),
      onDrain: () => session?.drained(),
      onClose: () => {
        session?.closedByTransport()
        unregister()
        host.debug?.(`${kind} session to ${host.pod.name} closed`)
      }
    }
    let transport: Transport
    if (kind === "spdy") {
      transport = socketTransport(socket, events)
      session = new SpdySession(transport, host)
      if (head.length > 0) session.feed(head)
    } else {
      const tunnel = tunnelTransport(socket, events)
      transport = tunnel.transport
      session = new SpdySession(transport, host)
      tunnel.connection.feed(head)
    } // The upgraded socket is a net.Socket; frames are small and latency matters more than batching.

    ;(socket as Net.Socket).setNoDelay?.(true)
    this.counters.value.sessions[kind]++
    unregister = this.register(podKey, () => transport.destroy())
  }

  /** Starts a `v4.channel.k8s.io` session for `ports` on an upgraded socket. */
  openChannel(
    podKey: string,
    host: ForwardHost,
    socket: Stream.Duplex,
    head: Buffer,
    ports: ReadonlyArray<number>
  ): void {
    let unregister = () => {}
    const session = new ChannelSession(socket, ports, host, () => unregister())
    this.counters.value.sessions.websocket++
    unregister = this.register(podKey, () => session.ws.destroy())
    this.counters.value.streams += 2 * ports.length
    this.counters.changed()
    session.start()
    session.ws.feed(head)
  }

  /** Drops every live session. */
  dropAll(): void {
    for (const session of [...this.live]) session.drop()
  }

  /** Drops the live sessions of one pod. */
  dropFor(podKey: string): void {
    for (const session of [...this.live]) if (session.podKey === podKey) session.drop()
  }

  private register(podKey: string, drop: () => void): () => void {
    const session: LiveSession = { podKey, drop }
    this.live.add(session)
    this.counters.value.activeSessions++
    this.counters.changed()
    let done = false
    return () => {
      if (done) return
      done = true
      this.live.delete(session)
      this.counters.value.activeSessions--
      this.counters.changed()
    }
  }
}
