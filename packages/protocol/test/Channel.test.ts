/**
 * The v4 channel framing: the announcements kubelet sends, the channel of every port, and the
 * messages both sides write.
 */
import { assert, describe, it } from "@effect/vitest"
import { Channel, PortForwardProtocol } from "../src/index.ts"

describe("v4.channel.k8s.io framing", () => {
  it("announces each port on its data channel, then its error channel, little-endian", () => {
    // kubelet's bytes for ?ports=80,8080,7 (port 8080 = 0x1f90)
    assert.deepStrictEqual(Channel.portAnnouncements([80, 8080, 7]).map((m) => m.toString("hex")), [
      "005000",
      "015000",
      "02901f",
      "03901f",
      "040700",
      "050700"
    ])
    for (const message of Channel.portAnnouncements([65535, 1])) {
      const { channel, port } = Channel.decodePortAnnouncement(message)
      assert.strictEqual(port, channel < 2 ? 65535 : 1)
    }
    assert.throws(() => Channel.decodePortAnnouncement(Buffer.from("00500000", "hex")), Channel.ChannelError, /size 4/)
  })

  it("port i uses data channel 2i and error channel 2i+1; anything else is not a port's", () => {
    assert.deepStrictEqual([Channel.dataChannel(3), Channel.errorChannel(3)], [6, 7])
    assert.deepStrictEqual(Channel.classify(4, 3), { _tag: "Data", index: 2 })
    assert.deepStrictEqual(Channel.classify(5, 3), { _tag: "Error", index: 2 })
    assert.deepStrictEqual(Channel.classify(6, 3), { _tag: "Unknown" })
    assert.deepStrictEqual(Channel.classify(255, 3), { _tag: "CloseSignal" })
    assert.deepStrictEqual(Channel.classify(253, Channel.MAX_PORTS), { _tag: "Error", index: 126 })
  })

  it("a message is the channel byte then the payload, both ways", () => {
    const message = Channel.encodeMessage(2, Buffer.from("GET / HTTP/1.0\r\n\r\n"))
    assert.strictEqual(message[0], 2)
    assert.isTrue(Buffer.concat([Channel.encodePrefix(2), Buffer.from("GET / HTTP/1.0\r\n\r\n")]).equals(message))
    const { channel, payload } = Channel.decodeMessage(message)
    assert.strictEqual(channel, 2)
    assert.strictEqual(payload.toString(), "GET / HTTP/1.0\r\n\r\n")
    assert.strictEqual(Channel.decodeMessage(Buffer.from([1])).payload.length, 0)
    assert.throws(() => Channel.decodeMessage(Buffer.alloc(0)), Channel.ChannelError)
    assert.strictEqual(Channel.encodeCloseSignal(4).toString("hex"), "ff04")
  })
})

describe("port-forward names", () => {
  it("the subresource path round-trips, names percent-encoded", () => {
    assert.strictEqual(PortForwardProtocol.path("default", "web"), "/api/v1/namespaces/default/pods/web/portforward")
    assert.deepStrictEqual(PortForwardProtocol.parsePath(PortForwardProtocol.path("team a", "web/0")), {
      namespace: "team a",
      pod: "web/0"
    })
    assert.deepStrictEqual(PortForwardProtocol.parsePath("/api/v1/namespaces/ns/pods/p/portforward/"), {
      namespace: "ns",
      pod: "p"
    })
    assert.isUndefined(PortForwardProtocol.parsePath("/api/v1/namespaces/ns/pods/p"))
    assert.isUndefined(PortForwardProtocol.parsePath("/api/v1/namespaces/%zz/pods/p/portforward"))
  })
})
