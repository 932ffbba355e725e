/**
 * Authentication and authorization as kube-apiserver's filter chain does them, before any handler
 * (REST and port-forward upgrades alike), as pure functions: the request's credentials and
 * attributes in, a user or the rejection out.
 *
 * - Authentication (K `staging/src/k8s.io/apiserver/pkg/authentication/request/bearertoken/
 *   bearertoken.go`, `.../request/x509/x509.go`, `.../request/anonymous/anonymous.go`): a bearer
 *   token must name a user, else `401` — even when anonymous requests are allowed, a token that is
 *   sent and wrong is an error, never anonymity; a client certificate must be signed by the cluster
 *   CA (CN = user, O = groups), else `401`; no credentials: `system:anonymous` when enabled, else
 *   `401`. The `401` body is `Status` `Unauthorized` (K `.../endpoints/handlers/responsewriters/
 *   errors.go`, `filters/authentication.go`).
 * - Authorization, RBAC-like (K `plugin/pkg/auth/authorizer/rbac/rbac.go`, bootstrap roles
 *   `system:public-info-viewer`, `system:discovery`): a user of the cluster's options may do
 *   everything but what it is denied (`portForward: false`: `pods/portforward`); anyone else only
 *   reads the public paths (and, authenticated, discovery). The verb of a request is the API
 *   server's (K `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`): `get`,
 *   `list`, `watch`, and for the port-forward subresource `get` for the WebSocket `GET` and
 *   `create` for the SPDY `POST`. A denial is `403` with the message of K `responsewriters/errors.go`
 *   `forbiddenMessage` inside `NewForbidden` (K `staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go`).
 *
 * @internal
 */
import type { AuthOptions, UserSpec } from "../FakeCluster.ts"
import * as Obj from "./objects.ts"

/** Who a request is. */
export interface Identity {
  readonly name: string
  /** A user of `auth.users` (anyone else has only the default roles). */
  readonly spec: UserSpec | undefined
}

/** The TLS peer of a request. */
export interface Peer {
  /** Whether the client sent a certificate at all. */
  readonly presented: boolean
  /** Whether it verifies against the cluster CA. */
  readonly verified: boolean
  readonly commonName: string | undefined
}

/** What a request asks, as the API server's authorizer sees it. */
export interface Attributes {
  readonly verb: string
  readonly path: string
  /** Undefined for a non-resource path (`/version`, `/api`, …). */
  readonly resource:
    | {
      readonly group: string
      readonly resource: string
      readonly subresource: string | undefined
      readonly namespace: string | undefined
      readonly name: string | undefined
    }
    | undefined
}

/** A rejection: the status and its `Status` body. */
export interface Rejection {
  readonly code: 401 | 403
  readonly body: Obj.Json
}

const ANONYMOUS = "system:anonymous"

const unauthorized: Rejection = { code: 401, body: Obj.status(401) }

/**
 * The user a request authenticates as, or the `401`. The authenticators run as kube-apiserver's
 * union does (K `.../authentication/request/union/union.go`): the first that succeeds wins (a
 * verified client certificate, then a bearer token); when none does and one failed, `401`.
 */
export const authenticate = (
  options: AuthOptions,
  authorization: string | undefined,
  peer: Peer
): Identity | Rejection => {
  if (peer.presented && peer.verified && peer.commonName !== undefined) {
    return { name: peer.commonName, spec: options.users.find((u) => u.name === peer.commonName) }
  }
  const token = bearerToken(authorization)
  if (token !== undefined) {
    const spec = token === "" ? undefined : options.users.find((u) => u.token !== undefined && u.token === token)
    return spec === undefined ? unauthorized : { name: spec.name, spec }
  }
  if (peer.presented) return unauthorized
  return options.anonymous === true ? { name: ANONYMOUS, spec: undefined } : unauthorized
}

/**
 * The bearer token of an `Authorization` header as kube-apiserver reads it (K `.../authentication/
 * request/bearertoken/bearertoken.go`): trimmed, split at the first two spaces, the first part
 * `bearer` in any case, the token the second part (empty: an invalid token), anything after a
 * third space ignored. `undefined` when it is no bearer header at all.
 */
export const bearerToken = (authorization: string | undefined): string | undefined => {
  const auth = (authorization ?? "").trim()
  const space = auth.indexOf(" ")
  if (space === -1 || auth.slice(0, space).toLowerCase() !== "bearer") return undefined
  const rest = auth.slice(space + 1)
  const end = rest.indexOf(" ")
  return end === -1 ? rest : rest.slice(0, end)
}

const PUBLIC_PATHS = new Set(["/version", "/healthz", "/livez", "/readyz"])

/** Whether the authorizer allows it. */
const allowed = (identity: Identity, attributes: Attributes): boolean => {
  if (attributes.resource === undefined) {
    if (PUBLIC_PATHS.has(attributes.path)) return true
    // system:discovery is bound to system:authenticated only
    return identity.name !== ANONYMOUS && /^\/(api|apis)(\/|$)/.test(attributes.path)
  }
  if (identity.spec === undefined) return false
  const { resource, subresource } = attributes.resource
  return !(resource === "pods" && subresource === "portforward" && identity.spec.portForward === false)
}

/** kube-apiserver's `Forbidden` Status for a denied request. */
export const forbidden = (identity: Identity, attributes: Attributes): Obj.Json => {
  const r = attributes.resource
  if (r === undefined) {
    return Obj.status(403, {
      message: `forbidden: User "${identity.name}" cannot ${attributes.verb} path "${attributes.path}"`,
      reason: "Forbidden",
      details: {}
    })
  }
  const resource = r.subresource === undefined ? r.resource : `${r.resource}/${r.subresource}`
  const scope = r.namespace === undefined ? "at the cluster scope" : `in the namespace "${r.namespace}"`
  const why =
    `User "${identity.name}" cannot ${attributes.verb} resource "${resource}" in API group "${r.group}" ${scope}`
  const qualified = r.group === "" ? r.resource : `${r.resource}.${r.group}`
  return Obj.status(403, {
    message: r.name === undefined
      ? `${qualified} is forbidden: ${why}`
      : `${qualified} "${r.name}" is forbidden: ${why}`,
    reason: "Forbidden",
    details: {
      ...(r.name === undefined ? {} : { name: r.name }),
      ...(r.group === "" ? {} : { group: r.group }),
      kind: r.resource
    }
  })
}

/** Authenticates and authorizes a request: undefined when it may go on, else its rejection. */
export const check = (
  options: AuthOptions,
  request: { readonly authorization: string | undefined; readonly peer: Peer; readonly attributes: Attributes }
): Rejection | undefined => {
  const identity = authenticate(options, request.authorization, request.peer)
  if ("code" in identity) return identity
  return allowed(identity, request.attributes) ?
    undefined :
    { code: 403, body: forbidden(identity, request.attributes) }
}

/**
 * A request's attributes (K `requestinfo.go` `NewRequestInfo`): `/api/v1/…` and
 * `/apis/GROUP/VERSION/…` are resource requests, with an optional `namespaces/NS/` prefix, then
 * the resource, name and subresource; everything else is a path.
 */
export const attributes = (method: string, url: URL): Attributes => {
  const path = url.pathname.replace(/\/+$/, "") || "/"
  const parts = path.split("/").slice(1).map((p) => {
    try {
      return decodeURIComponent(p)
    } catch {
      return p
    }
  })
  let rest: Array<string>
  let group: string
  if (parts[0] === "api" && parts.length >= 3) {
    group = ""
    rest = parts.slice(2)
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1]!
    rest = parts.slice(3)
  } else {
    return { verb: method === "GET" || method === "HEAD" ? "get" : method.toLowerCase(), path, resource: undefined }
  }
  let namespace: string | undefined
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1]
    rest = rest.slice(2)
  } else if (rest[0] === "namespaces" && rest.length === 2) {
    // a namespace object itself: resource "namespaces", named, no namespace scope
    namespace = undefined
  }
  const [resource = "", name, subresource] = rest
  return { verb: verbOf(method, name, url), path, resource: { group, resource, subresource, namespace, name } }
}

const verbOf = (method: string, name: string | undefined, url: URL): string => {
  switch (method) {
    case "GET":
    case "HEAD": {
      const watch = url.searchParams.get("watch")
      if (watch === "true" || watch === "1") return "watch"
      return name === undefined ? "list" : "get"
    }
    case "POST":
      return "create"
    case "PUT":
      return "update"
    case "PATCH":
      return "patch"
    case "DELETE":
      return name === undefined ? "deletecollection" : "delete"
    default:
      return method.toLowerCase()
  }
}
