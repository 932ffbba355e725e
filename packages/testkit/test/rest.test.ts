/**
 * The REST side of the fake API server: bodies exactly as the real server writes them, discovery,
 * lists with label selectors, the REST delay, the kubeconfig, cleanup, and the layer.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as Fs from "node:fs"
import { Backend, FakeCluster } from "../src/index.ts"
import { matches, parseSelector } from "../src/internal/labels.ts"

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const res = await fetch(url, { headers })
    return { status: res.status, type: res.headers.get("content-type"), text: await res.text() }
  })

const options: FakeCluster.Options = {
  version: "v1.31.4",
  pods: [
    {
      name: "web-1",
      labels: { app: "web", tier: "front" },
      containers: [{ name: "a", ports: [{ name: "http", containerPort: 80, backend: Backend.http() }] }]
    },
    { name: "web-2", labels: { app: "web" }, phase: "Pending" },
    { name: "db-0", namespace: "data", labels: { app: "db" } }
  ],
  services: [{ name: "web", selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] }],
  deployments: [{ name: "web", selector: { app: "web" } }]
}

describe("REST", () => {
  it.live("404 bodies match the real server byte for byte", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const pod = yield* get(`${cluster.url}/api/v1/namespaces/default/pods/x`)
      assert.strictEqual(pod.status, 404)
      assert.strictEqual(pod.type, "application/json")
      assert.strictEqual(
        pod.text,
        `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"x\\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}`
      )
      const deploy = yield* get(`${cluster.url}/apis/apps/v1/namespaces/default/deployments/x`)
      assert.strictEqual(
        deploy.text,
        `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \\"x\\" not found","reason":"NotFound","details":{"name":"x","group":"apps","kind":"deployments"},"code":404}`
      )
      const svc = yield* get(`${cluster.url}/api/v1/namespaces/default/services/x`)
      assert.strictEqual(JSON.parse(svc.text).message, `services "x" not found`)
      const unknown = yield* get(`${cluster.url}/apis/batch/v1`)
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(JSON.parse(unknown.text).message, "the server could not find the requested resource")
    }))

  it.live("serves /version and discovery", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const version = JSON.parse((yield* get(`${cluster.url}/version`)).text)
      assert.include(version, { major: "1", minor: "31", gitVersion: "v1.31.4" })
      const api = JSON.parse(
        (yield* get(`${cluster.url}/api`, {
          accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        })).text
      )
      assert.deepStrictEqual(api.versions, ["v1"])
      const apis = JSON.parse((yield* get(`${cluster.url}/apis`)).text)
      assert.deepStrictEqual(apis.groups.map((g: { name: string }) => g.name), ["apps"])
      const core = JSON.parse((yield* get(`${cluster.url}/api/v1`)).text)
      const names = core.resources.map((r: { name: string }) => r.name)
      for (const name of ["pods", "pods/portforward", "services"]) assert.include(names, name)
      const apps = JSON.parse((yield* get(`${cluster.url}/apis/apps/v1`)).text)
      assert.deepStrictEqual(apps.resources.map((r: { name: string }) => r.name), ["deployments", "statefulsets"])
    }))

  it.live("lists pods by label selector and renders workloads with replica counts", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      const list = (q: string) =>
        get(`${cluster.url}/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(q)}`).pipe(
          Effect.map((r) => JSON.parse(r.text).items.map((p: { metadata: { name: string } }) => p.metadata.name))
        )
      assert.deepStrictEqual(yield* list("app=web"), ["web-1", "web-2"])
      assert.deepStrictEqual(yield* list("app=web,tier=front"), ["web-1"])
      assert.deepStrictEqual(yield* list("app in (db, web),!tier"), ["web-2"])
      assert.deepStrictEqual(yield* list("app=db"), [])
      const all = JSON.parse((yield* get(`${cluster.url}/api/v1/pods`)).text)
      assert.strictEqual(all.kind, "PodList")
      assert.strictEqual(all.items.length, 3)
      const pod = JSON.parse((yield* get(`${cluster.url}/api/v1/namespaces/default/pods/web-1`)).text)
      assert.strictEqual(pod.status.phase, "Running")
      assert.deepStrictEqual(pod.spec.containers[0].ports, [{ name: "http", containerPort: 80, protocol: "TCP" }])
      assert.deepStrictEqual(pod.status.conditions.find((c: { type: string }) => c.type === "Ready").status, "True")
      const deploy = JSON.parse((yield* get(`${cluster.url}/apis/apps/v1/namespaces/default/deployments/web`)).text)
      assert.deepStrictEqual(deploy.spec.selector, { matchLabels: { app: "web" } })
      assert.include(deploy.status, { replicas: 2, readyReplicas: 1 })
      const svc = JSON.parse((yield* get(`${cluster.url}/api/v1/namespaces/default/services/web`)).text)
      assert.deepStrictEqual(svc.spec.ports, [{ name: "http", protocol: "TCP", port: 80, targetPort: "http" }])
      const ns = JSON.parse((yield* get(`${cluster.url}/api/v1/namespaces/anything`)).text)
      assert.strictEqual(ns.status.phase, "Active")
      const counters = yield* cluster.counters
      assert.strictEqual(counters.restRequests, 9)
    }))

  it.live("setRestDelay delays REST responses", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.make(options)
      yield* cluster.setRestDelay("300 millis")
      const started = Date.now()
      assert.strictEqual((yield* get(`${cluster.url}/version`)).status, 200)
      assert.isAtLeast(Date.now() - started, 290)
      yield* cluster.setRestDelay(0)
    }))

  it.live("writes a kubeconfig and removes its files when the scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const cluster = yield* FakeCluster.make(options).pipe(Scope.provide(scope))
      assert.match(cluster.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.deepStrictEqual(cluster.env, { KUBECONFIG: cluster.kubeconfigPath, KUBECACHEDIR: cluster.cacheDir })
      const kubeconfig = Fs.readFileSync(cluster.kubeconfigPath, "utf8")
      assert.include(kubeconfig, `server: ${cluster.url}`)
      assert.include(kubeconfig, "current-context: fake")
      assert.isTrue(Fs.statSync(cluster.cacheDir).isDirectory())
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Fs.existsSync(cluster.kubeconfigPath))
      assert.isFalse(Fs.existsSync(cluster.cacheDir))
      const refused = yield* Effect.promise(() =>
        fetch(`${cluster.url}/version`).then(() => "answered", () => "refused")
      )
      assert.strictEqual(refused, "refused")
    }))
})

describe("label selectors", () => {
  it("parses equality, set and existence requirements", () => {
    const labels = { app: "web", tier: "front" }
    assert.isTrue(matches(parseSelector("app=web"), labels))
    assert.isTrue(matches(parseSelector("app==web,tier!=back"), labels))
    assert.isTrue(matches(parseSelector("app in (api, web), tier"), labels))
    assert.isFalse(matches(parseSelector("app notin (web)"), labels))
    assert.isFalse(matches(parseSelector("!tier"), labels))
    assert.isTrue(matches(parseSelector(""), labels))
    assert.throws(() => parseSelector("app=(x"))
  })
})

layer(FakeCluster.layer(options))("FakeClusterService", (it) => {
  it.effect("provides a running cluster", () =>
    Effect.gen(function*() {
      const cluster = yield* FakeCluster.FakeClusterService
      const res = yield* get(`${cluster.url}/api/v1/namespaces/data/pods/db-0`)
      assert.strictEqual(res.status, 200)
    }))
})
