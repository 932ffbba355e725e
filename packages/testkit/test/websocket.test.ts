/**
 * The server's WebSocket transports, and the `v4.channel.k8s.io` port-forward protocol driven both
 * by a raw hand-written client (to check the exact bytes) and by @kubernetes/client-node. The
 * framing itself is tested with its codec in packages/protocol.
 */
import { assert, describe, it } from "@effect/vitest"
import { WebSocket as Ws } from "@kube-forward/protocol"
import { Effect, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Path from "node:path"
import * as Stream from "node:stream"
import { Backend, Child, FakeCluster } from "../src/index.ts"
import { socketTransport, WsConnection } from "../src/internal/transport.ts"
import { clientNodeForward, echoExactly } from "./helpers/clientNode.ts"
import { randomBytes, sha256 } from "./helpers/kubectl.ts"
import { Signal } from "./helpers/signal.ts"

describe("transports", () => {
  it("header and payload written apart: the same bytes and the same backpressure as one buffer", () => {
    /** A socket whose writes stay buffered until `release` (so highWaterMark is reached). */
    const stuckSocket = () => {
      const written: Array<Buffer> = []
      const held: Array<() => void> = []
      let released = false
      const take = (chunk: Buffer, cb: () => void) => {
        written.push(Buffer.from(chunk))
        if (released) cb()
        else held.push(cb)
      }
      const socket = new Stream.Duplex({
        writableHighWaterMark: 100_000,
        read() {},
        write(chunk: Buffer, _encoding, cb) {
          take(chunk, cb)
        },
        writev(chunks, cb) {
          take(Buffer.concat(chunks.map((c) => c.chunk as Buffer)), cb)
        }
      })
      const release = () => {
        released = true
        held.splice(0).forEach((cb) => cb())
      }
      return { socket, written, release }
    }
    const sizes = [0, 1, 100, 1016, 1017, 1024, 1025, 5000, 32_768, 65_527, 65_528, 65_536, 32_768, 32_768, 70_000]
    const prefix = Buffer.from("0000000300007fff", "hex")
    // WebSocket messages: sendParts(prefix, payload) vs send(prefix ++ payload)
    const a = stuckSocket()
    const b = stuckSocket()
    const joined = new WsConnection(a.socket, "stream", {
      onBinary: () => undefined,
      onDrain: () => undefined,
      onClose: () => undefined
    })
    const parts = new WsConnection(b.socket, "stream", {
      onBinary: () => undefined,
      onDrain: () => undefined,
      onClose: () => undefined
    })
    const payloads = sizes.map((n) => Crypto.randomBytes(n))
    const joinedResults = payloads.map((p) => joined.send(Buffer.concat([prefix, p])))
    const partsResults = payloads.map((p) => parts.sendParts(prefix, p))
    assert.deepStrictEqual(partsResults, joinedResults)
    assert.include(joinedResults, false)
    a.release()
    b.release()
    assert.isTrue(Buffer.concat(b.written).equals(Buffer.concat(a.written)))
    // plain SPDY: writeFrame(header, payload) vs write(header ++ payload)
    const c = stuckSocket()
    const d = stuckSocket()
    const events = { onData: () => undefined, onDrain: () => undefined, onClose: () => undefined }
    const one = socketTransport(c.socket, events)
    const two = socketTransport(d.socket, events)
    const oneResults = payloads.map((p) => one.write(Buffer.concat([prefix, p])))
    const twoResults = payloads.map((p) => two.writeFrame(prefix, p))
    assert.deepStrictEqual(twoResults, oneResults)
    c.release()
    d.release()
    assert.isTrue(Buffer.concat(d.written).equals(Buffer.concat(c.written)))
  })
})

/** A raw WebSocket client: handshake, then frames in and out. */
interface RawWs {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly messages: Array<Buffer>
  readonly send: (payload: Uint8Array) => void
  /** Writes raw bytes (hand-made frames). */
  readonly write: (bytes: Uint8Array) => void
  /** Waits until `n` messages have arrived, or the connection closed (with its close code). */
  readonly waitMessages: (n: number) => Effect.Effect<ReadonlyArray<Buffer>>
  readonly closed: Effect.Effect<number | undefined>
}

const rawWs = (url: string, path: string, protocols: ReadonlyArray<string>): Effect.Effect<RawWs, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<RawWs & { readonly socket: Net.Socket }, Error>((resume) => {
      const { port } = new URL(url)
      const socket = Net.connect({ host: "127.0.0.1", port: Number(port) })
      const key = Crypto.randomBytes(16).toString("base64")
      socket.on("connect", () =>
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n` +
            (protocols.length > 0 ? `Sec-WebSocket-Protocol: ${protocols.join(", ")}\r\n` : "") +
            "\r\n"
        ))
      let head = Buffer.alloc(0)
      let parsed = false
      const decoder = new Ws.Decoder({ from: "server" })
      const messages: Array<Buffer> = []
      const signal = new Signal()
      let closeCode: number | undefined | null = null
      const notify = signal.notify
      const onFrames = (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) {
          if (frame.opcode === Ws.Opcode.Binary) messages.push(frame.payload)
          if (frame.opcode === Ws.Opcode.Close) {
            closeCode = Ws.closeCodeOf(frame.payload)
            socket.end(Ws.encodeClose(closeCode, "", { mask: true }))
          }
        }
        notify()
      }
      const waitFor = <A>(ready: () => A | undefined) => signal.until(ready)
      socket.on("close", () => {
        if (closeCode === null) closeCode = undefined
        notify()
      })
      socket.on("error", (error) => {
        if (!parsed) resume(Effect.fail(error))
      })
      socket.on("data", (chunk: Buffer) => {
        if (parsed) return onFrames(chunk)
        head = Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end < 0) return
        parsed = true
        const [statusLine, ...lines] = head.subarray(0, end).toString("latin1").split("\r\n")
        const headers: Record<string, string> = {}
        for (const line of lines) {
          const i = line.indexOf(":")
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
        }
        const status = Number(statusLine!.split(" ")[1])
        const rest = head.subarray(end + 4)
        const client = {
          socket,
          status,
          headers,
          body: status === 101 ? "" : rest.toString("utf8"),
          messages,
          send: (payload: Uint8Array) => socket.write(Ws.encodeFrame(Ws.Opcode.Binary, payload, { mask: true })),
          write: (bytes: Uint8Array) => socket.write(bytes),
          waitMessages: (n: number) => waitFor(() => messages.length >= n || closeCode !== null ? messages : undefined),
          closed: waitFor(() => closeCode !== null ? { code: closeCode } : undefined).pipe(Effect.map((c) => c.code))
        }
        if (status === 101) {
          assert.strictEqual(headers["sec-websocket-accept"], Ws.acceptKey(key))
          if (rest.length > 0) onFrames(rest)
          resume(Effect.succeed(client))
        } else {
          socket.on("end", () => {
            resume(Effect.succeed({ ...client, body: head.subarray(end + 4).toString("utf8") }))
          })
          socket.on("data", (more: Buffer) => {
            head = Buffer.concat([head, more])
          })
        }
      })
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

const cluster = (extra: FakeCluster.Options = {}) =>
  FakeCluster.make({
    pods: [{
      name: "web",
      containers: [{
        name: "app",
        ports: [
          { containerPort: 7, backend: Backend.echo() },
          { containerPort: 80, backend: Backend.http() }
        ]
      }]
    }],
    ...extra
  })

describe("v4.channel.k8s.io (raw client)", () => {
  it.live("announces each port on its two channels, then carries data on channel 2i", () =>
    Effect.gen(function*() {
      const c = yield* cluster()
      const ws = yield* rawWs(c.url, "/api/v1/namespaces/default/pods/web/portforward?ports=7,80", [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "channel.k8s.io"
      ])
      assert.strictEqual(ws.status, 101)
      assert.strictEqual(ws.headers["sec-websocket-protocol"], "v4.channel.k8s.io")
      const intro = yield* ws.waitMessages(4)
      assert.deepStrictEqual(intro.slice(0, 4).map((m) => m.toString("hex")), ["000700", "010700", "025000", "035000"])
      ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("ping over channel 0")]))
      ws.send(Buffer.from([9, 1, 2, 3])) // out of range: ignored
      const echoed = yield* ws.waitMessages(5)
      assert.strictEqual(echoed[4]![0], 0)
      assert.strictEqual(echoed[4]!.subarray(1).toString(), "ping over channel 0")
      ws.send(Buffer.concat([Buffer.from([2]), Buffer.from("GET /health HTTP/1.0\r\n\r\n")]))
      const http = yield* ws.waitMessages(6)
      assert.strictEqual(http[5]![0], 2)
      assert.include(http[5]!.subarray(1).toString(), "HTTP/1.1 200 OK")
      const counters = yield* c.counters
      assert.deepStrictEqual(counters.sessions, { spdy: 0, tunnel: 0, websocket: 1 })
      assert.strictEqual(counters.connections, 2)
      assert.strictEqual(counters.streams, 4)
    }))

  it.live("every frame is a message of its own, as kubelet's x/net/websocket reads them: a fragment too", () =>
    Effect.gen(function*() {
      const c = yield* cluster()
      const ws = yield* rawWs(c.url, "/api/v1/namespaces/default/pods/web/portforward?ports=7", ["v4.channel.k8s.io"])
      yield* ws.waitMessages(2)
      // one message in two fragments: [0, "a"] then "bc", whose first byte (0x62) is no channel
      ws.write(Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from([0, 0x61]), { mask: true, fin: false }))
      ws.write(Ws.encodeFrame(Ws.Opcode.Continuation, Buffer.from("bc"), { mask: true }))
      ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("d")]))
      const echoed = yield* ws.waitMessages(4)
      assert.deepStrictEqual(echoed.slice(2).map((m) => m.toString("hex")), ["0061", "0064"])
      assert.strictEqual((yield* c.counters).bytesToPod, 2, "only a and d reached the pod")
    }))

  it.live("a refused port gets its error on channel 2i+1, then close 1000", () =>
    Effect.gen(function*() {
      const c = yield* cluster()
      const ws = yield* rawWs(c.url, "/api/v1/namespaces/default/pods/web/portforward?ports=81", ["v4.channel.k8s.io"])
      assert.strictEqual(ws.status, 101)
      const code = yield* ws.closed
      assert.strictEqual(code, 1000)
      assert.deepStrictEqual(ws.messages.slice(0, 2).map((m) => m.toString("hex")), ["005100", "015100"])
      assert.strictEqual(ws.messages[2]![0], 1)
      assert.match(
        ws.messages[2]!.subarray(1).toString(),
        /^error forwarding port 81 to pod web, uid .*connection refused/
      )
    }))

  it.live("upgrade errors are Status bodies", () =>
    Effect.gen(function*() {
      const c = yield* cluster()
      const missing = yield* rawWs(c.url, "/api/v1/namespaces/default/pods/nope/portforward?ports=80", [
        "v4.channel.k8s.io"
      ])
      assert.strictEqual(missing.status, 404)
      assert.deepStrictEqual(JSON.parse(missing.body), {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "pods \"nope\" not found",
        reason: "NotFound",
        details: { name: "nope", kind: "pods" },
        code: 404
      })
      const noPorts = yield* rawWs(c.url, "/api/v1/namespaces/default/pods/web/portforward", ["v4.channel.k8s.io"])
      assert.strictEqual(noPorts.status, 400)
      const tunnelOff = yield* cluster({ transport: "spdy-only" })
      const tunnel = yield* rawWs(tunnelOff.url, "/api/v1/namespaces/default/pods/web/portforward", [
        "SPDY/3.1+portforward.k8s.io"
      ])
      assert.strictEqual(tunnel.status, 400)
      assert.strictEqual(tunnel.body, "query parameter \"port\" is required", "an old server's kubelet, as is")
      yield* c.setUpgradeFault({ _tag: "Status", code: 503 })
      const faulted = yield* rawWs(c.url, "/api/v1/namespaces/default/pods/web/portforward?ports=80", [
        "v4.channel.k8s.io"
      ])
      assert.strictEqual(faulted.status, 503)
      assert.strictEqual(JSON.parse(faulted.body).reason, "ServiceUnavailable")
    }))
})

describe("@kubernetes/client-node PortForward", () => {
  it.live("echoes 1 MiB through a pod", () =>
    Effect.gen(function*() {
      const c = yield* cluster()
      const forward = yield* clientNodeForward(c.kubeconfigPath, { pod: "web", port: 7 })
      const payload = randomBytes(1024 * 1024)
      const back = yield* echoExactly(forward.port, payload)
      assert.strictEqual(sha256(back), sha256(payload))
      assert.deepStrictEqual(forward.errors, [])
      const counters = yield* c.counters
      assert.strictEqual(counters.sessions.websocket, 1)
      assert.strictEqual(counters.bytesToPod, payload.length)
      assert.strictEqual(counters.bytesFromPod, payload.length)
      assert.strictEqual(counters.restRequests, 0)
    }))

  it.live("resolves a service through the REST API (portForwardService)", () =>
    Effect.gen(function*() {
      const c = yield* cluster({
        pods: [
          { name: "web-0", labels: { app: "web" }, phase: "Pending", containers: [{ name: "a", ports: [] }] },
          {
            name: "web-1",
            labels: { app: "web" },
            containers: [{ name: "a", ports: [{ containerPort: 7, backend: Backend.echo() }] }]
          }
        ],
        services: [{ name: "web", selector: { app: "web" }, ports: [{ port: 7 }] }]
      })
      const forward = yield* clientNodeForward(c.kubeconfigPath, { service: "web", port: 7 })
      const back = yield* echoExactly(forward.port, Buffer.from("via the service"))
      assert.strictEqual(back.toString(), "via the service")
      assert.deepStrictEqual(forward.errors, [])
      assert.isAtLeast((yield* c.counters).restRequests, 2)
    }))

  it.live("a refused port reaches client-node's error stream", () =>
    Effect.gen(function*() {
      const c = yield* cluster()
      const forward = yield* clientNodeForward(c.kubeconfigPath, { pod: "web", port: 81 })
      // client-node never closes the local connection when the WebSocket closes: wait for the error
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => Net.connect({ host: "127.0.0.1", port: forward.port })),
        (s) => Effect.sync(() => s.destroy())
      )
      socket.on("error", () => undefined)
      const error = yield* forward.waitForError(/./).pipe(Effect.timeout("20 seconds"))
      assert.match(error, /^error forwarding port 81 to pod web, uid .*connection refused/)
      yield* c.awaitCounters((n) => n.activeSessions === 0).pipe(Effect.timeout("20 seconds"))
    }))
})

/** The Debian python3-kubernetes client, when installed (`apt-get install python3-kubernetes`). */
const python = (() => {
  for (const candidate of ["/usr/bin/python3", "python3"]) {
    const probe = ChildProcess.spawnSync(candidate, ["-c", "import kubernetes"], { stdio: "ignore" })
    if (probe.status === 0) return candidate
  }
  return undefined
})()

/** In CI (`CI=true`, where `.ci/run` installs the client) a missing client fails the run instead of skipping. */
const pythonRequired = process.env.CI === "true"

describe.skipIf(python === undefined && !pythonRequired)("kubernetes Python client portforward", () => {
  it.live("forwards two ports over one WebSocket", () =>
    Effect.gen(function*() {
      if (python === undefined) {
        return assert.fail("CI=true and no python3 with the kubernetes package: install python3-kubernetes")
      }
      const c = yield* cluster()
      const script = Path.join(import.meta.dirname, "fixtures", "python-portforward.py")
      const proc = yield* Child.spawn(python, [script, c.kubeconfigPath, "web"])
      const exit = yield* proc.awaitExit
      assert.strictEqual(exit.code, 0, proc.text("stderr"))
      const result = JSON.parse(proc.lines("stdout").at(-1)!)
      assert.deepStrictEqual(result, {
        echo: "hello from python",
        status: "HTTP/1.1 200 OK",
        body: `{"status":"ok"}`,
        errors: { "7": null, "80": null }
      })
      const counters = yield* c.counters
      assert.strictEqual(counters.sessions.websocket, 1)
      assert.strictEqual(counters.connections, 2)
    }))
})
