/**
 * The WebSocket channel protocol for port forwarding (`v4.channel.k8s.io`), as kubelet speaks it
 * (pkg/kubelet/cri/streaming/portforward/websocket.go) and as @kubernetes/client-node and the
 * Python client expect it (the framing is `Channel` of `@kube-forward/protocol`):
 *
 * - right after the handshake, each port's two 3-byte announcements, as separate messages;
 * - then one connection per port, dialled at once (see `dialer.ts`): client bytes on channel `2i`
 *   go to it, its bytes go back on `2i`, a failure's text on `2i + 1`;
 * - no half-close: when every port's connection is over, the WebSocket closes with 1000.
 *
 * @internal
 */
import { Channel, Spdy, WebSocket } from "@kube-forward/protocol"
import type * as Stream from "node:stream"
import { Backpressure, PodConnection } from "./dialer.ts"
import type { ForwardHost } from "./host.ts"
import { WsConnection } from "./transport.ts"

interface Target {
  readonly index: number
  readonly port: number
  readonly prefix: Buffer
  readonly connection: PodConnection
  done: boolean
}

/** One `v4.channel.k8s.io` port-forward connection. */
export class ChannelSession {
  private readonly host: ForwardHost
  private readonly connection: WsConnection
  private readonly flow: Backpressure
  private readonly targets: ReadonlyArray<Target>
  private closed = false

  constructor(socket: Stream.Duplex, ports: ReadonlyArray<number>, host: ForwardHost, onClose: () => void) {
    this.host = host
    this.connection = new WsConnection(socket, "message", {
      onBinary: (payload) => this.onMessage(payload),
      onDrain: () => this.flow.drained(),
      onClose: () => {
        if (this.closed) return
        this.closed = true
        this.flow.close()
        for (const target of this.targets) target.connection.destroy()
        onClose()
      }
    })
    this.flow = new Backpressure(this.connection)
    this.targets = ports.map((port, index) => this.target(index, port))
  }

  /** The underlying connection (to feed the upgrade head or drop it). */
  get ws(): WsConnection {
    return this.connection
  }

  /** Sends the port announcements and dials every port. */
  start(): void {
    for (const message of Channel.portAnnouncements(this.targets.map((t) => t.port))) this.send(message)
    for (const target of this.targets) target.connection.start(target.port)
  }

  private target(index: number, port: number): Target {
    const target: Target = {
      index,
      port,
      prefix: Channel.encodePrefix(Channel.dataChannel(index)),
      connection: new PodConnection(this.host, this.flow, {
        onData: (chunk) => this.fromPod(target, chunk),
        onFail: (message) => this.fail(target, message),
        onClose: () => this.finish(target)
      }, { halfOpen: false }),
      done: false
    }
    return target
  }

  private fromPod(target: Target, chunk: Buffer): void {
    if (this.closed) return
    const max = Spdy.MAX_DATA_PAYLOAD
    for (let offset = 0; offset < chunk.length; offset += max) {
      const end = Math.min(chunk.length, offset + max)
      this.flow.wrote(this.connection.sendParts(target.prefix, chunk.subarray(offset, end)))
    }
  }

  private onMessage(payload: Buffer): void {
    if (payload.length === 0) return
    const { channel, payload: data } = Channel.decodeMessage(payload)
    // Error channels and unknown channels are ignored, as kubelet does.
    const kind = Channel.classify(channel, this.targets.length)
    if (kind._tag !== "Data") return
    const target = this.targets[kind.index]!
    if (target.done || data.length === 0) return
    target.connection.write(data)
  }

  private fail(target: Target, message: string): void {
    if (this.closed || target.done) return
    this.host.debug?.(`ws: ${message}`)
    this.send(Channel.encodeMessage(Channel.errorChannel(target.index), Buffer.from(message, "utf8")))
  }

  private finish(target: Target): void {
    if (target.done) return
    target.done = true
    if (this.targets.every((t) => t.done) && !this.closed) this.connection.close(WebSocket.CloseCode.Normal)
  }

  private send(message: Buffer): void {
    this.flow.wrote(this.connection.send(message))
  }
}
