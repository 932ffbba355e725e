/**
 * The REST API as a route table: discovery, version and health, namespaces, pods (get, list with
 * `labelSelector`, watch), services, deployments and statefulsets, in any namespace. Anything else
 * is a `404` Status; writes are `405`. Every reply is JSON with the headers the API server sends.
 *
 * @internal
 */
import { PortForwardProtocol } from "@kube-forward/protocol"
import type * as Http from "node:http"
import { parseSelector, type Selector } from "./labels.ts"
import * as Obj from "./objects.ts"
import type { Store, WorkloadKind } from "./store.ts"
import { podView, serviceView, workloadKinds, workloadView } from "./views.ts"
import type { Watches } from "./watches.ts"

/** What the routes read. */
export interface RestContext {
  readonly store: Store
  readonly watches: Watches
  /** What `/version` reports. */
  readonly version: string
  /** `host:port` of the server, for `/api`'s `serverAddressByClientCIDRs`. */
  readonly serverAddress: string
}

/** One request, as the routes see it. */
interface Request {
  readonly ctx: RestContext
  readonly res: Http.ServerResponse
  readonly query: URLSearchParams
  /** The `:name` segments of the route's pattern. */
  readonly params: Readonly<Record<string, string>>
}

/** Sends a JSON body. */
export const send = (res: Http.ServerResponse, code: number, body: unknown): void => {
  if (res.writableEnded || res.destroyed) return
  const text = JSON.stringify(body)
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-cache, private"
  })
  res.end(text)
}

const ok = (r: Request, body: unknown): void => send(r.res, 200, body)

const health = (r: Request): void => {
  r.res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" })
  r.res.end("ok")
}

/** The `labelSelector` of a list, or undefined after answering 400. */
const selectorOf = (r: Request): Selector | undefined => {
  try {
    return parseSelector(r.query.get("labelSelector"))
  } catch (error) {
    send(
      r.res,
      400,
      Obj.status(400, { message: `unable to parse requirement: ${String(error)}`, reason: "BadRequest" })
    )
    return undefined
  }
}

const listPods = (r: Request): void => {
  const selector = selectorOf(r)
  if (!selector) return
  const namespace = r.params["namespace"]
  const selected = r.ctx.store.selectPods(namespace, selector)
  const watch = r.query.get("watch")
  if (watch !== "true" && watch !== "1") {
    return ok(r, Obj.list("PodList", "v1", r.ctx.store.resourceVersion, selected.map(podView)))
  }
  r.ctx.watches.open(r.res, {
    namespace,
    selector,
    since: Number(r.query.get("resourceVersion") ?? "0") || 0,
    timeoutSeconds: Number(r.query.get("timeoutSeconds") ?? "0")
  }, selected)
}

const getPod = (r: Request): void => {
  const { namespace, name } = r.params as { namespace: string; name: string }
  const pod = r.ctx.store.pod(namespace, name)
  return pod ? ok(r, podView(pod)) : send(r.res, 404, Obj.notFound({ resource: "pods" }, name))
}

const listServices = (r: Request): void => {
  const selector = selectorOf(r)
  if (!selector) return
  const items = r.ctx.store.selectServices(r.params["namespace"], selector).map(serviceView)
  ok(r, Obj.list("ServiceList", "v1", r.ctx.store.resourceVersion, items))
}

const getService = (r: Request): void => {
  const { namespace, name } = r.params as { namespace: string; name: string }
  const svc = r.ctx.store.service(namespace, name)
  return svc ? ok(r, serviceView(svc)) : send(r.res, 404, Obj.notFound({ resource: "services" }, name))
}

const listWorkloads = (kind: WorkloadKind) => (r: Request): void => {
  const items = r.ctx.store.listWorkloads(kind, r.params["namespace"]).map((w) => workloadView(r.ctx.store, kind, w))
  ok(r, Obj.list(workloadKinds[kind].list, "apps/v1", r.ctx.store.resourceVersion, items))
}

const getWorkload = (kind: WorkloadKind) => (r: Request): void => {
  const { namespace, name } = r.params as { namespace: string; name: string }
  const w = r.ctx.store.workload(kind, namespace, name)
  return w ?
    ok(r, workloadView(r.ctx.store, kind, w)) :
    send(r.res, 404, Obj.notFound({ resource: kind, group: "apps" }, name))
}

/** The routes: a path pattern (`:name` matches one segment) and its handler. */
const routes: ReadonlyArray<readonly [string, (r: Request) => void]> = [
  ["/version", (r) => ok(r, Obj.version(r.ctx.version))],
  ["/api", (r) => ok(r, Obj.apiVersions(r.ctx.serverAddress))],
  ["/apis", (r) => ok(r, Obj.apiGroupList)],
  ["/api/v1", (r) => ok(r, Obj.coreV1Resources)],
  ["/apis/apps", (r) => ok(r, Obj.appsGroup)],
  ["/apis/apps/v1", (r) => ok(r, Obj.appsV1Resources)],
  ["/healthz", health],
  ["/livez", health],
  ["/readyz", health],
  [
    "/api/v1/namespaces",
    (r) => {
      const { store } = r.ctx
      ok(
        r,
        Obj.list(
          "NamespaceList",
          "v1",
          store.resourceVersion,
          store.namespaces().map((n) => Obj.namespace(n, store.created))
        )
      )
    }
  ],
  ["/api/v1/namespaces/:namespace", (r) => ok(r, Obj.namespace(r.params["namespace"]!, r.ctx.store.created))],
  ["/api/v1/pods", listPods],
  ["/api/v1/services", listServices],
  ["/api/v1/namespaces/:namespace/pods", listPods],
  ["/api/v1/namespaces/:namespace/pods/:name", getPod],
  ["/api/v1/namespaces/:namespace/services", listServices],
  ["/api/v1/namespaces/:namespace/services/:name", getService],
  ["/apis/apps/v1/deployments", listWorkloads("deployments")],
  ["/apis/apps/v1/statefulsets", listWorkloads("statefulsets")],
  ["/apis/apps/v1/namespaces/:namespace/deployments", listWorkloads("deployments")],
  ["/apis/apps/v1/namespaces/:namespace/deployments/:name", getWorkload("deployments")],
  ["/apis/apps/v1/namespaces/:namespace/statefulsets", listWorkloads("statefulsets")],
  ["/apis/apps/v1/namespaces/:namespace/statefulsets/:name", getWorkload("statefulsets")]
]

const compiled = routes.map(([pattern, handler]) => ({ segments: pattern.split("/").slice(1), handler }))

/** The handler and parameters for decoded path segments, or undefined. */
const match = (segments: ReadonlyArray<string>) => {
  for (const route of compiled) {
    if (route.segments.length !== segments.length) continue
    const params: Record<string, string> = {}
    const hit = route.segments.every((s, i) => {
      if (s.startsWith(":")) params[s.slice(1)] = segments[i]!
      return s.startsWith(":") || s === segments[i]
    })
    if (hit) return { handler: route.handler, params }
  }
  return undefined
}

/** Answers one plain (non-upgrade) HTTP request. */
export const handle = (ctx: RestContext, req: Http.IncomingMessage, res: Http.ServerResponse): void => {
  const url = new URL(req.url ?? "/", "http://fake")
  const path = url.pathname.replace(/\/+$/, "") || "/"
  if (PortForwardProtocol.parsePath(path) !== undefined) {
    return send(res, 400, Obj.status(400, { message: "Upgrade request required", reason: "BadRequest" }))
  }
  const method = req.method ?? "GET"
  if (method !== "GET" && method !== "HEAD") return send(res, 405, Obj.status(405))
  let segments: Array<string>
  try {
    segments = path.split("/").slice(1).map(decodeURIComponent)
  } catch {
    return send(res, 400, Obj.status(400, { message: `invalid path ${JSON.stringify(path)}`, reason: "BadRequest" }))
  }
  const route = match(segments)
  if (route === undefined) return send(res, 404, Obj.status(404, { details: {} }))
  route.handler({ ctx, res, query: url.searchParams, params: route.params })
}
