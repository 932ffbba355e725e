/**
 * The SPDY session at the byte level, with a scripted client: SYN_REPLY bytes, pairing by
 * requestid, PING rules, the FIN order kubectl relies on, and the kubelet failure path. Plus
 * backpressure through real kubectl (bounded buffering when one side stops reading).
 */
import { assert, describe, it } from "@effect/vitest"
import { Spdy } from "@kube-forward/protocol"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import { Backend, FakeCluster } from "../src/index.ts"
import { zero } from "../src/internal/counters.ts"
import type { ForwardHost } from "../src/internal/host.ts"
import { SpdySession } from "../src/internal/spdySession.ts"
import type { Transport } from "../src/internal/transport.ts"
import { portForward } from "./helpers/kubectl.ts"
import { Signal } from "./helpers/signal.ts"

/**
 * A session wired to an in-memory transport and an echo server: port 80 resolves at once, port 8080
 * only after `openGate()` (a slow dial). `reads` records the transport's pauses and resumes.
 */
const harness = Effect.gen(function*() {
  const echo = yield* Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Net.Server>((resolve) => {
        const server = Net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
        server.listen(0, "127.0.0.1", () => resolve(server))
      })
    ),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )
  const echoPort = (echo.address() as Net.AddressInfo).port
  const written: Array<Spdy.Frame> = []
  const decoder = new Spdy.Decoder()
  const signal = new Signal()
  const reads: Array<"pause" | "resume"> = []
  const ended: Array<"end"> = []
  let openGate = () => {}
  const gate = new Promise<void>((resolve) => (openGate = resolve))
  const transport: Transport = {
    write: (chunk) => {
      written.push(...decoder.push(chunk))
      signal.notify()
      return true
    },
    writeFrame: (header, payload) => {
      written.push(...decoder.push(header), ...decoder.push(payload))
      signal.notify()
      return true
    },
    pause: () => void reads.push("pause"),
    resume: () => void reads.push("resume"),
    end: () => void ended.push("end"),
    destroy: () => undefined,
    closed: () => false
  }
  const counters = zero()
  const host: ForwardHost = {
    counters,
    countersChanged: () => undefined,
    pod: { namespace: "default", name: "web", uid: "uid-1" },
    resolve: (port) => {
      const address = { host: "127.0.0.1", port: echoPort }
      return port === 80
        ? Promise.resolve(address)
        : port === 8080
        ? gate.then(() => address)
        : Promise.resolve(undefined)
    }
  }
  const session = new SpdySession(transport, host)
  yield* Effect.addFinalizer(() => Effect.sync(() => session.closedByTransport()))
  const deflater = new Spdy.HeaderDeflater()
  const syn = (id: number, headers: Array<[string, string]>) =>
    Effect.promise(() => deflater.deflate(Spdy.encodeHeaderBlock(headers))).pipe(
      Effect.map((block) => session.feed(Spdy.encodeSynStream(id, block)))
    )
  const waitFrames = (predicate: (frames: ReadonlyArray<Spdy.Frame>) => boolean) =>
    signal.until(() => predicate(written) ? written : undefined).pipe(Effect.timeout("10 seconds"))
  return { session, written, counters, syn, waitFrames, reads, ended, openGate }
})

const describeFrame = (f: Spdy.Frame): string =>
  f._tag === "Data" ?
    `DATA ${f.streamId}${f.flags & Spdy.FLAG_FIN ? " FIN" : ""}${f.payload.length ? ` ${f.payload.toString()}` : ""}` :
    `CTRL ${f.type} ${f.payload.subarray(0, 4).toString("hex")}`

describe("SpdySession", () => {
  it.live("replies at once, pairs by requestid, echoes, and FINs data before error", () =>
    Effect.gen(function*() {
      const h = yield* harness
      // request 1's error stream arrives before request 0's data stream: pairing is by requestid
      yield* h.syn(1, [["streamtype", "error"], ["port", "80"], ["requestid", "0"]])
      yield* h.syn(3, [["streamtype", "error"], ["port", "80"], ["requestid", "1"]])
      yield* h.syn(5, [["streamtype", "data"], ["port", "80"], ["requestid", "0"]])
      const replies = yield* h.waitFrames((w) => w.length >= 3)
      assert.deepStrictEqual(replies.slice(0, 3).map((f) => f._tag === "Control" && f.type), [2, 2, 2])
      // first SYN_REPLY starts the zlib stream, the others continue it
      assert.strictEqual(replies[0]!.payload.subarray(4, 6).toString("hex"), "78bb")
      assert.strictEqual(replies[1]!.payload.subarray(4, 6).toString("hex"), "0004")
      h.session.feed(Spdy.encodeDataFrame(1, Buffer.alloc(0), true))
      h.session.feed(Spdy.encodeDataFrame(5, Buffer.from("hello")))
      h.session.feed(Spdy.encodeDataFrame(5, Buffer.alloc(0), true))
      const frames = yield* h.waitFrames((w) => w.some((f) => f._tag === "Data" && f.streamId === 1))
      assert.deepStrictEqual(frames.slice(3).map(describeFrame), ["DATA 5 hello", "DATA 5 FIN", "DATA 1 FIN"])
      assert.strictEqual(h.counters.connections, 1)
      assert.strictEqual(h.counters.streams, 3)
      assert.strictEqual(h.counters.bytesToPod, 5)
      assert.strictEqual(h.counters.bytesFromPod, 5)
    }))

  it.live("echoes odd PING ids only", () =>
    Effect.gen(function*() {
      const h = yield* harness
      h.session.feed(Buffer.concat([Spdy.encodePing(2), Spdy.encodePing(1), Spdy.encodePing(4), Spdy.encodePing(7)]))
      const frames = yield* h.waitFrames((w) => w.length >= 2)
      assert.deepStrictEqual(frames.map(describeFrame), ["CTRL 6 00000001", "CTRL 6 00000007"])
    }))

  it.live("a refused port: kubelet's message on the error stream, then FIN both", () =>
    Effect.gen(function*() {
      const h = yield* harness
      yield* h.syn(1, [["streamtype", "error"], ["port", "81"], ["requestid", "0"]])
      yield* h.syn(3, [["streamtype", "data"], ["port", "81"], ["requestid", "0"]])
      const frames = yield* h.waitFrames((w) => w.filter((f) => f._tag === "Data").length >= 3)
      assert.deepStrictEqual(frames.slice(2).map(describeFrame), [
        "DATA 1 error forwarding port 81 to pod web, uid uid-1: failed to execute portforward in network namespace " +
        "\"/var/run/netns/cni-uid-1\": failed to connect to localhost:81 inside namespace \"uid-1\", IPv4: dial tcp4 " +
        "127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: connection refused ",
        "DATA 1 FIN",
        "DATA 3 FIN"
      ])
    }))

  it.live("bytes sent before the dial completes are kept, the client paused above 1 MiB, then all delivered in order", () =>
    Effect.gen(function*() {
      const h = yield* harness
      yield* h.syn(1, [["streamtype", "error"], ["port", "8080"], ["requestid", "0"]])
      yield* h.syn(3, [["streamtype", "data"], ["port", "8080"], ["requestid", "0"]])
      yield* h.waitFrames((w) => w.length >= 2)
      const payload = Crypto.randomBytes(1536 * 1024)
      const frames = Spdy.encodeDataFrames(3, payload)
      const half = frames.length / 2
      for (const frame of frames.slice(0, half)) h.session.feed(frame)
      assert.deepStrictEqual(h.reads, [], "768 KiB pending: the client is still read")
      for (const frame of frames.slice(half)) h.session.feed(frame)
      assert.deepStrictEqual(h.reads, ["pause"], "over 1 MiB pending: the client is paused")
      h.session.feed(Spdy.encodeDataFrame(3, Buffer.alloc(0), true))
      h.openGate()
      const all = yield* h.waitFrames((w) =>
        w.some((f) => f._tag === "Data" && f.streamId === 3 && (f.flags & Spdy.FLAG_FIN) !== 0)
      )
      assert.strictEqual(h.reads[1], "resume", "read again once the dial completed")
      const echoed = Buffer.concat(all.filter((f) => f._tag === "Data" && f.streamId === 3).map((f) => f.payload))
      assert.isTrue(echoed.equals(payload), "every byte, in order")
      assert.strictEqual(h.counters.bytesToPod, payload.length)
    }))

  it.live("ignores SETTINGS, WINDOW_UPDATE and frames for unknown streams", () =>
    Effect.gen(function*() {
      const h = yield* harness
      h.session.feed(Spdy.encodeControlFrame(Spdy.FrameType.Settings, 0, Buffer.from("00000000", "hex")))
      h.session.feed(Spdy.encodeControlFrame(Spdy.FrameType.WindowUpdate, 0, Buffer.from("0000000100001000", "hex")))
      h.session.feed(Spdy.encodeDataFrame(9, Buffer.from("stray"), true))
      h.session.feed(Spdy.encodeRstStream(9, Spdy.RstStatus.Cancel))
      h.session.feed(Spdy.encodePing(3))
      const frames = yield* h.waitFrames((w) => w.length >= 1)
      assert.deepStrictEqual(frames.map(describeFrame), ["CTRL 6 00000003"])
    }))
})

const plateau = <A>(read: Effect.Effect<A>, value: (a: A) => number) =>
  Effect.gen(function*() {
    // poll until the value has not moved for 10 consecutive reads (≈ 500 ms)
    let last = -1
    let stable = 0
    while (stable < 10) {
      const now = value(yield* read)
      stable = now === last && now > 0 ? stable + 1 : 0
      last = now
      yield* Effect.sleep("50 millis")
    }
    return last
  }).pipe(Effect.timeout("60 seconds"))

describe("backpressure", () => {
  for (const version of ["1.27", "1.33"]) {
    it.live(`${version}: an endless source stalls when the local client stops reading`, () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({
          pods: [{
            name: "firehose",
            containers: [{ name: "a", ports: [{ containerPort: 9, backend: Backend.source() }] }]
          }]
        })
        const fwd = yield* portForward(cluster, version, "pod/firehose", 9)
        const socket = yield* Effect.acquireRelease(
          Effect.sync(() => Net.connect({ host: "127.0.0.1", port: fwd.localPort })),
          (s) => Effect.sync(() => s.destroy())
        )
        socket.on("error", () => undefined)
        socket.pause() // never read
        const stalled = yield* plateau(cluster.counters, (c) => c.bytesFromPod)
        // socket buffers on every hop plus kubectl's own copy buffers: a few MiB, never unbounded
        assert.isBelow(stalled, 48 * 1024 * 1024)
        // and it flows again once the client reads
        let received = 0
        socket.on("data", (chunk: Buffer) => {
          received += chunk.length
        })
        socket.resume()
        yield* cluster.awaitCounters((c) => c.bytesFromPod > stalled + 16 * 1024 * 1024).pipe(
          Effect.timeout("30 seconds")
        )
        assert.isAbove(received, 0)
      }))
  }

  it.live("1.33: a pod that stops reading stalls the upload", () =>
    Effect.gen(function*() {
      const held: Array<Net.Socket> = []
      const cluster = yield* FakeCluster.make({
        pods: [{
          name: "blackhole",
          containers: [{
            name: "a",
            ports: [{
              containerPort: 9,
              backend: Backend.handler((s) => {
                s.pause()
                held.push(s)
              })
            }]
          }]
        }]
      })
      const fwd = yield* portForward(cluster, "1.33", "pod/blackhole", 9)
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => Net.connect({ host: "127.0.0.1", port: fwd.localPort })),
        (s) => Effect.sync(() => s.destroy())
      )
      socket.on("error", () => undefined)
      const chunk = Buffer.alloc(256 * 1024)
      let written = 0
      const pump = () => {
        while (socket.write(chunk)) written += chunk.length
        written += chunk.length
      }
      socket.on("drain", pump)
      socket.on("connect", pump)
      const stalled = yield* plateau(cluster.counters, (c) => c.bytesToPod)
      assert.isBelow(stalled, 48 * 1024 * 1024)
      assert.isAbove(written, stalled)
      // once the pod reads again, the upload resumes
      held.forEach((s) => s.resume())
      yield* cluster.awaitCounters((c) => c.bytesToPod > stalled + 16 * 1024 * 1024).pipe(Effect.timeout("30 seconds"))
    }))
})
