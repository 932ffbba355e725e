/**
 * HTTPS and credentials: the cluster's own CA, bearer tokens, token files, client certificates,
 * an exec credential plugin, a user RBAC denies port forwarding, and what kube-apiserver answers
 * each failure with — checked with raw HTTPS requests (exact bodies) and with real kubectl
 * (exact messages).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Https from "node:https"
import { Backend, FakeCluster } from "../src/index.ts"
import * as Auth from "../src/internal/auth.ts"
import { authority } from "../src/internal/certificates.ts"
import { exchange, hasKubectl, portForward, spawnKubectl } from "./helpers/kubectl.ts"

const ALICE = "alice-token-0123456789"
const BOB = "bob-token-9876543210"

const options: FakeCluster.Options = {
  tls: { serverNames: ["fake.example"] },
  auth: {
    users: [
      { name: "alice", token: ALICE, clientCertificate: true, groups: ["devs"] },
      { name: "bob", token: BOB, portForward: false }
    ]
  },
  pods: [{ name: "web", containers: [{ name: "c", ports: [{ containerPort: 7, backend: Backend.echo() }] }] }]
}

/** A raw HTTPS GET; `tls` adds TLS options (CA, client certificate). */
const get = (cluster: FakeCluster.FakeCluster, path: string, tls: Https.RequestOptions = {}) =>
  Effect.callback<{ readonly status: number; readonly type: string | undefined; readonly body: string }, Error>(
    (resume) => {
      const url = new URL(path, cluster.url)
      const request = Https.request(url, { ca: cluster.certificateAuthority, ...tls }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resume(Effect.succeed({
            status: res.statusCode ?? 0,
            type: res.headers["content-type"],
            body: Buffer.concat(chunks).toString()
          })))
      })
      request.on("error", (e) => resume(Effect.fail(e)))
      request.end()
      return Effect.sync(() => request.destroy())
    }
  )

const POD = "/api/v1/namespaces/default/pods/web"

const UNAUTHORIZED =
  `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`

describe("authorization rules", () => {
  const peer = { presented: false, verified: false, commonName: undefined }
  const at = (method: string, path: string) => Auth.attributes(method, new URL(path, "https://x"))

  it("verbs and messages are kube-apiserver's", () => {
    const bob = { name: "bob", spec: { name: "bob", portForward: false } }
    assert.strictEqual(
      Auth.forbidden(bob, at("POST", `${POD}/portforward`))["message"],
      `pods "web" is forbidden: User "bob" cannot create resource "pods/portforward" in API group "" in the namespace "default"`
    )
    // the WebSocket upgrade is a GET: RBAC sees "get" (kube-apiserver before 1.35's synthetic create check)
    assert.strictEqual(at("GET", `${POD}/portforward`).verb, "get")
    const anonymous = { name: "system:anonymous", spec: undefined }
    assert.strictEqual(
      Auth.forbidden(anonymous, at("GET", "/api/v1/namespaces/default/pods?labelSelector=a%3Db"))["message"],
      `pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default"`
    )
    assert.strictEqual(
      Auth.forbidden(anonymous, at("GET", "/apis/apps/v1/deployments?watch=true"))["message"],
      `deployments.apps is forbidden: User "system:anonymous" cannot watch resource "deployments" in API group "apps" at the cluster scope`
    )
    assert.strictEqual(
      Auth.forbidden(anonymous, at("GET", "/apis"))["message"],
      `forbidden: User "system:anonymous" cannot get path "/apis"`
    )
  })

  it("a wrong token is a 401 even where anonymous requests are allowed; no credentials are anonymous", () => {
    const auth = { users: [{ name: "alice", token: "a" }], anonymous: true }
    const request = (authorization: string | undefined, path: string) =>
      Auth.check(auth, { authorization, peer, attributes: at("GET", path) })
    assert.strictEqual(request("Bearer b", "/version")?.code, 401)
    assert.strictEqual(request(undefined, "/version"), undefined)
    assert.strictEqual(request(undefined, POD)?.code, 403)
    assert.strictEqual(request("Bearer a", POD), undefined)
    assert.strictEqual(
      Auth.check({ users: [] }, { authorization: undefined, peer, attributes: at("GET", "/version") })?.code,
      401
    )
    // a certificate from another CA is a 401; a verified one authenticates before any token
    const foreign = { presented: true, verified: false, commonName: "alice" }
    assert.strictEqual(
      Auth.check(auth, { authorization: undefined, peer: foreign, attributes: at("GET", POD) })?.code,
      401
    )
    const verified = { presented: true, verified: true, commonName: "alice" }
    assert.strictEqual(
      Auth.check(auth, { authorization: "Bearer wrong", peer: verified, attributes: at("GET", POD) }),
      undefined
    )
  })
})

describe("HTTPS and credentials", () => {
  it.live("answers 401 and 403 with kube-apiserver's Status bodies; client certificates are checked against the CA", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      assert.match(cluster.url, /^https:\/\/127\.0\.0\.1:\d+$/)
      const none = yield* get(cluster, POD)
      assert.deepStrictEqual([none.status, none.type, none.body], [401, "application/json", UNAUTHORIZED])
      const wrong = yield* get(cluster, POD, { headers: { Authorization: "Bearer nope" } })
      assert.strictEqual(wrong.body, UNAUTHORIZED)
      const alice = yield* get(cluster, POD, { headers: { Authorization: `Bearer ${ALICE}` } })
      assert.strictEqual(alice.status, 200)
      const bob = yield* get(cluster, POD, { headers: { Authorization: `Bearer ${BOB}` } })
      assert.strictEqual(bob.status, 200, "bob may read pods")
      // a client certificate from the cluster's kubeconfig authenticates alice
      const kubeconfig = Fs.readFileSync(yield* cluster.writeKubeconfig({ credential: "clientCertificate" }), "utf8")
      const pem = (field: string) =>
        Buffer.from(new RegExp(`${field}: (\\S+)`).exec(kubeconfig)![1]!, "base64").toString()
      const cert = { cert: pem("client-certificate-data"), key: pem("client-key-data") }
      assert.strictEqual((yield* get(cluster, POD, cert)).status, 200)
      // one issued by another CA is refused
      const other = yield* Effect.promise(() => authority("other-ca").then((ca) => ca.issueClient("alice", [])))
      assert.strictEqual((yield* get(cluster, POD, other)).body, UNAUTHORIZED)
      const counters = yield* cluster.counters
      assert.deepStrictEqual([counters.unauthorized, counters.forbidden], [3, 0])
    }))

  it.live.skipIf(!hasKubectl("1.33"))(
    "kubectl authenticates with each kind of credential and reports each failure",
    () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make(options)
        /** `kubectl get pod web -o name` with a kubeconfig: its exit code and output. */
        const getPod = (kubeconfig: FakeCluster.KubeconfigOptions) =>
          Effect.gen(function*() {
            const path = yield* cluster.writeKubeconfig(kubeconfig)
            const kubectl = yield* spawnKubectl("1.33", ["get", "pod", "web", "-o", "name"], {
              KUBECONFIG: path,
              KUBECACHEDIR: cluster.cacheDir
            })
            const exit = yield* kubectl.awaitExit
            return `${exit.code} ${kubectl.text("stdout").trim()}${kubectl.text("stderr").trim()}`
          }).pipe(Effect.scoped)
        for (const credential of ["token", "tokenFile", "clientCertificate", "exec"] as const) {
          assert.strictEqual(yield* getPod({ credential }), "0 pod/web", credential)
        }
        assert.strictEqual(yield* getPod({ tlsServerName: "fake.example" }), "0 pod/web")
        assert.strictEqual(
          yield* getPod({ token: "wrong" }),
          "1 error: You must be logged in to the server (Unauthorized)"
        )
        assert.include(
          yield* getPod({ certificateAuthority: "untrusted" }),
          "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        )
        assert.include(
          yield* getPod({ tlsServerName: "other.example" }),
          "x509: certificate is valid for localhost, kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local, fake.example, not other.example"
        )
        assert.strictEqual(yield* getPod({ certificateAuthority: "none", insecureSkipTlsVerify: true }), "0 pod/web")
      })
  )

  it.live.skipIf(!hasKubectl("1.33"))(
    "kubectl forwards with an exec plugin's token; RBAC denies bob's forward",
    () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make(options)
        const exec = { KUBECONFIG: yield* cluster.writeKubeconfig({ credential: "exec" }) }
        const fwd = yield* portForward(cluster, "1.33", "pod/web", 7, { env: exec })
        assert.strictEqual((yield* exchange(fwd.localPort, Buffer.from("through TLS"))).toString(), "through TLS")
        assert.strictEqual((yield* cluster.counters).sessions.tunnel, 1)
        const bob = yield* spawnKubectl("1.33", ["port-forward", "pod/web", ":7"], {
          ...cluster.env,
          KUBECONFIG: yield* cluster.writeKubeconfig({ user: "bob" })
        })
        assert.deepStrictEqual(yield* bob.awaitExit, { code: 1, signal: null })
        assert.strictEqual(
          bob.text("stderr").trim(),
          `error: error upgrading connection: pods "web" is forbidden: User "bob" cannot create resource "pods/portforward" in API group "" in the namespace "default"`
        )
        // the tunnel's GET was refused as "get", then the SPDY POST as "create"
        assert.strictEqual((yield* cluster.counters).forbidden, 2)
      })
  )
})

describe("the bearer token of an Authorization header", () => {
  it("is read as kube-apiserver reads it: trimmed, split at spaces only, the second part", () => {
    assert.strictEqual(Auth.bearerToken("Bearer tok"), "tok")
    assert.strictEqual(Auth.bearerToken("bEaReR tok"), "tok")
    assert.strictEqual(Auth.bearerToken("  Bearer tok  "), "tok")
    // a third part is ignored; two spaces make an empty (invalid) token; a tab is no separator
    assert.strictEqual(Auth.bearerToken("Bearer tok extra"), "tok")
    assert.strictEqual(Auth.bearerToken("Bearer  tok"), "")
    assert.isUndefined(Auth.bearerToken("Bearer\ttok"))
    assert.isUndefined(Auth.bearerToken("Basic dXNlcjpwYXNz"))
    assert.isUndefined(Auth.bearerToken(undefined))
  })

  it("an empty token is a 401, not anonymous", () => {
    const peer = { presented: false, verified: false, commonName: undefined }
    const spec = { users: [{ name: "alice", token: ALICE }], anonymous: true }
    assert.deepStrictEqual(Auth.authenticate(spec, "Bearer  " + ALICE, peer), Auth.authenticate(spec, "Bearer x", peer))
    assert.strictEqual((Auth.authenticate(spec, `Bearer ${ALICE} trailing`, peer) as { name?: string }).name, "alice")
  })
})
