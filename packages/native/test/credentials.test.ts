/**
 * The native carrier's credentials against the fake cluster over HTTPS, every kind a kubeconfig
 * can hold (CA data with a token, a client certificate, an exec plugin, a token file,
 * `insecure-skip-tls-verify`, `tls-server-name`) and every way they fail (a wrong token, a user
 * RBAC denies, a CA that does not match, a name the certificate was not issued for), with the
 * same typed errors as the kubectl carrier. A token never shows in an error or a log line.
 */
import { assert, describe, it } from "@effect/vitest"
import { PortForward } from "@kube-forward/core"
import type { Forwarder } from "@kube-forward/core/Forwarder"
import type { PortAllocator } from "@kube-forward/core/PortAllocator"
import { NativeForwarder } from "@kube-forward/native"
import { Backend, FakeCluster, TcpClient } from "@kube-forward/testkit"
import { Effect, Exit, type Layer, Logger, References } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"

const ALICE = "alice-secret-token-4f1c9a"
const BOB = "bob-secret-token-77e0b2"
const WRONG = "wrong-secret-token-0d3e51"
const TOKENS = [ALICE, BOB, WRONG]

const options: FakeCluster.Options = {
  tls: true,
  auth: {
    users: [
      { name: "alice", token: ALICE, clientCertificate: true },
      { name: "bob", token: BOB, portForward: false }
    ]
  },
  pods: [{ name: "web", containers: [{ name: "c", ports: [{ containerPort: 7, backend: Backend.echo() }] }] }]
}

/** A carrier and its port allocator: what `PortForward.make` needs. */
type Carrier = Layer.Layer<Forwarder | PortAllocator>

/**
 * Opens a forward to `pod/web:7` through `carrier`, echoes a message and closes it; the outcome
 * and every log line written meanwhile (all levels).
 */
const attempt = (carrier: Carrier) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.make((entry) =>
      void lines.push(`${entry.logLevel} ${JSON.stringify(entry.message)} ${String(entry.cause)}`)
    )
    const exit = yield* PortForward.make({ target: "pod/web", ports: [7] }).pipe(
      Effect.flatMap((fwd) => TcpClient.roundTrip(fwd.localPort, "through the API server")),
      Effect.map(String),
      Effect.scoped,
      Effect.provide(carrier),
      Effect.provide(Logger.layer([capture])),
      Effect.provideService(References.MinimumLogLevel, "All"),
      Effect.exit
    )
    return { exit, lines }
  })

/** The reply, or the failure's tag and message; and that no token appears anywhere. */
const outcome = (result: { readonly exit: Exit.Exit<string, unknown>; readonly lines: ReadonlyArray<string> }) => {
  const { exit, lines } = result
  const text = Exit.isSuccess(exit) ? exit.value : failureOf(exit)
  for (const token of TOKENS) {
    assert.notInclude(text, token, "no token in the outcome")
    for (const line of lines) assert.notInclude(line, token, "no token in the logs")
  }
  return text
}

const failureOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") return `defect: ${String(exit.cause)}`
  const e = error.error as { readonly _tag: string; readonly message: string; readonly tls?: boolean }
  return `${e._tag}${e.tls === true ? " (tls)" : ""}: ${e.message}`
}

const native = (kubeconfig: string, extra: NativeForwarder.Options = {}): Carrier =>
  NativeForwarder.layer({ kubeconfig, ...extra })

describe("native carrier: credentials over HTTPS", () => {
  it.live("(a) CA data and a bearer token, (b) a client certificate, (c) an exec plugin, (j) a token file", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      assert.include(Fs.readFileSync(cluster.kubeconfigPath, "utf8"), "certificate-authority-data:")
      assert.strictEqual(outcome(yield* attempt(native(cluster.kubeconfigPath))), "through the API server")
      for (const credential of ["clientCertificate", "exec", "tokenFile"] as const) {
        const kubeconfig = yield* cluster.writeKubeconfig({ credential })
        assert.strictEqual(outcome(yield* attempt(native(kubeconfig))), "through the API server", credential)
      }
      const counters = yield* cluster.counters
      assert.deepStrictEqual([counters.unauthorized, counters.forbidden], [0, 0])
      assert.strictEqual(counters.sessions.tunnel, 4)
    }))

  it.live("(d) a wrong token is Unauthorized, (e) a user RBAC denies is Forbidden", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const wrong = outcome(yield* attempt(native(yield* cluster.writeKubeconfig({ token: WRONG }))))
      assert.strictEqual(wrong, "Unauthorized: the API server did not accept the credentials: Unauthorized")
      const bob = outcome(yield* attempt(native(yield* cluster.writeKubeconfig({ user: "bob" }))))
      assert.strictEqual(
        bob,
        `Forbidden: the API server refused the request: pods "web" is forbidden: User "bob" cannot create resource "pods/portforward" in API group "" in the namespace "default"`
      )
      // bob read the pod, then the tunnel (GET, verb get) and SPDY (POST, verb create) were refused
      assert.strictEqual((yield* cluster.counters).forbidden, 2)
    }))

  it.live("(f) a CA that does not match is ClusterUnreachable with tls, in words; (g) insecure-skip-tls-verify", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const untrusted = outcome(
        yield* attempt(native(yield* cluster.writeKubeconfig({ certificateAuthority: "untrusted" })))
      )
      assert.match(untrusted, /^ClusterUnreachable \(tls\): /)
      assert.include(untrusted, "is not trusted")
      const noCa = outcome(yield* attempt(native(yield* cluster.writeKubeconfig({ certificateAuthority: "none" }))))
      assert.match(noCa, /^ClusterUnreachable \(tls\): .*is not trusted/)
      const skip = yield* cluster.writeKubeconfig({ certificateAuthority: "none", insecureSkipTlsVerify: true })
      assert.strictEqual(outcome(yield* attempt(native(skip))), "through the API server")
    }))

  it.live("(h) tls-server-name is the name the certificate is checked against", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const named = yield* cluster.writeKubeconfig({ tlsServerName: "kubernetes.default.svc" })
      assert.strictEqual(outcome(yield* attempt(native(named))), "through the API server")
      // the server is 127.0.0.1, which the certificate names too: only a name that is checked fails here
      const other = outcome(yield* attempt(native(yield* cluster.writeKubeconfig({ tlsServerName: "other.example" }))))
      assert.match(other, /^ClusterUnreachable \(tls\): .*not issued for other\.example/)
    }))

  it.live("(i) an old server: the tunnel refused with 400, SPDY over TLS carries the bytes", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make({ ...options, transport: "spdy-only" })
      assert.strictEqual(outcome(yield* attempt(native(cluster.kubeconfigPath))), "through the API server")
      const counters = yield* cluster.counters
      assert.deepStrictEqual(counters.sessions, { spdy: 1, tunnel: 0, websocket: 0 })
      assert.strictEqual(counters.upgradeRequests, 2, "the tunnel's GET (400), then the SPDY POST")
      assert.strictEqual(counters.bytesToPod, "through the API server".length)
      assert.strictEqual(counters.bytesFromPod, "through the API server".length)
    }))
})

/** An HTTP CONNECT proxy on loopback that counts the tunnels it opened. */
const connectProxy = Effect.acquireRelease(
  Effect.callback<{ readonly server: Http.Server; readonly port: number; readonly tunnels: () => number }>((resume) => {
    let tunnels = 0
    const server = Http.createServer((_, res) => res.writeHead(405).end())
    server.on("connect", (req: Http.IncomingMessage, client: Net.Socket, head: Buffer) => {
      const [host, port] = (req.url ?? "").split(":")
      const upstream = Net.connect({ host, port: Number(port) }, () => {
        tunnels++
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
        upstream.write(head)
        client.pipe(upstream).pipe(client)
      })
      upstream.on("error", () => client.destroy())
      client.on("error", () => upstream.destroy())
    })
    server.listen(
      0,
      "127.0.0.1",
      () => resume(Effect.succeed({ server, port: (server.address() as Net.AddressInfo).port, tunnels: () => tunnels }))
    )
  }),
  ({ server }) => Effect.sync(() => server.close())
)

describe("native carrier: proxy-url", () => {
  it.live("the kubeconfig's proxy-url carries the REST calls and the upgrade (HTTPS through CONNECT)", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const proxy = yield* connectProxy
      const text = Fs.readFileSync(cluster.kubeconfigPath, "utf8")
      const server = /^( +)server: .*$/m.exec(text)!
      const viaProxy = `${cluster.kubeconfigPath}-proxy`
      Fs.writeFileSync(
        viaProxy,
        text.replace(server[0], `${server[0]}\n${server[1]}proxy-url: http://127.0.0.1:${proxy.port}`),
        { mode: 0o600 }
      )
      assert.strictEqual(outcome(yield* attempt(native(viaProxy))), "through the API server")
      assert.isAtLeast(proxy.tunnels(), 1, "the requests went through the proxy")
    }))
})

describe("native carrier: no secret in an error", () => {
  it.live("a kubeconfig that is not YAML: KubeconfigInvalid with the place, never the text around it", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      // an unterminated quote right at the token: js-yaml's own message quotes those lines
      const broken = Fs.readFileSync(cluster.kubeconfigPath, "utf8").replace(
        `token: "${ALICE}"`,
        `token: "${ALICE}\n  x: [`
      )
      const path = `${cluster.kubeconfigPath}-broken`
      Fs.writeFileSync(path, broken, { mode: 0o600 })
      const text = outcome(yield* attempt(native(path)))
      assert.match(
        text,
        /^KubeconfigInvalid: the kubeconfig cannot be used: .*kubeconfig-broken is not valid YAML: .* at line \d+, column \d+$/
      )
      assert.strictEqual((yield* cluster.counters).restRequests, 0)
    }))
})

describe("native carrier: credentials that cannot be used", () => {
  it.live("a client certificate file that does not exist: KubeconfigInvalid naming it, nothing asked of the server", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const written = Fs.readFileSync(yield* cluster.writeKubeconfig({ credential: "clientCertificate" }), "utf8")
      const path = `${cluster.kubeconfigPath}-missing-cert`
      Fs.writeFileSync(
        path,
        written.replace(/client-certificate-data: .*/, "client-certificate: /nonexistent/client.crt"),
        { mode: 0o600 }
      )
      const text = outcome(yield* attempt(native(path)))
      assert.strictEqual(
        text,
        "KubeconfigInvalid: the kubeconfig cannot be used: a file the kubeconfig names cannot be read: /nonexistent/client.crt: no such file"
      )
      assert.strictEqual((yield* cluster.counters).restRequests, 0)
    }))

  it.live("an exec plugin that prints a bare token instead of an ExecCredential: Unauthorized, the output never quoted", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const written = Fs.readFileSync(yield* cluster.writeKubeconfig({ credential: "exec" }), "utf8")
      const plugin = `${cluster.kubeconfigPath}-plugin.sh`
      Fs.writeFileSync(plugin, `#!/bin/sh\necho '${ALICE}'\n`, { mode: 0o700 })
      const path = `${cluster.kubeconfigPath}-bare-token`
      Fs.writeFileSync(path, written.replace(/command: .*/, `command: "${plugin}"`), { mode: 0o600 })
      const text = outcome(yield* attempt(native(path)))
      assert.strictEqual(
        text,
        "Unauthorized: the API server did not accept the credentials: getting credentials: the exec plugin's output is not an ExecCredential (JSON)"
      )
    }))
})

describe("parity with the kubectl carrier over HTTPS", () => {
  it.live("the same kubeconfigs give the same outcome through both carriers", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const kubectl = (kubeconfig: string): Carrier =>
        PortForward.layer({ kubeconfig, env: { KUBECACHEDIR: cluster.cacheDir } })
      const cases = [
        ["token", cluster.kubeconfigPath],
        ["wrong token", yield* cluster.writeKubeconfig({ token: WRONG })],
        ["bob", yield* cluster.writeKubeconfig({ user: "bob" })]
      ] as const
      for (const [what, kubeconfig] of cases) {
        const viaNative = outcome(yield* attempt(native(kubeconfig)))
        const viaKubectl = outcome(yield* attempt(kubectl(kubeconfig)))
        assert.strictEqual(viaNative.split(":")[0], viaKubectl.split(":")[0], `${what}: ${viaNative} / ${viaKubectl}`)
      }
      const counters = yield* cluster.counters
      assert.strictEqual(counters.sessions.tunnel, 2, "kubectl 1.33 and the native carrier both took the tunnel")
    }))
})
