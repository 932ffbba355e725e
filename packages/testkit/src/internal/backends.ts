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
//
// The sequence: xorshift32 (13, 17, 5) from a fixed seed, one step per byte, the low byte of each
// state. A step depends on the previous one, so one chain runs at the latency of its six
// operations; instead, blocks of GROUP bytes are generated as four interleaved chains of LANE
// bytes each (the CPU overlaps them), with the start state of each lane found by jumping ahead
// LANE steps (xorshift is linear over GF(2)^32, so a jump is a 32×32 bit-matrix product), and
// four bytes of a lane packed into one 32-bit store.

const SEED = 0x9e3779b9 | 0

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** One xorshift32 step. */
const step = (x: number): number => {
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  return x | 0
}

/** A linear map on 32-bit states: `columns[i]` is the image of bit `i`. */
const applyMap = (columns: Int32Array, x: number): number => {
  let r = 0
  for (let i = 0; i < 32; i++) if (((x >>> i) & 1) !== 0) r ^= columns[i]!
  return r
}

/** `steps` xorshift steps as one linear map. */
const jumpMap = (steps: number): Int32Array => {
  let base = new Int32Array(32)
  let result = new Int32Array(32)
  for (let i = 0; i < 32; i++) {
    base[i] = step(1 << i)
    result[i] = 1 << i
  }
  const compose = (a: Int32Array, b: Int32Array) => {
    const c = new Int32Array(32)
    for (let i = 0; i < 32; i++) c[i] = applyMap(a, b[i]!)
    return c
  }
  for (let k = steps; k > 0; k = Math.floor(k / 2)) {
    if (k % 2 === 1) result = compose(base, result)
    base = compose(base, base)
  }
  return result
}

/** Bytes per lane (a multiple of 4). */
const LANE = 4096
/** Bytes generated per round of four lanes. */
const GROUP = 4 * LANE
const JUMP_LANE = jumpMap(LANE)

/** Writes the sequence following `state` into `out[from, to)` one byte at a time; returns the new state. */
const fillSerial = (out: Uint8Array, from: number, to: number, state: number): number => {
  let x = state
  for (let i = from; i < to; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return x | 0
}

/**
 * Writes `out[from, from + groups × GROUP)` with four interleaved lanes per group. Requires a
 * little-endian machine and `out.byteOffset + from` aligned to 4. Returns the new state.
 */
const fillGroups = (out: Uint8Array, from: number, groups: number, state: number): number => {
  const words = new Int32Array(out.buffer, out.byteOffset + from, (groups * GROUP) >>> 2)
  const laneWords = LANE >>> 2
  let x = state
  for (let g = 0; g < groups; g++) {
    let a = x
    let b = applyMap(JUMP_LANE, a)
    let c = applyMap(JUMP_LANE, b)
    let d = applyMap(JUMP_LANE, c)
    let wa = g * (GROUP >>> 2)
    const end = wa + laneWords
    for (; wa < end; wa++) {
      let pa = 0
      let pb = 0
      let pc = 0
      let pd = 0
      for (let shift = 0; shift < 32; shift += 8) {
        a = step(a)
        b = step(b)
        c = step(c)
        d = step(d)
        pa |= (a & 0xff) << shift
        pb |= (b & 0xff) << shift
        pc |= (c & 0xff) << shift
        pd |= (d & 0xff) << shift
      }
      words[wa] = pa
      words[wa + laneWords] = pb
      words[wa + 2 * laneWords] = pc
      words[wa + 3 * laneWords] = pd
    }
    x = d
  }
  return x | 0
}

/** Writes the sequence following `state` into `out` (all of it); returns the new state. */
const fill = (out: Uint8Array, state: number): number => {
  const length = out.length
  if (!LITTLE_ENDIAN || length < GROUP) return fillSerial(out, 0, length, state)
  // serial up to the first 4-byte-aligned offset, then whole groups, then serial again
  const head = Math.min(length, (4 - (out.byteOffset & 3)) & 3)
  let x = fillSerial(out, 0, head, state)
  const groups = Math.floor((length - head) / GROUP)
  x = fillGroups(out, head, groups, x)
  return fillSerial(out, head + groups * GROUP, length, x)
}

/** A resumable generator of the pattern sequence; every call returns a fresh buffer. */
export class PatternGenerator {
  private state = SEED

  /** The next `length` bytes of the sequence. */
  next(length: number): Buffer {
    const out = Buffer.allocUnsafe(length)
    this.state = fill(out, this.state)
    return out
  }
}

/** The first `length` bytes of the pattern. */
export const pattern = (length: number): Buffer => new PatternGenerator().next(length)

/** Bytes per cached block. */
export const PATTERN_BLOCK = 1024 * 1024
/**
 * How much of the pattern one {@link PatternCache} keeps at most. Past it, bytes are generated
 * on the fly at about 1 GB/s, still faster than kubectl carries them; the cap keeps a fake
 * cluster that streamed a lot from holding that much memory.
 */
export const PATTERN_CACHE_LIMIT = 32 * 1024 * 1024

/**
 * The start of the pattern, generated once (lazily, a block at a time, as far as readers get)
 * and shared by every connection of a cluster's source and HTTP backends, so that serving the
 * same bytes again costs no CPU. Lives as long as the cluster's backend pool.
 */
export class PatternCache {
  readonly limit: number
  private readonly blocks: Array<Buffer> = []
  /** `states[k]`: the generator state after block `k`. */
  private readonly states: Array<number> = []

  constructor(limit = PATTERN_CACHE_LIMIT) {
    this.limit = Math.floor(limit / PATTERN_BLOCK) * PATTERN_BLOCK
  }

  /** Block `k` (`k × PATTERN_BLOCK` < limit), generating the blocks up to it first. */
  block(k: number): Buffer {
    while (this.blocks.length <= k) {
      const block = Buffer.allocUnsafeSlow(PATTERN_BLOCK)
      const state = fill(block, this.states.length === 0 ? SEED : this.states[this.states.length - 1]!)
      this.blocks.push(block)
      this.states.push(state)
    }
    return this.blocks[k]!
  }

  /** The generator state after the first `position` bytes (`position` a multiple of the block size, ≤ limit). */
  stateAt(position: number): number {
    if (position === 0) return SEED
    const k = position / PATTERN_BLOCK - 1
    this.block(k)
    return this.states[k]!
  }
}

/**
 * Reads the pattern from the start, from a {@link PatternCache} as far as it goes and generating
 * beyond it. Returned buffers may be shared with other readers: never modify them.
 */
export class PatternReader {
  private readonly cache: PatternCache
  private position = 0
  /** The generator state at `position`, once past the cache. */
  private state = SEED

  constructor(cache: PatternCache) {
    this.cache = cache
  }

  /** The next `length` bytes of the sequence. */
  next(length: number): Buffer {
    const limit = this.cache.limit
    if (this.position >= limit) {
      const out = Buffer.allocUnsafe(length)
      this.state = fill(out, this.state)
      this.position += length
      return out
    }
    const k = Math.floor(this.position / PATTERN_BLOCK)
    const offset = this.position - k * PATTERN_BLOCK
    if (offset + length <= PATTERN_BLOCK) {
      // the common case: a view of one cached block
      this.position += length
      if (this.position === limit) this.state = this.cache.stateAt(limit)
      return this.cache.block(k).subarray(offset, offset + length)
    }
    // spans blocks (or the end of the cache): copy the pieces together
    const out = Buffer.allocUnsafe(length)
    let filled = 0
    while (filled < length && this.position < limit) {
      const piece = this.next(Math.min(length - filled, PATTERN_BLOCK - (this.position % PATTERN_BLOCK)))
      out.set(piece, filled)
      filled += piece.length
    }
    if (filled < length) {
      this.state = fill(out.subarray(filled), this.state)
      this.position += length - filled
    }
    return out
  }
}

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

const httpHandler =
  (backend: Extract<Backend, { _tag: "Http" }>, cache: PatternCache): Http.RequestListener => (req, res) => {
    const url = new URL(req.url ?? "/", "http://backend")
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body)
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
      res.end(text)
    }
    const bytes = /^\/bytes\/(\d+)$/.exec(url.pathname)
    if (req.method === "GET" && url.pathname === "/health") return json(200, { status: "ok" })
    if (req.method === "GET" && url.pathname === "/items") {
      return json(200, { items: backend.options.items ?? DEFAULT_ITEMS })
    }
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
      const gen = new PatternReader(cache)
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

const sourceHandler = (bytes: number | undefined, cache: PatternCache) => (socket: Net.Socket) => {
  const gen = new PatternReader(cache)
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

const startHttp = async (backend: Extract<Backend, { _tag: "Http" }>, cache: PatternCache): Promise<Running> => {
  const server = Http.createServer(httpHandler(backend, cache))
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

const start = (backend: Backend, cache: PatternCache): Promise<Running> => {
  switch (backend._tag) {
    case "Echo":
      return startNet((socket) => {
        socket.on("error", () => socket.destroy())
        socket.pipe(socket)
      }, true)
    case "Http":
      return startHttp(backend, cache)
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
      return startNet(sourceHandler(backend.bytes, cache), true)
    case "Handler":
      return startNet(backend.handle, false)
    case "Address":
      return Promise.resolve({ address: { host: backend.host, port: backend.port }, close: () => Promise.resolve() })
  }
}

/** The backends one cluster has started, keyed by the backend description. */
export class BackendPool {
  private readonly running = new Map<Backend, Promise<Running>>()
  /** The pattern bytes served so far, shared by this pool's source and HTTP backends. */
  private cache: PatternCache | undefined = new PatternCache()
  private closed = false

  /** Where a backend listens, starting it on first use. */
  resolve(backend: Backend): Promise<Address> {
    if (this.closed) return Promise.reject(new Error("cluster is closed"))
    let running = this.running.get(backend)
    if (running === undefined) {
      running = start(backend, this.cache ??= new PatternCache())
      this.running.set(backend, running)
      running.catch(() => this.running.delete(backend))
    }
    return running.then((r) => r.address)
  }

  /** Stops every started backend. */
  async close(): Promise<void> {
    this.closed = true
    this.cache = undefined
    const all = [...this.running.values()]
    this.running.clear()
    await Promise.all(all.map((p) => p.then((r) => r.close(), () => undefined)))
  }
}
