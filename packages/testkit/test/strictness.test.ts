/**
 * The fake server is as strict as kubelet on spdystream and the API server's tunnel about what a
 * client sends: raw clients (plain SPDY after a real HTTP upgrade, and SPDY inside the tunnel's
 * masked WebSocket frames) break one rule each, and the server must answer as the real one does —
 * RST_STREAM PROTOCOL_ERROR for a stream id that does not rise, RST_STREAM CANCEL without a reply
 * for a stream kubelet refuses, its text for a duplicate stream, the session closed for a frame
 * spdystream's reader refuses, close 1002 / 1000 for WebSocket violations. The rules and their
 * sources are in the README ("Strictness rules").
 */
import { assert, describe, it } from "@effect/vitest"
import { Spdy, WebSocket } from "@kube-forward/protocol"
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import { Backend, FakeCluster } from "../src/index.ts"
import { Signal } from "./helpers/signal.ts"

const PATH = "/api/v1/namespaces/default/pods/web/portforward"

/** A raw port-forward client: what it sends is up to the test. */
interface Raw {
  /** Sends SPDY bytes (inside a masked binary message through the tunnel). */
  readonly send: (bytes: Buffer) => void
  /** Sends raw bytes on the socket (a hand-made WebSocket frame). */
  readonly sendRaw: (bytes: Buffer) => void
  /** SYN_STREAM with these headers (compressed with the session's zlib stream). */
  readonly syn: (id: number, headers: ReadonlyArray<readonly [string, string]>, flags?: number) => Effect.Effect<void>
  /** SPDY frames from the server so far. */
  readonly frames: ReadonlyArray<Spdy.Frame>
  /** Waits until `ready` answers (checked on every frame, close or end). */
  readonly until: <A>(ready: (raw: Raw) => A | undefined) => Effect.Effect<A>
  /** The WebSocket close code the server sent (tunnel). */
  readonly closeCode: number | undefined
  /** The server closed the TCP connection. */
  readonly ended: boolean
}

/** A header block as written, names untouched (the protocol's encoder lowercases them). */
const headerBlock = (headers: ReadonlyArray<readonly [string, string]>): Buffer => {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
  }
  const text = (s: string) => [u32(Buffer.byteLength(s)), Buffer.from(s)]
  return Buffer.concat([u32(headers.length), ...headers.flatMap(([name, value]) => [...text(name), ...text(value)])])
}

const upgradeRequest = (kind: "spdy" | "tunnel", host: string): string =>
  kind === "spdy" ?
    `POST ${PATH} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n` +
    "X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n" :
    `GET ${PATH} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Key: ${WebSocket.generateKey()}\r\nSec-WebSocket-Version: 13\r\n` +
    "Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n"

/** Upgrades a raw connection to the cluster (SPDY or the tunnel) and wires its decoders. */
const open = (cluster: FakeCluster.FakeCluster, kind: "spdy" | "tunnel"): Effect.Effect<Raw, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const url = new URL(cluster.url)
    const socket = yield* Effect.acquireRelease(
      Effect.sync(() => Net.connect({ host: url.hostname, port: Number(url.port) })),
      (s) => Effect.sync(() => s.destroy())
    )
    const signal = new Signal()
    const frames: Array<Spdy.Frame> = []
    const spdy = new Spdy.Decoder()
    const ws = new WebSocket.Decoder({ from: "server" })
    const state = { closeCode: undefined as number | undefined, ended: false }
    const onBytes = (bytes: Buffer) => {
      if (kind === "spdy") frames.push(...spdy.push(bytes))
      else {
        for (const frame of ws.push(bytes)) {
          if (frame.opcode === WebSocket.Opcode.Close) state.closeCode = WebSocket.closeCodeOf(frame.payload)
          else if (frame.opcode === WebSocket.Opcode.Binary) frames.push(...spdy.push(frame.payload))
        }
      }
      signal.notify()
    }
    let head = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      if (head !== undefined && head.indexOf("\r\n\r\n") < 0) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end < 0) return
        const rest = head.subarray(end + 4)
        head = Buffer.from("done\r\n\r\n")
        if (rest.length > 0) onBytes(rest)
        return signal.notify()
      }
      onBytes(chunk)
    })
    socket.on("error", () => undefined)
    socket.on("close", () => {
      state.ended = true
      signal.notify()
    })
    socket.write(upgradeRequest(kind, url.host))
    yield* signal.until(() => (head.indexOf("\r\n\r\n") >= 0 ? true : undefined)).pipe(Effect.timeout("10 seconds"))
    const deflater = new Spdy.HeaderDeflater()
    yield* Effect.addFinalizer(() => Effect.sync(() => deflater.close()))
    const send = (bytes: Buffer) =>
      socket.write(kind === "spdy" ? bytes : WebSocket.encodeFrame(WebSocket.Opcode.Binary, bytes, { mask: true }))
    const raw: Raw = {
      send,
      sendRaw: (bytes) => socket.write(bytes),
      syn: (id, headers, flags = 0) =>
        Effect.promise(() => deflater.deflate(headerBlock(headers))).pipe(
          Effect.map((block) => void send(Spdy.encodeSynStream(id, block, { flags })))
        ),
      frames,
      until: (ready) => signal.until(() => ready(raw)).pipe(Effect.timeout("10 seconds"), Effect.orDie),
      get closeCode() {
        return state.closeCode
      },
      get ended() {
        return state.ended
      }
    }
    return raw
  })

const describeFrame = (f: Spdy.Frame): string => {
  if (f._tag === "Data") {
    return `DATA ${f.streamId}${f.flags & Spdy.FLAG_FIN ? " FIN" : ""}${f.payload.length ? ` ${f.payload}` : ""}`
  }
  const c = Spdy.decodeControl(f)
  switch (c._tag) {
    case "SynReply":
      return `SYN_REPLY ${c.streamId}`
    case "RstStream":
      return `RST_STREAM ${c.streamId} ${c.status}`
    case "Ping":
      return `PING ${c.id}`
    default:
      return c._tag
  }
}

const frameLog = (raw: Raw) => raw.frames.map(describeFrame)

const pod = {
  name: "web",
  containers: [{ name: "c", ports: [{ containerPort: 7, backend: Backend.echo() }] }]
}

const pair = (type: string, requestId = "0", port = "7"): Array<readonly [string, string]> => [
  ["streamtype", type],
  ["port", port],
  ["requestid", requestId]
]

/** A PING and its echo: everything the server sent before the echo is in `frames` then. */
const roundTrip = (raw: Raw, id: number) => {
  raw.send(Spdy.encodePing(id))
  return raw.until((r) => r.frames.some((f) => describeFrame(f) === `PING ${id}`) ? frameLog(r) : undefined)
}

for (const kind of ["spdy", "tunnel"] as const) {
  describe(`strictness over ${kind === "spdy" ? "plain SPDY" : "the WebSocket tunnel"}`, () => {
    it.live("a stream id that does not rise gets RST_STREAM PROTOCOL_ERROR (spdystream validateStreamId)", () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [pod] })
        const raw = yield* open(cluster, kind)
        yield* raw.syn(3, pair("error"))
        yield* raw.syn(1, pair("data"))
        yield* raw.syn(3, pair("data"))
        assert.deepStrictEqual(yield* roundTrip(raw, 1), ["SYN_REPLY 3", "RST_STREAM 1 1", "RST_STREAM 3 1", "PING 1"])
        assert.strictEqual((yield* cluster.counters).streams, 1, "the refused ones never opened")
      }))

    it.live("kubelet refuses a stream without a valid port or streamtype: RST_STREAM CANCEL, no reply", () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [pod] })
        const raw = yield* open(cluster, kind)
        yield* raw.syn(1, [["streamtype", "error"], ["requestid", "0"]])
        yield* raw.syn(3, pair("error", "1", "0"))
        yield* raw.syn(5, pair("error", "2", "65536"))
        yield* raw.syn(7, pair("error", "3", "http"))
        yield* raw.syn(9, [["port", "7"], ["requestid", "4"]])
        yield* raw.syn(11, pair("stdin", "5"))
        yield* raw.syn(13, pair("error", "6"))
        assert.deepStrictEqual(yield* roundTrip(raw, 1), [
          "RST_STREAM 1 5",
          "RST_STREAM 3 5",
          "RST_STREAM 5 5",
          "RST_STREAM 7 5",
          "RST_STREAM 9 5",
          "RST_STREAM 11 5",
          "SYN_REPLY 13",
          "PING 1"
        ])
        assert.strictEqual((yield* cluster.counters).connections, 0)
      }))

    it.live("without requestid, streams pair by id (error N, data N+2), as kubelet pairs old clients' streams", () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [pod] })
        const raw = yield* open(cluster, kind)
        yield* raw.syn(1, [["streamtype", "error"], ["port", "7"]])
        yield* raw.syn(3, [["streamtype", "data"], ["port", "7"]])
        raw.send(Spdy.encodeDataFrame(3, Buffer.from("paired"), true))
        const log = yield* raw.until((r) => frameLog(r).includes("DATA 3 FIN") ? frameLog(r) : undefined)
        assert.includeMembers(log, ["SYN_REPLY 1", "SYN_REPLY 3", "DATA 3 paired", "DATA 3 FIN"])
        assert.strictEqual((yield* cluster.counters).connections, 1)
      }))

    it.live("a second stream of one type for a request id: accepted, and kubelet's complaint on the error stream", () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [pod] })
        const raw = yield* open(cluster, kind)
        yield* raw.syn(1, pair("error"))
        yield* raw.syn(3, pair("error"))
        assert.deepStrictEqual(yield* roundTrip(raw, 1), [
          "SYN_REPLY 1",
          "SYN_REPLY 3",
          "DATA 1 error processing stream for request 0: error stream already assigned",
          "PING 1"
        ])
        // the pair still completes with its data stream, and carries bytes
        yield* raw.syn(5, pair("data"))
        raw.send(Spdy.encodeDataFrame(5, Buffer.from("still works"), true))
        const log = yield* raw.until((r) => frameLog(r).includes("DATA 5 FIN") ? frameLog(r) : undefined)
        assert.includeMembers(log, ["SYN_REPLY 5", "DATA 5 still works", "DATA 5 FIN"])
        // DATA on an unknown stream or after FIN is dropped (on an error stream, the duplicate
        // included, it ends the session: see below)
        raw.send(Spdy.encodeDataFrame(99, Buffer.from("x")))
        raw.send(Spdy.encodeDataFrame(5, Buffer.from("after FIN")))
        yield* roundTrip(raw, 3)
        assert.strictEqual((yield* cluster.counters).bytesToPod, "still works".length)
      }))

    const enders: ReadonlyArray<readonly [string, (raw: Raw) => Effect.Effect<void>]> = [
      [
        "an unknown control frame type",
        (r) => Effect.sync(() => r.send(Spdy.encodeControlFrame(5, 0, Buffer.alloc(4))))
      ],
      [
        "a PING with flags",
        (r) => Effect.sync(() => r.send(Spdy.encodeControlFrame(6, 1, Buffer.from("00000001", "hex"))))
      ],
      ["a PING with id 0", (r) => Effect.sync(() => r.send(Spdy.encodePing(0)))],
      ["an RST_STREAM with status 0", (r) => Effect.sync(() => r.send(Spdy.encodeRstStream(1, 0)))],
      ["a GOAWAY of 4 bytes", (r) => Effect.sync(() => r.send(Spdy.encodeControlFrame(7, 0, Buffer.alloc(4))))],
      ["a WINDOW_UPDATE with flags", (r) => Effect.sync(() => r.send(Spdy.encodeControlFrame(9, 1, Buffer.alloc(8))))],
      ["DATA for stream 0", (r) => Effect.sync(() => r.send(Spdy.encodeDataFrame(0, Buffer.from("x"))))],
      [
        "DATA with a payload on an error stream",
        (r) => Effect.sync(() => r.send(Spdy.encodeDataFrame(101, Buffer.from("x"))))
      ],
      ["a PING of 8 bytes", (r) => Effect.sync(() => r.send(Spdy.encodeControlFrame(6, 0, Buffer.alloc(8, 1))))],
      ["an uppercase header name", (r) => r.syn(5, [["Port", "7"], ["streamtype", "data"], ["requestid", "1"]])],
      ["a repeated header name", (r) => r.syn(5, [["port", "7"], ["port", "8"], ["streamtype", "data"]])],
      ["a host header", (r) => r.syn(5, [...pair("data", "1"), ["host", "x"]])],
      ["a GOAWAY", (r) => Effect.sync(() => r.send(Spdy.encodeGoAway(0)))]
    ]
    for (const [what, violate] of enders) {
      it.live(`${what} ends the session; only the incomplete pair's stream is reset first`, () =>
        Effect.gen(function*() {
          const cluster = yield* FakeCluster.make({ pods: [pod] })
          const raw = yield* open(cluster, kind)
          // request 0 complete (kubelet forgot its streams), request 9 half open
          yield* raw.syn(1, pair("error"))
          yield* raw.syn(3, pair("data"))
          yield* raw.syn(101, pair("error", "9"))
          yield* cluster.awaitCounters((c) => c.connections === 1)
          yield* roundTrip(raw, 1)
          yield* violate(raw)
          const log = yield* raw.until((r) => r.ended ? frameLog(r) : undefined)
          assert.deepStrictEqual(log.slice(4), ["RST_STREAM 101 5"])
          if (kind === "tunnel") assert.strictEqual(raw.closeCode, WebSocket.CloseCode.Normal)
          yield* cluster.awaitCounters((c) => c.activeSessions === 0)
        }))
    }
  })
}

describe("strictness of upgrades", () => {
  it.live("a port-forward request that is not an upgrade: 400 Upgrade request required", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod] })
      const res = yield* Effect.promise(() => fetch(`${cluster.url}${PATH}`, { method: "POST" }))
      assert.strictEqual(res.status, 400)
      assert.strictEqual(
        (yield* Effect.promise(() => res.json() as Promise<{ message: string }>)).message,
        "Upgrade request required"
      )
    }))
})

describe("strictness of the tunnel's WebSocket (gorilla/websocket, TunnelingConnection)", () => {
  const cases: ReadonlyArray<readonly [string, Buffer, number]> = [
    ["an unmasked frame", WebSocket.encodeFrame(WebSocket.Opcode.Binary, Spdy.encodePing(1)), 1002],
    ["a continuation with no message under way", WebSocket.encodeFrame(0, Buffer.from("x"), { mask: true }), 1002],
    ["a text message", WebSocket.encodeFrame(WebSocket.Opcode.Text, Spdy.encodePing(1), { mask: true }), 1000],
    ["an unknown opcode (3)", WebSocket.encodeFrame(3, Buffer.from("x"), { mask: true }), 1002],
    [
      "a new message before the last one ended",
      Buffer.concat([
        WebSocket.encodeFrame(WebSocket.Opcode.Binary, Buffer.from([0x80]), { mask: true, fin: false }),
        WebSocket.encodeFrame(WebSocket.Opcode.Binary, Buffer.from([0x03]), { mask: true })
      ]),
      1002
    ]
  ]
  for (const [what, bytes, code] of cases) {
    it.live(`${what}: close ${code}`, () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [pod] })
        const raw = yield* open(cluster, "tunnel")
        raw.sendRaw(bytes)
        yield* raw.until((r) => r.closeCode)
        assert.strictEqual(raw.closeCode, code)
        assert.deepStrictEqual(frameLog(raw), [], "nothing of it reached the SPDY session")
      }))
  }

  it.live("a message split into fragments is one byte stream", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ pods: [pod] })
      const raw = yield* open(cluster, "tunnel")
      const ping = Spdy.encodePing(7)
      raw.sendRaw(Buffer.concat([
        WebSocket.encodeFrame(WebSocket.Opcode.Binary, ping.subarray(0, 3), { mask: true, fin: false }),
        WebSocket.encodeFrame(WebSocket.Opcode.Ping, Buffer.alloc(0), { mask: true }),
        WebSocket.encodeFrame(0, ping.subarray(3), { mask: true })
      ]))
      assert.deepStrictEqual(yield* raw.until((r) => r.frames.length > 0 ? frameLog(r) : undefined), ["PING 7"])
    }))
})
