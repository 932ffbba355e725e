/**
 * The SPDY client session on a transport we drive by hand: what it writes (stream pairs as
 * client-go opens them, PINGs, RST_STREAM, WINDOW_UPDATE) and how it reacts to what a server
 * sends (replies, data, errors, resets, GOAWAY, SETTINGS and WINDOW_UPDATE flow control).
 */
import { assert, describe, it } from "@effect/vitest"
import { Spdy } from "@kube-forward/protocol"
import { Effect } from "effect"
import { vi } from "vitest"
import type { PairEvents } from "../src/internal/session.ts"
import { Session } from "../src/internal/session.ts"
import type { Transport, TransportEvents } from "../src/internal/transport.ts"

/** A transport whose writes are decoded into frames, and which can feed frames to the session. */
const harness = (options: { readonly pingIntervalMs?: number; readonly pingTimeoutMs?: number } = {}) => {
  const decoder = new Spdy.Decoder()
  const written: Array<Spdy.Frame> = []
  let events: TransportEvents | undefined
  const state = { paused: false, ended: false, destroyed: false, writable: true }
  const transport: Transport = {
    kind: "spdy",
    write: (bytes) => {
      written.push(...decoder.push(Buffer.from(bytes)))
      return state.writable
    },
    writeData: (head, payload) => {
      written.push(...decoder.push(Buffer.concat([head, payload])))
      return state.writable
    },
    batch: (writes) => writes(),
    pause: () => void (state.paused = true),
    resume: () => void (state.paused = false),
    end: () => void (state.ended = true),
    destroy: () => void (state.destroyed = true),
    buffered: () => 0
  }
  const session = new Session((e) => {
    events = e
    return transport
  }, { pingIntervalMs: options.pingIntervalMs ?? 0, pingTimeoutMs: options.pingTimeoutMs ?? 1000 })
  const feed = (...frames: ReadonlyArray<Buffer>) => events!.onData(Buffer.concat(frames))
  const controls = () =>
    written.filter((f): f is Spdy.ControlFrame => f._tag === "Control").map((f) => Spdy.decodeControl(f))
  const data = (streamId: number) =>
    written.filter((f): f is Spdy.DataFrame => f._tag === "Data" && f.streamId === streamId)
  return { session, state, written, feed, controls, data, drain: () => events!.onDrain() }
}

/** Events that record what happened to a pair. */
const recorder = (options: { readonly accept?: () => boolean } = {}) => {
  const log: Array<string> = []
  const received: Array<Buffer> = []
  const events: PairEvents = {
    onReady: () => void log.push("ready"),
    onData: (bytes) => {
      received.push(bytes)
      return options.accept?.() ?? true
    },
    onEnd: () => void log.push("end"),
    onFail: (reason) => void log.push(`fail: ${reason}`),
    onWritable: () => void log.push("writable"),
    onClosed: () => void log.push("closed")
  }
  return { log, received, events }
}

const headersOf = async (frames: ReadonlyArray<Spdy.Control>) => {
  const inflater = new Spdy.HeaderInflater()
  const out: Array<Record<string, string>> = []
  for (const f of frames) {
    if (f._tag === "SynStream") {
      out.push(Object.fromEntries(Spdy.decodeHeaderBlock(await inflater.inflate(f.headerBlock))))
    }
  }
  inflater.close()
  return out
}

const reply = (id: number) =>
  Spdy.encodeSynReply(id, new Spdy.StoredHeaderCompressor().compress(Spdy.encodeHeaderBlock([])))

describe("native SPDY session", () => {
  it.effect("opens error then data with client-go's headers, odd rising ids, and FIN on the error stream at once", () =>
    Effect.gen(function*() {
      const h = harness()
      h.session.open(80, recorder().events)
      h.session.open(8080, recorder().events)
      const syn = h.controls().filter((c) => c._tag === "SynStream")
      assert.deepStrictEqual(syn.map((s) => s._tag === "SynStream" && s.streamId), [1, 3, 5, 7])
      const headers = yield* Effect.promise(() => headersOf(syn))
      assert.deepStrictEqual(headers, [
        { streamtype: "error", port: "80", requestid: "0" },
        { streamtype: "data", port: "80", requestid: "0" },
        { streamtype: "error", port: "8080", requestid: "1" },
        { streamtype: "data", port: "8080", requestid: "1" }
      ])
      const errorFins = [1, 5].map((id) => h.data(id))
      assert.isTrue(
        errorFins.every((d) => d.length === 1 && d[0].payload.length === 0 && (d[0].flags & Spdy.FLAG_FIN) !== 0)
      )
    }))

  it("sends data only once the data stream is replied to, then carries it both ways and half-closes", () => {
    const h = harness()
    const r = recorder()
    const pair = h.session.open(80, r.events)
    assert.isFalse(pair.write(Buffer.from("early")), "held until the reply")
    assert.strictEqual(h.data(3).length, 0)
    h.feed(reply(1), reply(3))
    assert.deepStrictEqual(r.log, ["ready", "writable"])
    assert.strictEqual(Buffer.concat(h.data(3).map((d) => d.payload)).toString(), "early")
    h.feed(Spdy.encodeDataFrame(3, Buffer.from("answer")))
    assert.strictEqual(Buffer.concat(r.received).toString(), "answer")
    pair.end()
    assert.isTrue((h.data(3).at(-1)!.flags & Spdy.FLAG_FIN) !== 0, "our FIN")
    h.feed(Spdy.encodeDataFrame(1, Buffer.alloc(0), true), Spdy.encodeDataFrame(3, Buffer.alloc(0), true))
    assert.deepStrictEqual(r.log, ["ready", "writable", "end", "closed"])
  })

  it("the kubelet's text on the error stream fails that pair alone; the session and the other pairs go on", () => {
    const h = harness()
    const refused = recorder()
    const fine = recorder()
    h.session.open(81, refused.events)
    h.session.open(80, fine.events)
    h.feed(reply(1), reply(3), reply(5), reply(7))
    h.feed(
      Spdy.encodeDataFrame(1, Buffer.from("error forwarding port 81 to pod web: connection refused")),
      Spdy.encodeDataFrame(1, Buffer.alloc(0), true)
    )
    assert.deepStrictEqual(refused.log.at(-1), "fail: error forwarding port 81 to pod web: connection refused")
    const resets = h.controls().filter((c) => c._tag === "RstStream").map((c) => c._tag === "RstStream" && c.streamId)
    assert.deepStrictEqual(resets.sort(), [1, 3], "the failed pair's streams are reset")
    h.feed(Spdy.encodeDataFrame(7, Buffer.from("still here")))
    assert.strictEqual(Buffer.concat(fine.received).toString(), "still here")
    assert.isUndefined(h.session.ended)
  })

  it("a reset data stream fails its pair; GOAWAY ends the session and fails every pair with the reason", () => {
    const h = harness()
    const a = recorder()
    const b = recorder()
    h.session.open(80, a.events)
    h.session.open(80, b.events)
    h.feed(Spdy.encodeRstStream(3, Spdy.RstStatus.Cancel))
    assert.match(a.log.at(-1)!, /^fail: the server reset the stream/)
    h.feed(Spdy.encodeGoAway(0))
    assert.match(h.session.ended!, /GOAWAY/)
    assert.match(b.log.at(-1)!, /GOAWAY/)
  })

  it("echoes the server's (even) PINGs and never its own replies", () => {
    const h = harness()
    h.feed(Spdy.encodePing(2), Spdy.encodePing(1))
    const pings = h.controls().filter((c) => c._tag === "Ping").map((c) => c._tag === "Ping" && c.id)
    assert.deepStrictEqual(pings, [2])
  })

  it.live("PINGs on an interval with odd ids; an unanswered one ends the session", () =>
    Effect.gen(function*() {
      const h = harness({ pingIntervalMs: 20, pingTimeoutMs: 60 })
      const ended = yield* Effect.callback<string>((resume) =>
        h.session.onEnd((reason) => resume(Effect.succeed(reason)))
      )
      const pings = h.controls().filter((c) => c._tag === "Ping").map((c) => c._tag === "Ping" && c.id)
      assert.deepStrictEqual(pings, [1], "one outstanding PING at a time, id 1")
      assert.match(ended, /did not answer a PING within 60 ms/)
      assert.isTrue(h.state.destroyed)
    }))

  it("an answered PING keeps the session; the next one takes the next odd id", () => {
    vi.useFakeTimers()
    try {
      const h = harness({ pingIntervalMs: 20, pingTimeoutMs: 60 })
      const pings = () => h.controls().flatMap((c) => c._tag === "Ping" ? [c.id] : [])
      vi.advanceTimersByTime(20)
      assert.deepStrictEqual(pings(), [1])
      h.feed(Spdy.encodePing(1))
      vi.advanceTimersByTime(20)
      assert.deepStrictEqual(pings(), [1, 3])
      h.feed(Spdy.encodePing(3))
      vi.advanceTimersByTime(20)
      assert.deepStrictEqual(pings(), [1, 3, 5])
      assert.isUndefined(h.session.ended, "answered PINGs keep the session")
      vi.advanceTimersByTime(60)
      assert.match(h.session.ended ?? "", /did not answer a PING within 60 ms/)
    } finally {
      vi.useRealTimers()
    }
  })

  it("a reader that falls behind pauses the session, and resumes it once drained (no flow control from the server)", () => {
    const h = harness()
    let room = true
    const r = recorder({ accept: () => room })
    const pair = h.session.open(80, r.events)
    h.feed(reply(1), reply(3))
    room = false
    h.feed(Spdy.encodeDataFrame(3, Buffer.alloc(1000)))
    assert.isTrue(h.state.paused)
    pair.drained()
    assert.isFalse(h.state.paused)
    assert.strictEqual(
      h.controls().filter((c) => c._tag === "WindowUpdate").length,
      0,
      "no WINDOW_UPDATE to a server without flow control"
    )
  })

  it("honours a server's SPDY flow control: sends within its windows, waits for WINDOW_UPDATE, grants its own back", () => {
    const h = harness()
    const r = recorder()
    const pair = h.session.open(80, r.events)
    h.feed(Spdy.encodeSettings([{ flags: 0, id: 7, value: 1000 }]), reply(1), reply(3))
    const sent = () => h.data(3).reduce((n, d) => n + d.payload.length, 0)
    assert.isFalse(pair.write(Buffer.alloc(2500)), "more than the window")
    assert.strictEqual(sent(), 1000)
    h.feed(Spdy.encodeWindowUpdate(3, 1000))
    assert.strictEqual(sent(), 2000)
    h.feed(Spdy.encodeWindowUpdate(3, 5000))
    assert.strictEqual(sent(), 2500)
    assert.include(r.log, "writable")
    // the server's bytes are granted back in steps of 32 KiB, per stream and for the session
    h.feed(Spdy.encodeDataFrame(3, Buffer.alloc(40 * 1024)))
    const grants = h.controls().filter((c) => c._tag === "WindowUpdate").map((c) =>
      c._tag === "WindowUpdate" && [c.streamId, c.delta]
    )
    assert.deepStrictEqual(grants, [[0, 40 * 1024], [3, 40 * 1024]])
  })

  it("under flow control a reader that falls behind withholds its own stream's window only", () => {
    const h = harness()
    let slowAccepts = false
    const slow = recorder({ accept: () => slowAccepts })
    const fast = recorder()
    const a = h.session.open(80, slow.events)
    h.session.open(81, fast.events)
    h.feed(Spdy.encodeWindowUpdate(0, 1), reply(3), reply(7))
    const grants = () => h.controls().flatMap((c) => c._tag === "WindowUpdate" ? [[c.streamId, c.delta] as const] : [])
    // the slow reader's buffer is full: its stream gets no window back, the session does
    h.feed(Spdy.encodeDataFrame(3, Buffer.alloc(64 * 1024)))
    assert.deepStrictEqual(grants(), [[0, 64 * 1024]])
    assert.isFalse(h.state.paused, "the session goes on reading for the other pairs")
    h.feed(Spdy.encodeDataFrame(7, Buffer.alloc(40 * 1024)))
    assert.deepStrictEqual(grants(), [[0, 64 * 1024], [0, 40 * 1024], [7, 40 * 1024]])
    // once drained, the slow stream's window comes back in full
    slowAccepts = true
    a.drained()
    assert.deepStrictEqual(grants().at(-1), [3, 64 * 1024])
  })

  it("bytes received before the server showed flow control are granted once it does", () => {
    const h = harness()
    const r = recorder()
    h.session.open(80, r.events)
    h.feed(reply(3), Spdy.encodeDataFrame(3, Buffer.alloc(40 * 1024)))
    assert.strictEqual(h.controls().filter((c) => c._tag === "WindowUpdate").length, 0)
    h.feed(Spdy.encodeWindowUpdate(0, 1), Spdy.encodeDataFrame(3, Buffer.alloc(1)))
    const grants = h.controls().flatMap((c) => c._tag === "WindowUpdate" ? [[c.streamId, c.delta] as const] : [])
    assert.deepStrictEqual(grants, [[0, 40 * 1024 + 1], [3, 40 * 1024 + 1]])
  })

  it("what was received before flow control is granted back one window at most (a larger grant could overflow)", () => {
    const h = harness()
    const r = recorder()
    h.session.open(80, r.events)
    h.feed(reply(3))
    for (let i = 0; i < 8; i++) h.feed(Spdy.encodeDataFrame(3, Buffer.alloc(32 * 1024)))
    h.feed(Spdy.encodeWindowUpdate(0, 1), Spdy.encodeDataFrame(3, Buffer.alloc(1)))
    const grants = h.controls().flatMap((c) => c._tag === "WindowUpdate" ? [[c.streamId, c.delta] as const] : [])
    assert.deepStrictEqual(grants, [[0, 64 * 1024], [3, 64 * 1024]], "256 KiB received, one 64 KiB window granted")
  })

  it("the session's end fails every pair as lost; a pair's own failure is not", () => {
    const h = harness()
    const failures: Array<[string, boolean]> = []
    const events = (): PairEvents => ({
      ...recorder().events,
      onFail: (reason, lost) => void failures.push([reason, lost])
    })
    h.session.open(80, events())
    h.session.open(81, events())
    h.feed(reply(3), reply(7), Spdy.encodeRstStream(3, Spdy.RstStatus.Cancel))
    h.feed(Spdy.encodeGoAway(0))
    assert.deepStrictEqual(failures.map(([, lost]) => lost), [false, true])
  })
})
