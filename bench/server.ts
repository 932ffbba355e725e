/**
 * The bench's cluster process: the testkit's FakeCluster plus the data pods' servers, in a Node
 * process of its own so that the fake API server never shares an event loop with the client or
 * library under test. Driven by the bench over IPC (see lib/ipc.ts).
 *
 * Pods:
 * - `echo` port 7: testkit `Backend.echo()` (time-to-ready round trips, memory, scale);
 * - `sink` port 9001 and `source` port 9002: this file's data servers (lib/protocol.ts; each takes
 *   uploads and downloads, so many connections of both kinds can go through one forward), behind
 *   `Backend.address`, so the bench can also reach them directly for the loopback baseline (and
 *   a plain echo server, the echo pod's service without a forward);
 * - `tk-source` port 9003: testkit `Backend.source({ bytes })`, to show what the testkit's own
 *   source backend costs.
 *
 * argv: `--bytes N` (the largest transfer; the reference stream is that long).
 */
import { Backend, FakeCluster } from "@kube-forward/testkit"
import { Effect, Exit, Scope } from "effect"
import * as Net from "node:net"
import { serve } from "./lib/ipc.ts"
import { CHUNK, crc32, decodeHeader, DONE, DOWNLOAD, encodeHeader, FAIL, HEADER_BYTES, UPLOAD } from "./lib/protocol.ts"

const argValue = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const maxBytes = argValue("--bytes", 16 * 1024 * 1024)

// ---------------------------------------------------------------------------------------------
// the reference stream, and how fast the testkit generates it

const t0 = performance.now()
const reference = Buffer.from(Backend.pattern(maxBytes))
const patternMs = performance.now() - t0

const stats = { uploads: 0, uploadFailures: 0, downloads: 0, uploadBytes: 0, downloadBytes: 0 }

// ---------------------------------------------------------------------------------------------
// data servers

/** Reads the 16-byte request header, then hands every following chunk to `body`. */
const withHeader = (
  socket: Net.Socket,
  onHeader: (magic: number, length: number, value: number) => void,
  body: (chunk: Buffer) => void
) => {
  let pending: Buffer | undefined = Buffer.alloc(0)
  socket.on("data", (chunk: Buffer) => {
    if (pending !== undefined) {
      pending = Buffer.concat([pending, chunk])
      if (pending.length < HEADER_BYTES) return
      const h = decodeHeader(pending.subarray(0, HEADER_BYTES))
      const rest = pending.subarray(HEADER_BYTES)
      pending = undefined
      onHeader(h.magic, h.length, h.value)
      if (rest.length > 0) body(rest)
      return
    }
    body(chunk)
  })
}

const sockets = new Set<Net.Socket>()
const track = (socket: Net.Socket) => {
  sockets.add(socket)
  socket.setNoDelay(true)
  socket.on("close", () => sockets.delete(socket))
  socket.on("error", () => socket.destroy())
}

/** Counts and checksums an upload of `length` bytes; acknowledges with the count and CRC-32. */
const sink = (socket: Net.Socket, length: number): (chunk: Buffer) => void => {
  let count = 0
  let crc = 0
  let done = false
  const finish = (magic: number) => {
    done = true
    socket.write(encodeHeader(magic, crc, count))
  }
  if (length === 0) finish(DONE)
  return (chunk) => {
    if (done) return
    count += chunk.length
    crc = crc32(chunk, crc)
    if (count > length) {
      stats.uploadFailures++
      finish(FAIL)
    } else if (count === length) {
      stats.uploads++
      stats.uploadBytes += count
      finish(DONE)
    }
  }
}

/** Sends `length` bytes of the reference stream from `offset`, with backpressure. */
const source = (socket: Net.Socket, offset: number, length: number, closed: () => boolean) => {
  let sent = 0
  const pump = () => {
    while (!closed() && sent < length) {
      const n = Math.min(CHUNK, length - sent)
      const ok = socket.write(reference.subarray(offset + sent, offset + sent + n))
      sent += n
      if (!ok) return void socket.once("drain", pump)
    }
    if (sent >= length) {
      stats.downloads++
      stats.downloadBytes += sent
    }
  }
  pump()
}

/** The data pods' server: an upload (`UPLD`) or a download (`DNLD`) per connection, as its header says. */
const dataServer = () =>
  Net.createServer((socket) => {
    track(socket)
    let closed = false
    socket.on("close", () => {
      closed = true
    })
    let body: (chunk: Buffer) => void = () => {}
    withHeader(socket, (magic, length, value) => {
      if (magic === UPLOAD) body = sink(socket, length)
      else if (magic === DOWNLOAD && value + length <= reference.length) source(socket, value, length, () => closed)
      else if (magic === DOWNLOAD) socket.destroy()
      else socket.write(encodeHeader(FAIL, 0, 0))
    }, (chunk) => body(chunk))
  })

const sinkServer = dataServer()
const sourceServer = dataServer()

/** The echo pod's service reached without a forward (the direct-loopback contender). */
const echoServer = Net.createServer((socket) => {
  track(socket)
  socket.pipe(socket)
})

const listen = (server: Net.Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve((server.address() as Net.AddressInfo).port))
  })

const sinkPort = await listen(sinkServer)
const sourcePort = await listen(sourceServer)
const echoPort = await listen(echoServer)

// ---------------------------------------------------------------------------------------------
// the fake cluster

const scope = Scope.makeUnsafe()
const cluster = await Effect.runPromise(
  FakeCluster.make({
    pods: [
      { name: "echo", containers: [{ name: "echo", ports: [{ containerPort: 7, backend: Backend.echo() }] }] },
      {
        name: "sink",
        containers: [{
          name: "sink",
          ports: [{ containerPort: 9001, backend: Backend.address("127.0.0.1", sinkPort) }]
        }]
      },
      {
        name: "source",
        containers: [{
          name: "source",
          ports: [{ containerPort: 9002, backend: Backend.address("127.0.0.1", sourcePort) }]
        }]
      },
      {
        name: "tk-source",
        containers: [{ name: "src", ports: [{ containerPort: 9003, backend: Backend.source({ bytes: maxBytes }) }] }]
      }
    ]
  }).pipe(Scope.provide(scope))
)

const closeServer = (server: Net.Server) => new Promise<void>((resolve) => server.close(() => resolve()))

serve(
  {
    url: cluster.url,
    kubeconfigPath: cluster.kubeconfigPath,
    cacheDir: cluster.cacheDir,
    sink: { host: "127.0.0.1", port: sinkPort },
    source: { host: "127.0.0.1", port: sourcePort },
    echo: { host: "127.0.0.1", port: echoPort },
    patternBytes: maxBytes,
    patternMs
  },
  {
    counters: () => Effect.runPromise(cluster.counters),
    resetCounters: () => Effect.runPromise(cluster.resetCounters),
    setTransport: (mode: FakeCluster.TransportMode) => Effect.runPromise(cluster.setTransport(mode)),
    stats: () => ({ ...stats, openDataSockets: sockets.size }),
    memory: () => process.memoryUsage()
  },
  async () => {
    for (const socket of sockets) socket.destroy()
    await Promise.all([closeServer(sinkServer), closeServer(sourceServer), closeServer(echoServer)])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
)
