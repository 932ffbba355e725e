/**
 * Upgrade negotiation as the pure function it is: request and cluster state in, decision out. The
 * same rules are exercised end to end by the kubectl, client-node and raw-client suites; here every
 * branch is checked directly, in the order kubelet and the API server apply them.
 */
import { assert, describe, it } from "@effect/vitest"
import { WebSocket } from "@kube-forward/protocol"
import type { PodPhase } from "../src/FakeCluster.ts"
import { type Decision, negotiate, parsePorts, statusResponse, type UpgradeState } from "../src/internal/upgrade.ts"

const PATH = "/api/v1/namespaces/default/pods/web/portforward"
const KEY = "dGhlIHNhbXBsZSBub25jZQ=="

const state = (
  extra: Partial<UpgradeState> = {},
  pods: Record<string, PodPhase> = { "default/web": "Running" }
): UpgradeState => ({
  mode: "tunnel",
  fault: undefined,
  podPhase: (namespace, name) => pods[`${namespace}/${name}`],
  ...extra
})

const spdy = (url = PATH) => ({
  method: "POST",
  url,
  headers: { connection: "Upgrade", upgrade: "SPDY/3.1", "x-stream-protocol-version": "portforward.k8s.io" }
})

const ws = (protocols: string | undefined, url = PATH, method = "GET") => ({
  method,
  url,
  headers: {
    connection: "Upgrade",
    upgrade: "websocket",
    "sec-websocket-key": KEY,
    "sec-websocket-version": "13",
    ...(protocols === undefined ? {} : { "sec-websocket-protocol": protocols })
  }
})

/** A rejection's code and Status message (or plain text body). */
const rejected = (d: Decision): [number, unknown] => {
  assert.strictEqual(d._tag, "Reject")
  if (d._tag !== "Reject") return [0, undefined]
  return [d.code, typeof d.body === "string" ? d.body : d.body["message"]]
}

describe("upgrade negotiation", () => {
  it("plain SPDY gets exactly kubelet's 101, nothing else in it", () => {
    const d = negotiate(spdy(), state())
    assert.deepStrictEqual(d, {
      _tag: "Accept",
      transport: "spdy",
      namespace: "default",
      name: "web",
      ports: [],
      response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
        "X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n"
    })
  })

  it("the tunnel answers with its subprotocol, unless the server is spdy-only", () => {
    const d = negotiate(ws("SPDY/3.1+portforward.k8s.io"), state())
    assert.strictEqual(d._tag === "Accept" && d.transport, "tunnel")
    assert.strictEqual(
      d._tag === "Accept" && d.response,
      WebSocket.handshakeResponse(KEY, "SPDY/3.1+portforward.k8s.io")
    )
    // a server without the feature: kubelet's WebSocket handler wants ?port=, in plain text
    const old = negotiate(ws("SPDY/3.1+portforward.k8s.io"), state({ mode: "spdy-only" }))
    assert.deepStrictEqual(old, {
      _tag: "Reject",
      code: 400,
      body: "query parameter \"port\" is required",
      headers: { "Content-Type": "text/plain; charset=utf-8" }
    })
    assert.strictEqual(
      old._tag === "Reject" && statusResponse(old.code, old.body, old.headers),
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 34\r\n" +
        "Connection: close\r\n\r\nquery parameter \"port\" is required"
    )
    // spdy-only still takes plain SPDY and the channel protocol
    assert.strictEqual(negotiate(spdy(), state({ mode: "spdy-only" }))._tag, "Accept")
    assert.strictEqual(
      negotiate(ws("v4.channel.k8s.io", `${PATH}?ports=80`), state({ mode: "spdy-only" }))._tag,
      "Accept"
    )
  })

  it("the channel protocol picks v4 (never v5), or none when none is offered, and parses ports as kubelet", () => {
    const d = negotiate(
      ws("v5.channel.k8s.io, v4.channel.k8s.io, channel.k8s.io", `${PATH}?ports=80,8080&ports=7`),
      state()
    )
    assert.strictEqual(d._tag === "Accept" && d.transport, "websocket")
    assert.deepStrictEqual(d._tag === "Accept" && d.ports, [80, 8080, 7])
    assert.strictEqual(d._tag === "Accept" && d.response, WebSocket.handshakeResponse(KEY, "v4.channel.k8s.io"))
    const bare = negotiate(ws(undefined, `${PATH}?ports=80`), state())
    assert.strictEqual(bare._tag === "Accept" && bare.response, WebSocket.handshakeResponse(KEY, undefined))
    assert.deepStrictEqual(rejected(negotiate(ws("v5.channel.k8s.io"), state())), [
      400,
      "unable to upgrade connection: none of the requested subprotocols are supported: v5.channel.k8s.io"
    ])
    assert.deepStrictEqual(rejected(negotiate(ws("v4.channel.k8s.io"), state())), [
      400,
      "query parameter \"port\" is required"
    ])
    assert.deepStrictEqual(parsePorts(["80", "0"]), "unable to parse \"0\" as a port: invalid port")
    assert.deepStrictEqual(parsePorts(["65536"]), "unable to parse \"65536\" as a port: invalid port")
    assert.deepStrictEqual(parsePorts(["1,65535", "80"]), [1, 65535, 80])
    // the API server converts each part as it is: no trimming, no empty part
    assert.deepStrictEqual(parsePorts(["1,,65535"]), "unable to parse \"\" as a port: invalid port")
    assert.deepStrictEqual(parsePorts(["80,"]), "unable to parse \"\" as a port: invalid port")
    assert.deepStrictEqual(parsePorts([" 80"]), "unable to parse \" 80\" as a port: invalid port")
  })

  it("the channel protocol's WebSocket version must be 13, as x/net/websocket checks it", () => {
    const v8 = ws("v4.channel.k8s.io", `${PATH}?ports=80`)
    const d = negotiate({ ...v8, headers: { ...v8.headers, "sec-websocket-version": "8" } }, state())
    assert.deepStrictEqual(rejected(d), [400, "bad protocol version"])
    assert.deepStrictEqual(d._tag === "Reject" ? d.headers : undefined, { "Sec-WebSocket-Version": "13" })
  })

  it("a WebSocket upgrade must be a GET with a key", () => {
    assert.deepStrictEqual(rejected(negotiate(ws("v4.channel.k8s.io", `${PATH}?ports=80`, "POST"), state()))[0], 405)
    const noKey = ws("v4.channel.k8s.io", `${PATH}?ports=80`)
    assert.deepStrictEqual(
      rejected(negotiate({ ...noKey, headers: { ...noKey.headers, "sec-websocket-key": "" } }, state())),
      [
        400,
        "missing Sec-WebSocket-Key"
      ]
    )
  })

  it("the pod must exist and be Running; other paths and upgrades are refused", () => {
    assert.deepStrictEqual(rejected(negotiate(spdy(), state({}, {}))), [404, "pods \"web\" not found"])
    assert.deepStrictEqual(rejected(negotiate(spdy(), state({}, { "default/web": "Pending" }))), [
      400,
      "unable to upgrade connection: pod web is not running (phase Pending)"
    ])
    assert.strictEqual(rejected(negotiate(spdy("/api/v1/namespaces/default/pods/web/exec"), state()))[0], 404)
    assert.strictEqual(rejected(negotiate(spdy("/api/v1/namespaces/%zz/pods/web/portforward"), state()))[0], 404)
  })

  it("SPDY: kubelet's stream protocol handshake, then the upgrade headers", () => {
    const without = { ...spdy(), headers: { connection: "Upgrade", upgrade: "SPDY/3.1" } }
    // Handshake's error is only logged by kubelet; Go then answers an empty 200
    assert.deepStrictEqual(negotiate(without, state()), { _tag: "Reject", code: 200, body: "" })
    const other = { ...spdy(), headers: { ...spdy().headers, "x-stream-protocol-version": "v2.portforward.k8s.io, x" } }
    assert.deepStrictEqual(negotiate(other, state()), {
      _tag: "Reject",
      code: 403,
      body:
        "unable to upgrade: unable to negotiate protocol: client supports [v2.portforward.k8s.io x], server accepts [portforward.k8s.io]\n",
      headers: { "X-Content-Type-Options": "nosniff", "X-Accepted-Stream-Protocol-Versions": "portforward.k8s.io" }
    })
    const h2c = { ...spdy(), headers: { ...spdy().headers, upgrade: "h2c" } }
    assert.deepStrictEqual(rejected(negotiate(h2c, state())), [
      400,
      "unable to upgrade: missing upgrade headers in request: http.Header{\"Connection\":[]string{\"Upgrade\"}, " +
      "\"Upgrade\":[]string{\"h2c\"}, \"X-Stream-Protocol-Version\":[]string{\"portforward.k8s.io\"}}\n"
    ])
  })

  it("the tunnel: gorilla/websocket's handshake checks, answered with the status text", () => {
    const tunnel = ws("SPDY/3.1+portforward.k8s.io")
    const gorilla = (code: number, text: string): Decision => ({
      _tag: "Reject",
      code,
      body: `${text}\n`,
      headers: { "X-Content-Type-Options": "nosniff", "Sec-Websocket-Version": "13" }
    })
    assert.deepStrictEqual(negotiate({ ...tunnel, method: "POST" }, state()), gorilla(405, "Method Not Allowed"))
    assert.deepStrictEqual(
      negotiate({ ...tunnel, headers: { ...tunnel.headers, "sec-websocket-version": "8" } }, state()),
      gorilla(400, "Bad Request")
    )
    assert.deepStrictEqual(
      negotiate({ ...tunnel, headers: { ...tunnel.headers, "sec-websocket-key": "c2hvcnQ=" } }, state()),
      gorilla(400, "Bad Request")
    )
    // the pod comes first: the API server looks it up before kubelet or gorilla see anything
    assert.deepStrictEqual(rejected(negotiate({ ...tunnel, method: "POST" }, state({}, {}))), [
      404,
      "pods \"web\" not found"
    ])
  })

  it("a fault comes before every other rule, for every transport", () => {
    for (const request of [spdy(), ws("SPDY/3.1+portforward.k8s.io"), ws("v4.channel.k8s.io", `${PATH}?ports=80`)]) {
      const missingPod = state({}, {})
      assert.deepStrictEqual(rejected(negotiate(request, { ...missingPod, fault: { _tag: "Status", code: 403 } })), [
        403,
        "pods \"web\" is forbidden: User \"system:anonymous\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"default\""
      ])
      assert.deepStrictEqual(negotiate(request, { ...missingPod, fault: { _tag: "CloseWithoutStatus" } }), {
        _tag: "Drop"
      })
      assert.deepStrictEqual(negotiate(request, { ...missingPod, fault: { _tag: "Hang" } }), { _tag: "Hold" })
    }
  })
})
