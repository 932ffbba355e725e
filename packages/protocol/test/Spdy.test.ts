/**
 * The SPDY/3.1 codec, checked against bytes captured from a real kubectl 1.33 session, against
 * node:zlib, and frame by frame in both directions.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Zlib from "node:zlib"
import { Spdy } from "../src/index.ts"
import { SPDY_DICTIONARY, SPDY_DICTIONARY_ID } from "../src/internal/spdyDictionary.ts"

/**
 * The first client bytes of `kubectl.1.33 port-forward pod/web :7` over plain SPDY (captured from
 * the fake cluster with KUBE_FORWARD_TESTKIT_DEBUG=1), then "hello echo" and FIN:
 * SYN_STREAM 1 {streamtype: error, port: 7, requestid: 0}, DATA 1 FIN,
 * SYN_STREAM 3 {streamtype: data, port: 7, requestid: 0}, DATA 3 "hello echo", DATA 3 FIN.
 */
const CAPTURE = Buffer.from(
  "800300010000003c00000001000000000000" +
    "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc68cec0c0c0590489c34c50da663400000000ffff" +
    "00000001" + "01000000" +
    "80030001000000180000000300000000" + "0000" + "c2aa1354082512d008000000ffff" +
    "000000030000000a68656c6c6f206563686f" +
    "0000000301000000",
  "hex"
)

const adler32 = (data: Uint8Array): number => {
  let a = 1
  let b = 0
  for (const byte of data) {
    a = (a + byte) % 65521
    b = (b + a) % 65521
  }
  return ((b << 16) | a) >>> 0
}

/** The one control frame in `bytes`, decoded. */
const control = (bytes: Buffer): Spdy.Control => {
  const frames = new Spdy.Decoder().push(bytes)
  assert.strictEqual(frames.length, 1)
  const frame = frames[0]!
  assert.strictEqual(frame._tag, "Control")
  return Spdy.decodeControl(frame as Spdy.ControlFrame)
}

/** A node:zlib inflater with the SPDY dictionary, fed blocks synchronously one after the other. */
const nodeInflater = () => {
  const inflate = Zlib.createInflate({ dictionary: SPDY_DICTIONARY })
  const out: Array<Buffer> = []
  inflate.on("data", (chunk: Buffer) => out.push(chunk))
  const read = (block: Buffer) =>
    Effect.callback<Buffer, Error>((resume) => {
      inflate.once("error", (error) => resume(Effect.fail(error)))
      inflate.write(block)
      inflate.flush(Zlib.constants.Z_SYNC_FLUSH, () => resume(Effect.succeed(Buffer.concat(out.splice(0)))))
    })
  return { read, close: () => inflate.close() }
}

describe("SPDY codec", () => {
  it("the dictionary is spdystream's (1423 bytes, adler32 e3c6a7c2)", () => {
    assert.strictEqual(SPDY_DICTIONARY.length, 1423)
    assert.strictEqual(adler32(SPDY_DICTIONARY), SPDY_DICTIONARY_ID)
    assert.strictEqual(SPDY_DICTIONARY_ID.toString(16), "e3c6a7c2")
    assert.strictEqual(SPDY_DICTIONARY.subarray(0, 11).toString("latin1"), "\x00\x00\x00\x07options")
  })

  it("decodes a captured kubectl session, whatever the chunking", () => {
    const whole = new Spdy.Decoder().push(CAPTURE)
    const kinds = whole.map((f) => f._tag === "Data" ? `D${f.streamId}/${f.flags}/${f.payload.length}` : `C${f.type}`)
    assert.deepStrictEqual(kinds, ["C1", "D1/1/0", "C1", "D3/0/10", "D3/1/0"])
    for (const size of [1, 2, 3, 7, 13]) {
      const decoder = new Spdy.Decoder()
      const frames: Array<Spdy.Frame> = []
      for (let i = 0; i < CAPTURE.length; i += size) frames.push(...decoder.push(CAPTURE.subarray(i, i + size)))
      assert.deepStrictEqual(
        frames.map((f) => [f._tag, f.payload.toString("hex")]),
        whole.map((f) => [f._tag, f.payload.toString("hex")])
      )
      assert.strictEqual(decoder.buffered, 0)
    }
  })

  it.effect("inflates kubectl's header blocks with one zlib stream per session", () =>
    Effect.gen(function*() {
      const frames = new Spdy.Decoder().push(CAPTURE)
      const inflater = new Spdy.HeaderInflater()
      const headers: Array<Record<string, string>> = []
      for (const frame of frames) {
        if (frame._tag !== "Control") continue
        assert.strictEqual(frame.version, 3)
        const syn = Spdy.decodeControl(frame)
        assert.strictEqual(syn._tag, "SynStream")
        if (syn._tag !== "SynStream") continue
        assert.deepStrictEqual([syn.flags, syn.associatedId, syn.priority, syn.slot], [0, 0, 0, 0])
        const raw = yield* Effect.promise(() => inflater.inflate(syn.headerBlock))
        headers.push({ id: String(syn.streamId), ...Object.fromEntries(Spdy.decodeHeaderBlock(raw)) })
      }
      inflater.close()
      assert.deepStrictEqual(headers, [
        { id: "1", streamtype: "error", port: "7", requestid: "0" },
        { id: "3", streamtype: "data", port: "7", requestid: "0" }
      ])
    }))

  it.effect("a client-side deflater round-trips through the inflater", () =>
    Effect.gen(function*() {
      const deflater = new Spdy.HeaderDeflater()
      const inflater = new Spdy.HeaderInflater()
      for (let i = 0; i < 5; i++) {
        const block = yield* Effect.promise(() =>
          deflater.deflate(
            Spdy.encodeHeaderBlock([["streamtype", i % 2 ? "data" : "error"], ["port", "80"], ["requestid", String(i)]])
          )
        )
        if (i === 0) {
          // zlib header with FDICT, then the dictionary's adler32
          assert.strictEqual(block[0], 0x78)
          assert.strictEqual(block.subarray(2, 6).toString("hex"), "e3c6a7c2")
        }
        assert.strictEqual(block.subarray(-4).toString("hex"), "0000ffff")
        const decoded = Spdy.decodeHeaderBlock(yield* Effect.promise(() => inflater.inflate(block)))
        assert.strictEqual(decoded.get("requestid"), String(i))
      }
      deflater.close()
      inflater.close()
    }))

  it("streamData hands DATA payloads over as views of the input, FIN on the last piece, the same bytes", () => {
    const payloads = [Buffer.alloc(0), Crypto.randomBytes(1), Crypto.randomBytes(40_000), Crypto.randomBytes(32 * 1024)]
    const wire = Buffer.concat([
      ...payloads.map((p, i) => Spdy.encodeDataFrame(3, p, i === payloads.length - 1)),
      Spdy.encodePing(1)
    ])
    for (const size of [1, 7, 4096, 65536, wire.length]) {
      const decoder = new Spdy.Decoder({ streamData: true })
      const frames: Array<Spdy.Frame> = []
      const inputs = new Set<ArrayBufferLike>()
      for (let i = 0; i < wire.length; i += size) {
        // a memory of its own per chunk (not Buffer's shared pool), so a view can be traced to it
        const chunk = Buffer.allocUnsafeSlow(Math.min(size, wire.length - i))
        wire.copy(chunk, 0, i, i + chunk.length)
        inputs.add(chunk.buffer)
        frames.push(...decoder.push(chunk))
      }
      const data = frames.filter((f): f is Spdy.DataFrame => f._tag === "Data")
      assert.strictEqual(
        Buffer.concat(data.map((d) => d.payload)).toString("hex"),
        Buffer.concat(payloads).toString("hex"),
        `chunks of ${size}`
      )
      assert.deepStrictEqual(
        data.filter((d) => (d.flags & Spdy.FLAG_FIN) !== 0).map((d) => d === data.at(-1)),
        [true],
        "FIN once, last"
      )
      assert.isTrue(data.every((d) => d.payload.length === 0 || inputs.has(d.payload.buffer)), "no copies")
      assert.strictEqual(frames.at(-1)!._tag, "Control", "the PING after them is whole")
      assert.strictEqual(decoder.buffered, 0)
    }
  })

  it("an empty header block, stored, is kubelet's constant SYN_REPLY block", () => {
    const compressor = new Spdy.StoredHeaderCompressor()
    const empty = Spdy.encodeHeaderBlock([])
    assert.strictEqual(
      Spdy.encodeSynReply(1, compressor.compress(empty)).toString("hex"),
      "800300020000001800000001" + "78bbe3c6a7c2" + "000400fbff" + "00000000" + "000000ffff"
    )
    assert.strictEqual(
      Spdy.encodeSynReply(3, compressor.compress(empty)).toString("hex"),
      "800300020000001200000003000400fbff00000000000000ffff"
    )
  })

  it.effect("node:zlib reads the stored compressor's blocks across one session", () =>
    Effect.gen(function*() {
      const compressor = new Spdy.StoredHeaderCompressor()
      const reader = nodeInflater()
      const blocks: Array<Array<[string, string]>> = [
        [],
        [["streamtype", "error"], ["port", "80"], ["requestid", "0"]],
        [["streamtype", "data"], ["port", "80"], ["requestid", "0"]],
        // larger than one stored block (65535 bytes): split, still one header block
        [["x-large", "v".repeat(150_000)], ["multi", "a\u0000b"]],
        []
      ]
      for (const [i, headers] of blocks.entries()) {
        const raw = Spdy.encodeHeaderBlock(headers)
        const block = compressor.compress(raw)
        assert.strictEqual(block.subarray(0, 2).toString("hex") === "78bb", i === 0, `zlib header only on block ${i}`)
        assert.strictEqual(block.subarray(-5).toString("hex"), "000000ffff")
        const inflated = yield* reader.read(block)
        assert.isTrue(inflated.equals(raw), `block ${i}`)
        assert.deepStrictEqual([...Spdy.decodeHeaderBlock(inflated)], headers)
      }
      reader.close()
      // deterministic: a second session writes the same bytes
      const again = new Spdy.StoredHeaderCompressor()
      const first = Spdy.encodeHeaderBlock(blocks[1]!)
      assert.isTrue(again.compress(first).equals(new Spdy.StoredHeaderCompressor().compress(first)))
    }))

  it.effect("the constant SYN_REPLY blocks inflate to an empty header block", () =>
    Effect.gen(function*() {
      const compressor = new Spdy.StoredHeaderCompressor()
      const inflater = new Spdy.HeaderInflater()
      for (const id of [1, 3, 5]) {
        const reply = control(Spdy.encodeSynReply(id, compressor.compress(Spdy.encodeHeaderBlock([]))))
        assert.strictEqual(reply._tag, "SynReply")
        if (reply._tag !== "SynReply") continue
        assert.strictEqual(reply.streamId, id)
        const raw = yield* Effect.promise(() => inflater.inflate(reply.headerBlock))
        assert.strictEqual(raw.toString("hex"), "00000000")
        assert.strictEqual(Spdy.decodeHeaderBlock(raw).size, 0)
      }
      inflater.close()
    }))

  it("encodes DATA, PING, GOAWAY and RST_STREAM frames", () => {
    assert.strictEqual(Spdy.encodeDataFrame(3, Buffer.from("hi")).toString("hex"), "00000003000000026869")
    assert.strictEqual(Spdy.encodeDataFrame(3, Buffer.alloc(0), true).toString("hex"), "0000000301000000")
    assert.strictEqual(Spdy.encodeDataHeader(3, 2, false).toString("hex"), "0000000300000002")
    assert.strictEqual(Spdy.encodePing(1).toString("hex"), "800300060000000400000001")
    assert.strictEqual(Spdy.encodeGoAway(0).toString("hex"), "80030007000000080000000000000000")
    assert.strictEqual(
      Spdy.encodeRstStream(5, Spdy.RstStatus.Cancel).toString("hex"),
      "80030003000000080000000500000005"
    )
    const frames = Spdy.encodeDataFrames(1, Buffer.alloc(70_000), { fin: true })
    assert.deepStrictEqual(frames.map((f) => f.length - 8), [32768, 32768, 70_000 - 65536])
    const decoded = new Spdy.Decoder().push(Buffer.concat(frames))
    assert.isTrue(
      decoded.every((f) => f._tag === "Data" && f.streamId === 1 && f.payload.length <= Spdy.MAX_DATA_PAYLOAD)
    )
    assert.deepStrictEqual(decoded.map((f) => f.flags), [0, 0, Spdy.FLAG_FIN])
    assert.deepStrictEqual(Spdy.encodeDataFrames(1, Buffer.alloc(0), { fin: true }).map((f) => f.toString("hex")), [
      "0000000101000000"
    ])
  })

  it("every control frame type round-trips through the decoder", () => {
    const block = Buffer.from("78bbe3c6a7c2", "hex")
    assert.deepStrictEqual(
      control(Spdy.encodeSynStream(7, block, { priority: 3, flags: Spdy.FLAG_FIN, associatedId: 2 })),
      {
        _tag: "SynStream",
        flags: Spdy.FLAG_FIN,
        streamId: 7,
        associatedId: 2,
        priority: 3,
        slot: 0,
        headerBlock: block
      }
    )
    assert.deepStrictEqual(control(Spdy.encodeSynReply(7, block, Spdy.FLAG_FIN)), {
      _tag: "SynReply",
      flags: Spdy.FLAG_FIN,
      streamId: 7,
      headerBlock: block
    })
    assert.deepStrictEqual(control(Spdy.encodeRstStream(9, Spdy.RstStatus.RefusedStream)), {
      _tag: "RstStream",
      streamId: 9,
      status: 3
    })
    const entries = [{ flags: 1, id: 7, value: 65536 }, { flags: 0, id: 4, value: 100 }]
    assert.deepStrictEqual(control(Spdy.encodeSettings(entries)), { _tag: "Settings", flags: 0, entries })
    assert.deepStrictEqual(control(Spdy.encodePing(0xfffffffd)), { _tag: "Ping", id: 0xfffffffd })
    assert.deepStrictEqual(control(Spdy.encodeGoAway(11, Spdy.GoAwayStatus.InternalError)), {
      _tag: "GoAway",
      lastGoodStreamId: 11,
      status: 2
    })
    assert.deepStrictEqual(control(Spdy.encodeHeaders(5, block)), {
      _tag: "Headers",
      flags: 0,
      streamId: 5,
      headerBlock: block
    })
    assert.deepStrictEqual(control(Spdy.encodeWindowUpdate(0, 1 << 20)), {
      _tag: "WindowUpdate",
      streamId: 0,
      delta: 1 << 20
    })
  })

  it("rejects what spdystream's reader rejects", () => {
    const ping = new Spdy.Decoder().push(Spdy.encodePing(1))[0] as Spdy.ControlFrame
    assert.throws(() => Spdy.decodeControl({ ...ping, version: 2 }), Spdy.SpdyError, /version 2/)
    assert.throws(() => Spdy.decodeControl({ ...ping, type: 5 }), Spdy.SpdyError, /unknown control frame type 5/)
    assert.throws(() => Spdy.decodeControl({ ...ping, payload: ping.payload.subarray(0, 3) }), Spdy.SpdyError, /PING/)
    assert.throws(
      () => Spdy.decodeControl({ ...ping, type: Spdy.FrameType.Settings, payload: Buffer.from("00000002", "hex") }),
      Spdy.SpdyError
    )
    // fixed-size frames must be exactly their size: spdystream ignores the length and would fall out of step
    const longer = (type: number, size: number) => ({ ...ping, type, payload: Buffer.alloc(size, 1) })
    assert.throws(() => Spdy.decodeControl(longer(Spdy.FrameType.Ping, 8)), Spdy.SpdyError, /PING payload must be 4/)
    assert.throws(() => Spdy.decodeControl(longer(Spdy.FrameType.RstStream, 12)), Spdy.SpdyError, /RST_STREAM/)
    assert.throws(() => Spdy.decodeControl(longer(Spdy.FrameType.GoAway, 12)), Spdy.SpdyError, /GOAWAY/)
    assert.throws(() => Spdy.decodeControl(longer(Spdy.FrameType.WindowUpdate, 9)), Spdy.SpdyError, /WINDOW_UPDATE/)
    const oneSetting = Buffer.concat([Buffer.from("00000001", "hex"), Buffer.alloc(8), Buffer.alloc(1)])
    assert.throws(
      () => Spdy.decodeControl({ ...ping, type: Spdy.FrameType.Settings, payload: oneSetting }),
      Spdy.SpdyError,
      /SETTINGS payload must be 12/
    )
  })

  it("parses and builds header blocks", () => {
    const block = Spdy.encodeHeaderBlock([["StreamType", "data"], ["port", "8080"]])
    assert.strictEqual(block.subarray(0, 4).toString("hex"), "00000002")
    assert.deepStrictEqual([...Spdy.decodeHeaderBlock(block)], [["streamtype", "data"], ["port", "8080"]])
    assert.throws(() => Spdy.decodeHeaderBlock(block.subarray(0, 10)), Spdy.SpdyError, /truncated/)
    assert.throws(() => Spdy.decodeHeaderBlock(Buffer.alloc(2)), Spdy.SpdyError, /too short/)
  })
})

describe("a client session, encoded", () => {
  it.effect("kubectl's stream pair, written by the codec, reads back as kubectl's", () =>
    Effect.gen(function*() {
      // what a client writes for one forwarded connection: error stream, its FIN, data stream, data, FIN,
      // then a ping, a reset and GOAWAY on Ctrl-C
      const compressor = new Spdy.StoredHeaderCompressor()
      const headers = (type: string) =>
        compressor.compress(Spdy.encodeHeaderBlock([["streamtype", type], ["port", "7"], ["requestid", "0"]]))
      const wire = Buffer.concat([
        Spdy.encodeSynStream(1, headers("error")),
        Spdy.encodeDataFrame(1, Buffer.alloc(0), true),
        Spdy.encodeSynStream(3, headers("data")),
        Spdy.encodeDataFrame(3, Buffer.from("hello echo")),
        Spdy.encodeDataFrame(3, Buffer.alloc(0), true),
        Spdy.encodePing(1),
        Spdy.encodeRstStream(3, Spdy.RstStatus.Cancel),
        Spdy.encodeGoAway(0)
      ])
      // the frame sequence is the captured kubectl one, plus the session end
      const inflater = new Spdy.HeaderInflater()
      const seen: Array<string> = []
      const decoder = new Spdy.Decoder()
      for (let i = 0; i < wire.length; i += 5) {
        for (const frame of decoder.push(wire.subarray(i, i + 5))) {
          if (frame._tag === "Data") {
            seen.push(
              `DATA ${frame.streamId}${frame.flags & Spdy.FLAG_FIN ? " FIN" : ""} ${frame.payload.toString()}`.trim()
            )
            continue
          }
          const c = Spdy.decodeControl(frame)
          if (c._tag === "SynStream") {
            const h = Spdy.decodeHeaderBlock(yield* Effect.promise(() => inflater.inflate(c.headerBlock)))
            seen.push(`SYN_STREAM ${c.streamId} ${h.get("streamtype")} ${h.get("port")} ${h.get("requestid")}`)
          } else seen.push(c._tag)
        }
      }
      inflater.close()
      assert.deepStrictEqual(seen, [
        "SYN_STREAM 1 error 7 0",
        "DATA 1 FIN",
        "SYN_STREAM 3 data 7 0",
        "DATA 3 hello echo",
        "DATA 3 FIN",
        "Ping",
        "RstStream",
        "GoAway"
      ])
      // kubectl's own DATA frames are byte for byte the codec's
      const captured = new Spdy.Decoder().push(CAPTURE).filter((f) => f._tag === "Data")
      const ours = new Spdy.Decoder().push(wire).filter((f) => f._tag === "Data")
      assert.deepStrictEqual(
        ours.map((f) => [f.streamId, f.flags, f.payload.toString("hex")]),
        captured.map((f) => [f.streamId, f.flags, f.payload.toString("hex")])
      )
    }))
})
