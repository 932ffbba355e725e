/**
 * The SPDY/3.1 codec, checked against bytes captured from a real kubectl 1.33 session.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Spdy from "../src/internal/spdy.ts"
import { SPDY_DICTIONARY } from "../src/internal/spdyDictionary.ts"

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

describe("SPDY codec", () => {
  it("the dictionary is spdystream's (1423 bytes, adler32 e3c6a7c2)", () => {
    assert.strictEqual(SPDY_DICTIONARY.length, 1423)
    assert.strictEqual(adler32(SPDY_DICTIONARY).toString(16), "e3c6a7c2")
    assert.strictEqual(SPDY_DICTIONARY.subarray(0, 11).toString("latin1"), "\x00\x00\x00\x07options")
  })

  it("decodes a captured kubectl session, whatever the chunking", () => {
    const whole = new Spdy.FrameDecoder().push(CAPTURE)
    const kinds = whole.map((f) => f._tag === "Data" ? `D${f.streamId}/${f.flags}/${f.payload.length}` : `C${f.type}`)
    assert.deepStrictEqual(kinds, ["C1", "D1/1/0", "C1", "D3/0/10", "D3/1/0"])
    for (const size of [1, 2, 3, 7, 13]) {
      const decoder = new Spdy.FrameDecoder()
      const frames: Array<Spdy.Frame> = []
      for (let i = 0; i < CAPTURE.length; i += size) frames.push(...decoder.push(CAPTURE.subarray(i, i + size)))
      assert.deepStrictEqual(frames.map((f) => [f._tag, f.payload.toString("hex")]), whole.map((f) => [f._tag, f.payload.toString("hex")]))
      assert.strictEqual(decoder.buffered, 0)
    }
  })

  it.effect("inflates kubectl's header blocks with one zlib stream per session", () =>
    Effect.gen(function*() {
      const frames = new Spdy.FrameDecoder().push(CAPTURE)
      const inflater = new Spdy.HeaderInflater()
      const headers: Array<Record<string, string>> = []
      for (const frame of frames) {
        if (frame._tag !== "Control" || frame.type !== Spdy.FrameType.SynStream) continue
        assert.strictEqual(frame.version, 3)
        const syn = Spdy.decodeSynStream(frame.payload)
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
          deflater.deflate(Spdy.encodeHeaderBlock([["streamtype", i % 2 ? "data" : "error"], ["port", "80"], ["requestid", String(i)]]))
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

  it("SYN_REPLY uses the constant empty header blocks", () => {
    assert.strictEqual(
      Spdy.encodeSynReply(1, true).toString("hex"),
      "800300020000001800000001" + "78bbe3c6a7c2" + "000400fbff" + "00000000" + "000000ffff"
    )
    assert.strictEqual(
      Spdy.encodeSynReply(3, false).toString("hex"),
      "800300020000001200000003000400fbff00000000000000ffff"
    )
  })

  it.effect("the constant SYN_REPLY blocks inflate to an empty header block", () =>
    Effect.gen(function*() {
      const inflater = new Spdy.HeaderInflater()
      for (const [id, first] of [[1, true], [3, false], [5, false]] as const) {
        const [frame] = new Spdy.FrameDecoder().push(Spdy.encodeSynReply(id, first))
        assert.strictEqual(frame?._tag, "Control")
        const raw = yield* Effect.promise(() => inflater.inflate(frame!.payload.subarray(4)))
        assert.strictEqual(raw.toString("hex"), "00000000")
        assert.strictEqual(Spdy.decodeHeaderBlock(raw).size, 0)
      }
      inflater.close()
    }))

  it("encodes DATA, PING, GOAWAY and RST_STREAM frames", () => {
    assert.strictEqual(Spdy.encodeDataFrame(3, Buffer.from("hi")).toString("hex"), "00000003000000026869")
    assert.strictEqual(Spdy.encodeDataFrame(3, Buffer.alloc(0), true).toString("hex"), "0000000301000000")
    assert.strictEqual(Spdy.encodePing(1).toString("hex"), "800300060000000400000001")
    assert.strictEqual(Spdy.encodeGoAway(0).toString("hex"), "80030007000000080000000000000000")
    assert.strictEqual(Spdy.encodeRstStream(5, Spdy.RstStatus.Cancel).toString("hex"), "80030003000000080000000500000005")
    const frames = Spdy.encodeDataFrames(1, Buffer.alloc(70_000))
    assert.deepStrictEqual(frames.map((f) => f.length - 8), [32768, 32768, 70_000 - 65536])
    const decoded = new Spdy.FrameDecoder().push(Buffer.concat(frames))
    assert.isTrue(decoded.every((f) => f._tag === "Data" && f.streamId === 1 && f.payload.length <= Spdy.MAX_DATA_PAYLOAD))
  })

  it("parses and builds header blocks", () => {
    const block = Spdy.encodeHeaderBlock([["StreamType", "data"], ["port", "8080"]])
    assert.strictEqual(block.subarray(0, 4).toString("hex"), "00000002")
    assert.deepStrictEqual([...Spdy.decodeHeaderBlock(block)], [["streamtype", "data"], ["port", "8080"]])
    assert.throws(() => Spdy.decodeHeaderBlock(block.subarray(0, 10)), /truncated/)
  })
})
