/**
 * Running backends: in-process TCP servers on 127.0.0.1:0, started on first use and closed with
 * the cluster.
 *
 * @internal
 */
import * as Http from "node:http"
import * as Net from "node:net"
import type { Backend, Sink } from "../Backend.ts"
import type { Address } from "./host.ts"

// -------------------------------------------------------------------------------------------------
// the byte pattern

/** A resumable generator of the pattern sequence (xorshift32, one byte per step). */
export class PatternGenerator {
  private state = 0x9e3779b9

  /** The next `length` bytes of the sequence. */
  next(length: number): Buffer {
    const out = Buffer.allocUnsafe(length)
    let x = this.state
    for (let i = 0; i < length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      out[i] = x & 0xff
    }
    this.state = x
    return out
  }
}

/** The first `length` bytes of the pattern. */
export const pattern = (length: number): Buffer => new PatternGenerator().next(length)

// -------------------------------------------------------------------------------------------------
// sink counters

const sinkCounts = new WeakMap<Sink, { bytes: number }>()

const sinkState = (sink: Sink): { bytes: number } => {
  let state = sinkCounts.get(sink)
  if (state === undefined) {
    state = { bytes: 0 }
    sinkCounts.set(sink, state)
  }
  return state
}

/** Bytes a sink has received so far. */
export const sinkCount = (sink: Sink): number => sinkState(sink).bytes

// -------------------------------------------------------------------------------------------------
// connection handlers

const DEFAULT_ITEMS: ReadonlyArray<unknown> = [
  { id: 1, name: "alpha" },
  { id: 2, name: "beta" },
  { id: 3, name: "gamma" }
]

const httpHandler = (backend: Extract<Backend, { _tag: "Http" }>): Http.RequestListener => (req, res) => {
  const url = new URL(req.url ?? "/", "http://backend")
  const json = (status: number, body: unknown) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
    res.end(text)
  }
  const bytes = /^\/bytes\/(\d+)$/.exec(url.pathname)
  if (req.method === "GET" && url.pathname === "/health") return json(200, { status: "ok" })
  if (req.method === "GET" && url.pathname === "/items") return json(200, { items: backend.options.items ?? DEFAULT_ITEMS })
  if (req.method === "GET" && url.pathname === "/whoami") return json(200, { name: backend.options.name ?? null })
  if (req.method === "POST" && url.pathname === "/echo") {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      res.writeHead(200, {
        "content-type": req.headers["content-type"] ?? "application/octet-stream",
        "content-length": body.length
      })
      res.end(body)
    })
    return
  }
  if (req.method === "GET" && bytes) {
    const total = Number(bytes[1])
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total })
    const gen = new PatternGenerator()
    let sent = 0
    const pump = () => {
      while (sent < total) {
        const n = Math.min(64 * 1024, total - sent)
        sent += n
        if (!res.write(gen.next(n))) {
          res.once("drain", pump)
          return
        }
      }
      res.end()
    }
    pump()
    return
  }
  req.resume()
  json(404, { error: "not found" })
}

const sourceHandler = (bytes: number | undefined) => (socket: Net.Socket) => {
  const gen = new PatternGenerator()
  let sent = 0
  let stopped = false
  socket.on("close", () => {
    stopped = true
  })
  socket.on("error", () => socket.destroy())
  socket.resume()
  const pump = () => {
    while (!stopped) {
      const n = bytes === undefined ? 64 * 1024 : Math.min(64 * 1024, bytes - sent)
      if (n <= 0) {
        socket.end()
        return
      }
      sent += n
      if (!socket.write(gen.next(n))) {
        socket.once("drain", pump)
        return
      }
    }
  }
  pump()
}

// -------------------------------------------------------------------------------------------------
// the pool

interface Running {
  readonly address: Address
  readonly close: () => Promise<void>
}

const listen = (server: Net.Server): Promise<Address> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      server.off("error", reject)
      const info = server.address() as Net.AddressInfo
      resolve({ host: "127.0.0.1", port: info.port })
    })
  })

const startNet = async (handle: (socket: Net.Socket) => void, allowHalfOpen: boolean): Promise<Running> => {
  const sockets = new Set<Net.Socket>()
  const server = Net.createServer({ allowHalfOpen }, (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.setNoDelay(true)
    try {
      handle(socket)
    } catch {
      socket.destroy()
    }
  })
  const address = await listen(server)
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

const startHttp = async (backend: Extract<Backend, { _tag: "Http" }>): Promise<Running> => {
  const server = Http.createServer(httpHandler(backend))
  server.keepAliveTimeout = 1000
  const address = await listen(server)
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

const start = (backend: Backend): Promise<Running> => {
  switch (backend._tag) {
    case "Echo":
      return startNet((socket) => {
        socket.on("error", () => socket.destroy())
        socket.pipe(socket)
      }, true)
    case "Http":
      return startHttp(backend)
    case "Sink":
      return startNet((socket) => {
        const state = sinkState(backend)
        socket.on("data", (chunk: Buffer) => {
          state.bytes += chunk.length
        })
        socket.on("error", () => socket.destroy())
        socket.on("end", () => socket.end())
      }, true)
    case "Source":
      return startNet(sourceHandler(backend.bytes), true)
    case "Handler":
      return startNet(backend.handle, false)
    case "Address":
      return Promise.resolve({ address: { host: backend.host, port: backend.port }, close: () => Promise.resolve() })
  }
}

/** The backends one cluster has started, keyed by the backend description. */
export class BackendPool {
  private readonly running = new Map<Backend, Promise<Running>>()
  private closed = false

  /** Where a backend listens, starting it on first use. */
  resolve(backend: Backend): Promise<Address> {
    if (this.closed) return Promise.reject(new Error("cluster is closed"))
    let running = this.running.get(backend)
    if (running === undefined) {
      running = start(backend)
      this.running.set(backend, running)
      running.catch(() => this.running.delete(backend))
    }
    return running.then((r) => r.address)
  }

  /** Stops every started backend. */
  async close(): Promise<void> {
    this.closed = true
    const all = [...this.running.values()]
    this.running.clear()
    await Promise.all(all.map((p) => p.then((r) => r.close(), () => undefined)))
  }
}
