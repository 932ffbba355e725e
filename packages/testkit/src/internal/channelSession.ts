/**
 * The WebSocket channel protocol for port forwarding (`v4.channel.k8s.io`), as kubelet speaks it
 * (pkg/kubelet/cri/streaming/portforward/websocket.go) and as @kubernetes/client-node and the
 * Python client expect it.
 *
 * - Port index `i` uses data channel `2i` and error channel `2i + 1`.
 * - Right after the handshake, for each port: `[2i, lo, hi]` then `[2i + 1, lo, hi]`, as separate
 *   3-byte messages.
 * - Client → server: `[2i] + bytes`. Server → client: `[2i] + data`, `[2i + 1] + error text`.
 * - One TCP connection per port per WebSocket; when the targets are gone the WebSocket closes
 *   with 1000.
 *
 * @internal
 */
import * as Net from "node:net"
import type * as Stream from "node:stream"
import type { Address, ForwardHost } from "./host.ts"
import { MAX_DATA_PAYLOAD } from "./spdy.ts"
import { WsConnection } from "./transport.ts"
import { CloseCode } from "./websocket.ts"

interface Target {
  readonly index: number
  readonly port: number
  socket: Net.Socket | undefined
  done: boolean
  blocked: boolean
  pending: Array<Buffer>
}

/** One `v4.channel.k8s.io` port-forward connection. */
export class ChannelSession {
  private readonly host: ForwardHost
  private readonly connection: WsConnection
  private readonly targets: ReadonlyArray<Target>
  private readonly paused = new Set<Target>()
  private wsBlocked = false
  private blockedTargets = 0
  private closed = false

  constructor(socket: Stream.Duplex, ports: ReadonlyArray<number>, host: ForwardHost, onClose: () => void) {
    this.host = host
    this.targets = ports.map((port, index) => ({
      index,
      port,
      socket: undefined,
      done: false,
      blocked: false,
      pending: []
    }))
    this.connection = new WsConnection(socket, "message", {
      onBinary: (payload) => this.onMessage(payload),
      onDrain: () => this.onDrain(),
      onClose: () => {
        if (this.closed) return
        this.closed = true
        for (const target of this.targets) target.socket?.destroy()
        onClose()
      }
    })
  }

  /** The underlying connection (to feed the upgrade head or drop it). */
  get ws(): WsConnection {
    return this.connection
  }

  /** Sends the port announcements and dials every port. */
  start(): void {
    for (const target of this.targets) {
      const lo = target.port & 0xff
      const hi = (target.port >> 8) & 0xff
      this.send(Buffer.from([2 * target.index, lo, hi]))
      this.send(Buffer.from([2 * target.index + 1, lo, hi]))
    }
    for (const target of this.targets) this.dial(target)
  }

  private dial(target: Target): void {
    this.host.counters.connections++
    this.host.countersChanged?.()
    this.host.resolve(target.port).then(
      (address) => {
        if (this.closed || target.done) return
        if (address === undefined) this.fail(target, this.host.refusedCause(target.port))
        else this.connect(target, address)
      },
      (error) => this.fail(target, String(error))
    )
  }

  private connect(target: Target, address: Address): void {
    const socket = Net.connect({ host: address.host, port: address.port })
    socket.setNoDelay(true)
    target.socket = socket
    let connected = false
    socket.on("connect", () => {
      connected = true
    })
    socket.on("data", (chunk: Buffer) => {
      if (this.closed) return
      this.host.counters.bytesFromPod += chunk.length
      this.host.countersChanged?.()
      const channel = Buffer.from([2 * target.index])
      for (let offset = 0; offset < chunk.length; offset += MAX_DATA_PAYLOAD) {
        const end = Math.min(chunk.length, offset + MAX_DATA_PAYLOAD)
        if (!this.connection.sendParts(channel, chunk.subarray(offset, end))) this.wsBlocked = true
      }
      if (this.wsBlocked && !this.paused.has(target)) {
        socket.pause()
        this.paused.add(target)
      }
    })
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (!connected) this.fail(target, this.host.dialCause(target.port, error))
    })
    socket.on("close", () => this.finish(target))
    for (const chunk of target.pending) socket.write(chunk)
    target.pending = []
    if (socket.writableNeedDrain) this.block(target)
  }

  private onMessage(payload: Buffer): void {
    if (payload.length === 0) return
    const channel = payload[0]!
    // Error channels and unknown channels are ignored, as kubelet does.
    if (channel % 2 !== 0) return
    const target = this.targets[channel / 2]
    if (target === undefined || target.done) return
    const data = payload.subarray(1)
    if (data.length === 0) return
    this.host.counters.bytesToPod += data.length
    this.host.countersChanged?.()
    if (target.socket === undefined) {
      target.pending.push(data)
      return
    }
    if (!target.socket.write(data)) this.block(target)
  }

  private block(target: Target): void {
    if (target.blocked || target.socket === undefined) return
    target.blocked = true
    if (this.blockedTargets++ === 0) this.connection.pause()
    target.socket.once("drain", () => this.unblock(target))
  }

  private unblock(target: Target): void {
    if (!target.blocked) return
    target.blocked = false
    if (--this.blockedTargets === 0 && !this.closed) this.connection.resume()
  }

  private onDrain(): void {
    this.wsBlocked = false
    for (const target of this.paused) target.socket?.resume()
    this.paused.clear()
  }

  private fail(target: Target, cause: string): void {
    if (this.closed || target.done) return
    const message = `error forwarding port ${target.port} to pod ${this.host.pod.name}, uid ${this.host.pod.uid}: ${cause}`
    this.host.debug?.(`ws: ${message}`)
    this.send(Buffer.concat([Buffer.from([2 * target.index + 1]), Buffer.from(message, "utf8")]))
    target.socket?.destroy()
    this.finish(target)
  }

  private finish(target: Target): void {
    if (target.done) return
    target.done = true
    this.unblock(target)
    this.paused.delete(target)
    if (this.targets.every((t) => t.done) && !this.closed) this.connection.close(CloseCode.Normal)
  }

  private send(message: Buffer): void {
    if (!this.connection.send(message)) this.wsBlocked = true
  }
}
