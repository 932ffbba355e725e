/**
 * The kubelet side of a forwarded connection, shared by the SPDY (plain and tunnel) and the
 * `v4.channel.k8s.io` sessions: resolve the pod's port, dial it, hold the client's bytes until the
 * dial completes, carry bytes both ways with socket backpressure, and word failures as kubelet does.
 *
 * Kubelet dials `localhost:PORT` inside the pod's network namespace (containerd's
 * `portforward` in `pkg/cri/server/sandbox_portforward_linux.go`); its errors reach the client as
 * `error forwarding port P to pod NAME, uid UID: CAUSE` (K `pkg/kubelet/cri/streaming/portforward/
 * httpstream.go`, `websocket.go`).
 *
 * @internal
 */
import * as Net from "node:net"
import type { Address, ForwardHost, PodRef } from "./host.ts"

/** Client bytes buffered before the pod's port is dialled above which the client is paused. */
export const PENDING_LIMIT = 1024 * 1024

// -------------------------------------------------------------------------------------------------
// kubelet's words

/** A port as kubelet parses it (`strconv.ParseUint(port, 10, 16)`, then non-zero), or undefined. */
export const parsePort = (text: string): number | undefined => {
  const port = Number(text)
  return /^\d+$/.test(text) && port >= 1 && port <= 65535 ? port : undefined
}

/** Kubelet's cause for a port that does not parse. */
export const invalidPortCause = (text: string): string => `unable to parse "${text}" as a port: invalid port`

/** containerd's wording for a port nothing listens on inside the pod. */
export const refusedCause = (port: number, uid: string): string =>
  `failed to execute portforward in network namespace "/var/run/netns/cni-${uid}": failed to connect to localhost:${port} inside namespace "${uid}", IPv4: dial tcp4 127.0.0.1:${port}: connect: connection refused IPv6 dial tcp6 [::1]:${port}: connect: connection refused `

/** containerd's wording for a dial that failed otherwise. */
export const dialCause = (port: number, uid: string, error: NodeJS.ErrnoException): string => {
  switch (error.code) {
    case "ECONNREFUSED":
      return refusedCause(port, uid)
    case "ETIMEDOUT":
      return `failed to connect to localhost:${port} inside namespace "${uid}", IPv4: dial tcp4 127.0.0.1:${port}: i/o timeout`
    case "EHOSTUNREACH":
      return `failed to connect to localhost:${port} inside namespace "${uid}", IPv4: dial tcp4 127.0.0.1:${port}: connect: no route to host`
    default:
      return `failed to connect to localhost:${port} inside namespace "${uid}": ${error.message}`
  }
}

/** The text kubelet writes on the error stream (or channel) of a failed forward. */
export const forwardingError = (pod: PodRef, port: number | string, cause: string): string =>
  `error forwarding port ${port} to pod ${pod.name}, uid ${pod.uid}: ${cause}`

// -------------------------------------------------------------------------------------------------
// backpressure

/**
 * Backpressure between one client connection and the pod connections it carries, both ways:
 * while any pod socket cannot take more, the client is not read; while the client's socket is full,
 * pods that produce are paused until it drains. spdystream has no flow-control windows, and the
 * channel protocol none either, so sockets are all there is.
 */
export class Backpressure {
  private readonly client: { readonly pause: () => void; readonly resume: () => void }
  private readonly paused = new Set<PodConnection>()
  private holds = 0
  private full = false
  private closed = false

  constructor(client: { readonly pause: () => void; readonly resume: () => void }) {
    this.client = client
  }

  /** Whether a write towards the client found its buffer full (until {@link drained}). */
  get clientFull(): boolean {
    return this.full
  }

  /** Records the result of a write towards the client. */
  wrote(ok: boolean): void {
    if (!ok) this.full = true
  }

  /** The client's socket has room again: resume the paused pods. */
  drained(): void {
    this.full = false
    for (const connection of this.paused) connection.resumeReading()
    this.paused.clear()
  }

  /** A pod connection cannot take more: stop reading the client. */
  hold(): void {
    if (this.holds++ === 0) this.client.pause()
  }

  /** A pod connection took its bytes: read the client again once none holds it. */
  release(): void {
    if (--this.holds === 0 && !this.closed) this.client.resume()
  }

  /** Pauses a pod until the client drains. */
  pausePod(connection: PodConnection): void {
    if (this.paused.has(connection)) return
    connection.pauseReading()
    this.paused.add(connection)
  }

  /** Forgets a finished pod connection. */
  forget(connection: PodConnection): void {
    this.paused.delete(connection)
  }

  /** The client is gone. */
  close(): void {
    this.closed = true
    this.paused.clear()
  }
}

// -------------------------------------------------------------------------------------------------
// one connection

/** What a session hears from a pod connection. */
export interface PodConnectionEvents {
  /** Bytes from the pod (already counted). */
  readonly onData: (chunk: Buffer) => void
  /**
   * The pod side finished sending (its FIN, an error after the connect, or the close); may come more
   * than once. Half-open connections only.
   */
  readonly onEnd?: () => void
  /** Resolving or dialling the port failed; `message` is kubelet's full error text. */
  readonly onFail: (message: string) => void
  /** The connection is over (closed, failed or destroyed); called once. */
  readonly onClose: () => void
}

/** Options of a {@link PodConnection}. */
export interface PodConnectionOptions {
  /**
   * Keep writing after the pod's FIN, and pass the client's FIN on with {@link PodConnection.end}
   * (SPDY streams half-close; the channel protocol has no half-close).
   */
  readonly halfOpen: boolean
}

/**
 * One connection from "kubelet" to a pod port. It exists as soon as the client may send bytes;
 * {@link PodConnection.start} counts it, resolves the port and dials. Bytes written before the socket
 * exists are kept (the client is paused above {@link PENDING_LIMIT}) and flushed on connect.
 */
export class PodConnection {
  private readonly host: ForwardHost
  private readonly flow: Backpressure
  private readonly events: PodConnectionEvents
  private readonly halfOpen: boolean
  private port = 0
  private socket: Net.Socket | undefined = undefined
  private pending: Array<Buffer> = []
  private pendingBytes = 0
  /** This connection holds the client (see {@link Backpressure.hold}). */
  private holding = false
  private clientFin = false
  private done = false
  /** containerd's way (see `ForwardHost.containerdGraceMs`): the pod side has ended. */
  private podDone = false
  private grace: ReturnType<typeof setTimeout> | undefined = undefined

  constructor(host: ForwardHost, flow: Backpressure, events: PodConnectionEvents, options: PodConnectionOptions) {
    this.host = host
    this.flow = flow
    this.events = events
    this.halfOpen = options.halfOpen
  }

  /** Counts the connection, resolves the pod's port and dials it. */
  start(port: number): void {
    this.port = port
    this.host.counters.connections++
    this.host.countersChanged()
    this.host.resolve(this.port).then(
      (address) => {
        if (this.done) return
        if (address === undefined) this.fail(refusedCause(this.port, this.host.pod.uid))
        else this.connect(address)
      },
      (error) => this.fail(String(error))
    )
  }

  /** Client bytes for the pod (counted here). */
  write(chunk: Buffer): void {
    if (this.done) return
    this.host.counters.bytesToPod += chunk.length
    this.host.countersChanged()
    if (this.socket !== undefined) {
      if (!this.socket.write(chunk)) this.block()
      return
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    if (!this.holding && this.pendingBytes > PENDING_LIMIT) {
      this.holding = true
      this.flow.hold()
    }
  }

  /**
   * The client's FIN (half-open connections): the pod reads EOF once the pending bytes are
   * written; containerd's way, the pod reads nothing and the connection is closed once the pod
   * has ended too, or after the grace.
   */
  end(): void {
    this.clientFin = true
    if (this.host.containerdGraceMs === undefined) return void this.socket?.end()
    if (this.podDone) this.closeBoth()
    else this.startGrace()
  }

  /** containerd's way: the pod's side ended (its FIN, an error, the close). */
  private podSideDone(): void {
    if (this.podDone) return
    this.podDone = true
    if (this.clientFin) this.closeBoth()
    else this.startGrace()
  }

  /** containerd's `time.After(timeout)` once one copy direction returned. */
  private startGrace(): void {
    if (this.grace !== undefined || this.done) return
    this.grace = setTimeout(() => this.closeBoth(), this.host.containerdGraceMs)
    this.grace.unref()
  }

  /** containerd's deferred `conn.Close()` and `stream.Close()`. */
  private closeBoth(): void {
    if (this.grace !== undefined) clearTimeout(this.grace)
    this.grace = undefined
    this.events.onEnd?.()
    this.socket?.destroy()
    this.finish()
  }

  /** Drops the connection. */
  destroy(): void {
    this.socket?.destroy()
    this.finish()
  }

  /** Stops reading the pod (the client is full). */
  pauseReading(): void {
    this.socket?.pause()
  }

  /** Reads the pod again. */
  resumeReading(): void {
    this.socket?.resume()
  }

  private connect(address: Address): void {
    const socket = Net.connect({ host: address.host, port: address.port, allowHalfOpen: this.halfOpen })
    socket.setNoDelay(true)
    this.socket = socket
    let connected = false
    socket.on("connect", () => {
      connected = true
    })
    socket.on("data", (chunk: Buffer) => this.fromPod(chunk))
    const containerd = this.halfOpen && this.host.containerdGraceMs !== undefined
    const podEnded = () => containerd ? this.podSideDone() : this.events.onEnd?.()
    if (this.halfOpen) socket.on("end", podEnded)
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (!connected) this.fail(dialCause(this.port, this.host.pod.uid, error))
      else podEnded()
    })
    socket.on("close", () => {
      if (containerd && !this.done) return this.podSideDone()
      if (this.halfOpen) this.events.onEnd?.()
      this.finish()
    })
    // flush what the client sent while the port was being resolved
    const pending = this.pending
    this.pending = []
    this.pendingBytes = 0
    for (const chunk of pending) socket.write(chunk)
    if (this.holding) {
      this.holding = false
      this.flow.release()
    }
    if (this.clientFin && this.host.containerdGraceMs === undefined) socket.end()
    else if (socket.writableNeedDrain) this.block()
  }

  private fromPod(chunk: Buffer): void {
    this.host.counters.bytesFromPod += chunk.length
    this.host.countersChanged()
    this.events.onData(chunk)
    if (this.flow.clientFull) this.flow.pausePod(this)
  }

  /** The pod socket's buffer is full: hold the client until it drains. */
  private block(): void {
    if (this.holding || this.socket === undefined) return
    this.holding = true
    this.flow.hold()
    this.socket.once("drain", () => {
      if (!this.holding) return
      this.holding = false
      this.flow.release()
    })
  }

  private fail(cause: string): void {
    if (this.done) return
    this.events.onFail(forwardingError(this.host.pod, this.port, cause))
    this.socket?.destroy()
    this.finish()
  }

  private finish(): void {
    if (this.done) return
    this.done = true
    if (this.grace !== undefined) clearTimeout(this.grace)
    this.pending = []
    this.pendingBytes = 0
    if (this.holding) {
      this.holding = false
      this.flow.release()
    }
    this.flow.forget(this)
    this.events.onClose()
  }
}
