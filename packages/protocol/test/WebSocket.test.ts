/**
 * RFC 6455 framing, both sides: the handshake keys, masked client frames and unmasked server
 * frames of every length class in any chunking, word-wise unmasking against a byte-by-byte
 * reference, and the frames the decoder must refuse.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import { WebSocket as Ws } from "../src/index.ts"
import { seeded, sha256 } from "./helpers.ts"

describe("WebSocket handshake", () => {
  it("computes Sec-WebSocket-Accept as RFC 6455 does", () => {
    assert.strictEqual(Ws.acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
  })

  it("a client key is 16 random bytes; the 101 names the accept key and the subprotocol", () => {
    const key = Ws.generateKey()
    assert.strictEqual(Buffer.from(key, "base64").length, 16)
    assert.notStrictEqual(key, Ws.generateKey())
    const response = Ws.handshakeResponse(key, "v4.channel.k8s.io")
    assert.match(response, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
    assert.include(response, `\r\nSec-WebSocket-Accept: ${Ws.acceptKey(key)}\r\n`)
    assert.include(response, "\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n")
    assert.isTrue(response.endsWith("\r\n\r\n"))
    assert.notInclude(Ws.handshakeResponse(key, undefined), "Sec-WebSocket-Protocol")
  })
})

describe("WebSocket close frames", () => {
  it("a reason longer than a control frame holds is cut on a character boundary", () => {
    const reason = "é".repeat(70) // 140 bytes of two-byte characters
    const frame = new Ws.Decoder({ from: "server" }).push(Ws.encodeClose(1000, reason))[0]!
    const text = frame.payload.subarray(2)
    assert.strictEqual(text.length, 122, "61 whole characters; the 62nd would not fit in 123 bytes")
    assert.strictEqual(new TextDecoder("utf-8", { fatal: true }).decode(text), "é".repeat(61))
  })
})

describe("WebSocket framing", () => {
  it("round-trips masked client frames of every length class, in any chunking", () => {
    const payloads = [0, 1, 125, 126, 65535, 65536, 100_000].map((n) => Crypto.randomBytes(n))
    const wire = Buffer.concat(payloads.map((p) => Ws.encodeFrame(Ws.Opcode.Binary, p, { mask: true })))
    for (const size of [1, 5, 4096, wire.length]) {
      const decoder = new Ws.Decoder({ from: "client" })
      const frames: Array<Ws.Frame> = []
      for (let i = 0; i < wire.length; i += size) frames.push(...decoder.push(wire.subarray(i, i + size)))
      assert.strictEqual(frames.length, payloads.length)
      frames.forEach((f, i) => {
        assert.isTrue(f.fin && f.masked)
        assert.strictEqual(f.opcode, Ws.Opcode.Binary)
        assert.strictEqual(sha256(f.payload), sha256(payloads[i]!))
      })
    }
  })

  it("encodes unmasked server frames with the right headers, and a client reads them", () => {
    assert.strictEqual(Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from([0, 80, 0])).toString("hex"), "8203005000")
    assert.strictEqual(Ws.encodeFrame(Ws.Opcode.Binary, Buffer.alloc(200)).subarray(0, 4).toString("hex"), "827e00c8")
    assert.strictEqual(
      Ws.encodeFrame(Ws.Opcode.Binary, Buffer.alloc(70000)).subarray(0, 10).toString("hex"),
      "827f0000000000011170"
    )
    assert.strictEqual(Ws.encodeClose(1000).toString("hex"), "880203e8")
    assert.strictEqual(Ws.closeCodeOf(Buffer.from("03e8", "hex")), 1000)
    assert.strictEqual(Ws.closeCodeOf(Buffer.alloc(0)), 1005)
    const frames = new Ws.Decoder({ from: "server" }).push(
      Buffer.concat([Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from("data")), Ws.encodeClose(1001, "going away")])
    )
    assert.deepStrictEqual(frames.map((f) => [f.opcode, f.masked, f.fin]), [[2, false, true], [8, false, true]])
    assert.strictEqual(frames[0]!.payload.toString(), "data")
    assert.strictEqual(Ws.closeCodeOf(frames[1]!.payload), 1001)
    assert.strictEqual(Ws.closeReasonOf(frames[1]!.payload), "going away")
  })

  it("masks client frames with the given key, exactly as RFC 6455 §5.7 shows", () => {
    // RFC 6455 §5.7: a single-frame masked text message "Hello"
    const key = Buffer.from("37fa213d", "hex")
    assert.strictEqual(
      Ws.encodeFrame(Ws.Opcode.Text, Buffer.from("Hello"), { mask: key }).toString("hex"),
      "818537fa213d7f9f4d5158"
    )
    assert.strictEqual(Ws.encodeClose(1000, "", { mask: key }).toString("hex"), "888237fa213d3412")
    const random = [
      Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from("x"), { mask: true }),
      Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from("x"), { mask: true })
    ]
    assert.isTrue(random.every((f) => (f[1]! & 0x80) !== 0 && f.length === 2 + 4 + 1))
    assert.throws(
      () => Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from("x"), { mask: Buffer.alloc(3) }),
      Ws.WebSocketError
    )
  })

  it("unmasks any length, offset, phase and fragmentation like the byte-by-byte reference", () => {
    const rng = seeded(0x5eed)
    const naive = (data: Uint8Array, mask: Uint8Array, phase: number): Buffer => {
      const out = Buffer.alloc(data.length)
      for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ mask[(phase + i) & 3]!
      return out
    }
    const lengths = [0, 1, 2, 3, 4, 5, 7, 8, 31, 32, 33, 35, 36, 37, 63, 64, 65, 125, 126, 4095, 4096, 4097, 70_001]
    for (let k = 0; k < 300; k++) lengths.push(Math.floor(rng() * (rng() < 0.7 ? 300 : 40_000)))
    for (const length of lengths) {
      const offset = Math.floor(rng() * 8)
      const phase = Math.floor(rng() * 4)
      const mask = Crypto.randomBytes(4)
      // the payload at an arbitrary offset inside a larger ArrayBuffer, with guard bytes around it
      const backing = Crypto.randomBytes(offset + length + 8)
      const original = Buffer.from(backing)
      const data = backing.subarray(offset, offset + length)
      const expected = naive(data, mask, phase)
      // whole
      const whole = Buffer.from(backing)
      assert.strictEqual(Ws.unmask(whole.subarray(offset, offset + length), mask, phase), (phase + length) & 3)
      assert.isTrue(whole.subarray(offset, offset + length).equals(expected), `length ${length} offset ${offset}`)
      assert.isTrue(whole.subarray(0, offset).equals(original.subarray(0, offset)), "head guard untouched")
      assert.isTrue(whole.subarray(offset + length).equals(original.subarray(offset + length)), "tail guard untouched")
      // in random fragments, carrying the phase from one to the next
      const pieces = Buffer.from(backing)
      let p = phase
      for (let at = offset; at < offset + length;) {
        const n = Math.min(offset + length - at, 1 + Math.floor(rng() * (rng() < 0.5 ? 8 : 5000)))
        p = Ws.unmask(pieces.subarray(at, at + n), mask, p)
        at += n
      }
      assert.strictEqual(p, (phase + length) & 3)
      assert.isTrue(pieces.subarray(offset, offset + length).equals(expected), `fragmented, length ${length}`)
      assert.isTrue(pieces.subarray(offset + length).equals(original.subarray(offset + length)))
    }
  })

  it("decodes random masked frames from randomly split, misaligned input (copying, or in place)", () => {
    const rng = seeded(0xf00d)
    for (let round = 0; round < 40; round++) {
      const inPlace = round % 2 === 1
      const payloads: Array<Buffer> = []
      for (let k = 0; k < 30; k++) {
        const n = [0, 1, 3, 125, 126, 127, 65535, 65536][Math.floor(rng() * 8)]!
        payloads.push(Crypto.randomBytes(rng() < 0.5 ? n : Math.floor(rng() * 20_000)))
      }
      // a fragmented message too: Binary (fin=0), Continuation, Continuation (fin=1)
      const frames = payloads.map((p, i) =>
        Ws.encodeFrame(
          i % 10 === 1 ? Ws.Opcode.Binary : i % 10 === 2 || i % 10 === 3 ? Ws.Opcode.Continuation : Ws.Opcode.Binary,
          p,
          {
            mask: true,
            fin: i % 10 !== 1 && i % 10 !== 2
          }
        )
      )
      const wire = Buffer.concat(frames)
      const shift = Math.floor(rng() * 4)
      const backing = Buffer.alloc(wire.length + shift)
      wire.copy(backing, shift)
      const input = backing.subarray(shift)
      const decoder = new Ws.Decoder({ inPlace })
      const decoded: Array<Ws.Frame> = []
      for (let at = 0; at < input.length;) {
        const n = 1 + Math.floor(rng() * (rng() < 0.3 ? 10 : 9000))
        decoded.push(...decoder.push(input.subarray(at, at + n)))
        at += n
      }
      if (!inPlace) assert.isTrue(input.equals(wire), "the decoder must not unmask its input in place")
      assert.strictEqual(decoded.length, payloads.length)
      decoded.forEach((f, i) => {
        assert.isTrue(f.masked)
        assert.strictEqual(f.fin, i % 10 !== 1 && i % 10 !== 2)
        assert.isTrue(f.payload.equals(payloads[i]!), `frame ${i} (${payloads[i]!.length} bytes)`)
      })
    }
  })

  it("masked parts (a head with the masked prefix, the payload masked in place) are the bytes of one masked frame", () => {
    const rng = seeded(0x3a5c)
    for (
      const [prefixLength, payloadLength] of [[8, 0], [8, 1], [8, 117], [8, 118], [8, 32 * 1024], [3, 70_000], [0, 5]]
    ) {
      const prefix = Crypto.randomBytes(prefixLength)
      const payload = Crypto.randomBytes(payloadLength)
      const key = Buffer.from([rng() & 0xff, rng() & 0xff, rng() & 0xff, rng() & 0xff])
      const whole = Ws.encodeFrame(Ws.Opcode.Binary, Buffer.concat([prefix, payload]), { mask: key })
      const [head, masked] = Ws.encodeMaskedParts(Ws.Opcode.Binary, prefix, Buffer.from(payload), { mask: key })
      assert.strictEqual(
        Buffer.concat([head, masked]).toString("hex"),
        whole.toString("hex"),
        `${prefixLength}+${payloadLength}`
      )
    }
    const keys = new Set(Array.from({ length: 2000 }, () => Ws.maskingKey().toString("hex")))
    assert.isAbove(keys.size, 1990, "masking keys do not repeat (beyond chance)")
  })

  it("a frame head plus its payload is the whole frame", () => {
    for (const n of [0, 1, 100, 124, 125, 126, 1000, 65534, 65535, 65536, 70_000]) {
      const prefix = Crypto.randomBytes(8)
      const payload = Crypto.randomBytes(n)
      const split = Buffer.concat([Ws.encodeFrameHead(Ws.Opcode.Binary, prefix, n), payload])
      assert.isTrue(split.equals(Ws.encodeFrame(Ws.Opcode.Binary, Buffer.concat([prefix, payload]))), `${n} bytes`)
    }
  })

  it("rejects invalid frames", () => {
    // a fragmented control frame
    assert.throws(() => new Ws.Decoder().push(Buffer.from("0900", "hex")), Ws.WebSocketError)
    // reserved bits
    assert.throws(() => new Ws.Decoder().push(Buffer.from("c200", "hex")), Ws.WebSocketError)
    // a control frame over 125 bytes
    assert.throws(() => new Ws.Decoder().push(Buffer.from("897e0080", "hex")), Ws.WebSocketError)
    // a length over MAX_PAYLOAD
    assert.throws(
      () => new Ws.Decoder().push(Buffer.from("827f0000000001000001", "hex")),
      Ws.WebSocketError,
      /too large/
    )
    // the wrong mask bit for the side (RFC 6455 §5.1)
    const unmasked = Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from("x"))
    const masked = Ws.encodeFrame(Ws.Opcode.Binary, Buffer.from("x"), { mask: true })
    assert.throws(() => new Ws.Decoder({ from: "client" }).push(unmasked), Ws.WebSocketError, /unmasked/)
    assert.throws(() => new Ws.Decoder({ from: "server" }).push(masked), Ws.WebSocketError, /masked/)
    assert.strictEqual(new Ws.Decoder().push(Buffer.concat([unmasked, masked])).length, 2)
  })
})
