/**
 * The cluster connection of the native carrier: kubeconfig loading and every request to the API
 * server, REST and upgrades alike.
 *
 * Credentials are `@kubernetes/client-node`'s `KubeConfig`, never our own code: it reads the
 * files, and `applyToHTTPSOptions` gives each request its TLS material (CA, client certificate,
 * `insecure-skip-tls-verify`, `tls-server-name`), its `Authorization` header (token, token file,
 * exec plugins, auth providers) and its agent (`proxy-url`). Nothing of it is ever logged.
 *
 * Files are merged the way kubectl merges a `KUBECONFIG` list: the first file that names a
 * cluster, user or context wins, and so does the first `current-context` (client-node's own
 * merge throws on duplicate names instead).
 *
 * One gap of client-node is filled here: a user's `tokenFile` (client-go's field,
 * `clientcmd/api/v1` `AuthInfo.TokenFile`) — client-node only knows a `token-file` key no
 * kubeconfig has, and would not trim the file's trailing newline. The file is read as client-go
 * reads it (relative to the kubeconfig, whitespace trimmed) each time the kubeconfig is loaded.
 *
 * @internal
 */
import { KubeconfigInvalid, Unauthorized } from "@kube-forward/core/PortForwardError"
import { Effect } from "effect"
import * as Yaml from "js-yaml"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { type RequestFailure, requestFailure } from "./errors.ts"

type KubeConfigModule = typeof import("@kubernetes/client-node/dist/config.js")
type KubeConfig = InstanceType<KubeConfigModule["KubeConfig"]>

let kubeConfigModule: Promise<KubeConfigModule> | undefined

/**
 * Loads client-node's kubeconfig module once (it takes a while: it pulls in client-node's
 * generated API); the layer calls this when it is built, off the first forward's way to ready.
 */
export const preload = (): Promise<KubeConfigModule> =>
  kubeConfigModule ??= import("@kubernetes/client-node/dist/config.js")

/** Where the kubeconfig comes from. */
export interface Source {
  /** Files, in order; absent: `KUBECONFIG` (a list), then `~/.kube/config`, then in-cluster. */
  readonly files: ReadonlyArray<string> | undefined
  readonly context: string | undefined
}

/** One cluster as a user of a context sees it. */
export interface KubeClient {
  readonly server: URL
  /** The context's namespace, or `default`. */
  readonly namespace: string
  /** A request to the API server; its options are fresh each time (tokens expire). */
  readonly request: (options: RequestSpec) => Effect.Effect<Http.ClientRequest, RequestFailure>
}

/** What to ask the API server. */
export interface RequestSpec {
  readonly method: "GET" | "POST"
  /** The path and query, e.g. `/api/v1/namespaces/default/pods/web`. */
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
}

/**
 * The kubeconfig text with each user's `tokenFile` read into `token` (client-go: the path is
 * relative to the kubeconfig's directory and the token is trimmed); other text as it is.
 */
const withTokenFiles = (text: string, dir: string): string => {
  const config = Yaml.load(text) as { users?: Array<{ user?: Record<string, unknown> } | null> } | null
  let changed = false
  for (const entry of config?.users ?? []) {
    const user = entry?.user
    const file = user?.["tokenFile"]
    if (user == null || typeof file !== "string" || file.length === 0 || typeof user["token"] === "string") continue
    user["token"] = Fs.readFileSync(Path.resolve(dir, file), "utf8").trim()
    changed = true
  }
  // JSON is YAML: client-node parses it as it parses the file
  return changed ? JSON.stringify(config) : text
}

/**
 * The words of a YAML error without the excerpt of the file js-yaml puts in its message: the
 * excerpt can hold a token or a key.
 */
const yamlError = (file: string, e: unknown): Error => {
  const error = e as {
    readonly name?: unknown
    readonly reason?: unknown
    readonly mark?: { line: number; column: number }
  }
  if (error.name !== "YAMLException") return e as Error
  const where = error.mark === undefined ? "" : ` at line ${error.mark.line + 1}, column ${error.mark.column + 1}`
  return new Error(`${file} is not valid YAML: ${String(error.reason)}${where}`)
}

/** One kubeconfig file, as client-node's `loadFromFile` reads it, plus `tokenFile`. */
const loadFile = (module: KubeConfigModule, file: string): KubeConfig => {
  const kc = new module.KubeConfig()
  try {
    kc.loadFromString(withTokenFiles(Fs.readFileSync(file, "utf8"), Path.dirname(file)))
  } catch (e) {
    throw yamlError(file, e)
  }
  kc.makePathsAbsolute(Path.dirname(file))
  return kc
}

const loadFiles = (module: KubeConfigModule, files: ReadonlyArray<string>): KubeConfig => {
  const parts = files.map((file) => loadFile(module, file))
  const firstByName = <T extends { readonly name: string }>(lists: ReadonlyArray<ReadonlyArray<T> | undefined>) => {
    const seen = new Map<string, T>()
    for (const list of lists) for (const item of list ?? []) if (!seen.has(item.name)) seen.set(item.name, item)
    return [...seen.values()]
  }
  const merged = new module.KubeConfig()
  merged.loadFromOptions({
    clusters: firstByName(parts.map((p) => p.clusters)),
    users: firstByName(parts.map((p) => p.users)),
    contexts: firstByName(parts.map((p) => p.contexts)),
    currentContext: parts.map((p) => p.currentContext).find((c) => c !== undefined && c.length > 0)
  })
  return merged
}

const defaultFiles = (): ReadonlyArray<string> | undefined => {
  const list = process.env.KUBECONFIG
  if (list === undefined || list.length === 0) return undefined
  return list.split(Path.delimiter).filter((f) => f.length > 0)
}

/** Reads the kubeconfig and picks the context; fails with `KubeconfigInvalid` naming the problem. */
const loadConfig = (source: Source): Effect.Effect<KubeConfig, KubeconfigInvalid> =>
  Effect.tryPromise({
    try: async () => {
      const module = await preload()
      const files = source.files ?? defaultFiles()
      const kc = files === undefined ? defaultConfig(module) : loadFiles(module, files)
      if (source.context !== undefined) {
        if (kc.getContextObject(source.context) === null) {
          throw new Error(`context was not found for specified context: ${source.context}`)
        }
        kc.setCurrentContext(source.context)
      }
      return kc
    },
    catch: (e) => new KubeconfigInvalid({ detail: describe(e) })
  })

/** `~/.kube/config` (with `tokenFile`), else client-node's default: the in-cluster service account. */
const defaultConfig = (module: KubeConfigModule): KubeConfig => {
  const home = Path.join(Os.homedir(), ".kube", "config")
  if (Fs.existsSync(home)) return loadFiles(module, [home])
  const kc = new module.KubeConfig()
  kc.loadFromDefault()
  return kc
}

const describe = (e: unknown): string => {
  const error = e as NodeJS.ErrnoException
  if (error.code === "ENOENT" && typeof error.path === "string") return `${error.path}: no such file`
  return error instanceof Error ? error.message : String(e)
}

/** The longest piece of a credential plugin's own words that goes into an error. */
const PLUGIN_WORDS = 300

/**
 * Why the kubeconfig's credentials could not be applied. A file it names that cannot be read is
 * the kubeconfig's fault; anything else is getting credentials (an exec plugin, a token
 * provider), in its first line of words: a plugin's stdout (where its token is) never, so a
 * JSON parse error is described instead of quoted.
 */
const credentialFailure = (e: unknown): Unauthorized | KubeconfigInvalid => {
  const error = e as NodeJS.ErrnoException
  if (typeof error.path === "string" && (error.syscall === "open" || error.syscall === "read")) {
    return new KubeconfigInvalid({ detail: `a file the kubeconfig names cannot be read: ${describe(e)}` })
  }
  if (e instanceof SyntaxError) {
    return new Unauthorized({ detail: "getting credentials: the exec plugin's output is not an ExecCredential (JSON)" })
  }
  const words = describe(e).trim().split("\n")[0].slice(0, PLUGIN_WORDS)
  return new Unauthorized({ detail: `getting credentials: ${words.length > 0 ? words : "the exec plugin failed"}` })
}

/** The options of one request: TLS, headers and agent from the kubeconfig. */
const requestOptions = (
  kc: KubeConfig,
  spec: RequestSpec
): Effect.Effect<Https.RequestOptions, Unauthorized | KubeconfigInvalid> =>
  Effect.tryPromise({
    try: async () => {
      const options: Https.RequestOptions = { headers: {} }
      await kc.applyToHTTPSOptions(options)
      return { ...options, method: spec.method, path: spec.path, headers: { ...options.headers, ...spec.headers } }
    },
    catch: credentialFailure
  })

/** Starts a request to `server`; the caller listens for its response or upgrade. */
const startRequest = (server: URL, options: Https.RequestOptions): Http.ClientRequest => {
  const secure = server.protocol === "https:"
  const base = {
    ...options,
    protocol: server.protocol,
    hostname: server.hostname.replace(/^\[|\]$/g, ""),
    port: server.port === "" ? (secure ? 443 : 80) : Number(server.port),
    path: `${server.pathname.replace(/\/$/, "")}${options.path}`
  }
  return secure ? Https.request(base) : Http.request(base as Http.RequestOptions)
}

/**
 * Loads the kubeconfig of `source` into a client. The `KubeConfig` is kept for the client's
 * life, so exec plugins and token providers keep their own caches.
 */
export const make = (source: Source): Effect.Effect<KubeClient, KubeconfigInvalid> =>
  Effect.gen(function*() {
    const kc = yield* loadConfig(source)
    const cluster = kc.getCurrentCluster()
    if (cluster === null) {
      return yield* new KubeconfigInvalid({ detail: `context "${kc.getCurrentContext()}" names no cluster` })
    }
    const server = yield* Effect.try({
      try: () => new URL(cluster.server),
      catch: () => new KubeconfigInvalid({ detail: `cluster "${cluster.name}" has no valid server URL` })
    })
    const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default"
    const request = (spec: RequestSpec) =>
      requestOptions(kc, spec).pipe(
        Effect.mapError((e): RequestFailure => e),
        Effect.flatMap((options) =>
          Effect.try({ try: () => startRequest(server, options), catch: requestFailure(server) })
        )
      )
    return { server, namespace, request }
  })

/** The socket of an upgraded request, and what the server sent after its 101. */
export interface Upgraded {
  readonly response: Http.IncomingMessage
  readonly socket: Net.Socket
  readonly head: Buffer
}
