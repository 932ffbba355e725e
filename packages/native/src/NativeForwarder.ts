/**
 * The native carrier: port forwards carried in-process, speaking the Kubernetes port-forward
 * protocol to the API server directly — no kubectl process. Behind the same `PortForward.make`,
 * the same spec, status, retry, reconnect, keepalive, `close` and typed errors as the kubectl
 * carrier; a program switches by providing `NativeForwarder.layer()` instead of
 * `PortForward.layer()`.
 *
 * - Credentials and TLS come from `@kubernetes/client-node`'s `KubeConfig` (kubeconfig files and
 *   `KUBECONFIG` lists, contexts, CA, client certificates, tokens and token files, exec plugins,
 *   auth providers, `proxy-url`); nothing of them is logged.
 * - Transports as kubectl ≥ 1.31 negotiates them: the WebSocket tunnel
 *   (`SPDY/3.1+portforward.k8s.io`) first, SPDY/3.1 over an HTTP/1.1 upgrade when the server
 *   refuses it; `transport` forces either.
 * - Targets resolved as kubectl resolves them (`pod/`, `svc/` with service-port mapping,
 *   `deployment/`, `statefulset/`, named ports), again on every reconnect.
 * - Beyond kubectl: a connection the pod refuses or resets fails alone (counted in
 *   `ForwardMetrics.connectionFailures` and logged) while the forward stays Ready; PINGs notice a
 *   dead session within `pingInterval + pingTimeout`; with `spread`, a service's connections go
 *   to every ready pod behind it.
 *
 * @since 0.1.0
 */
import { Forwarder } from "@kube-forward/core/Forwarder"
import * as PortAllocator from "@kube-forward/core/PortAllocator"
import type { KubeconfigInvalid } from "@kube-forward/core/PortForwardError"
import { Config, Duration, Effect, Layer, Option } from "effect"
import * as Attempt from "./internal/attempt.ts"
import * as KubeClient from "./internal/kubeClient.ts"
import * as Spread from "./internal/spread.ts"

/**
 * Options of the native carrier.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /**
   * kubeconfig file(s), merged as kubectl merges a `KUBECONFIG` list (the first file that names
   * something wins). Default: `KUBECONFIG`, then `~/.kube/config`, then the in-cluster
   * service account. A spec's own `kubeconfig` wins.
   */
  readonly kubeconfig?: string | ReadonlyArray<string> | undefined
  /** The context; default the kubeconfig's current one. A spec's own `context` wins. */
  readonly context?: string | undefined
  /** The namespace when a spec names none; default the context's, then `default`. */
  readonly namespace?: string | undefined
  /** `auto` (the WebSocket tunnel, then SPDY), `websocket` or `spdy`. Default `auto`. */
  readonly transport?: "auto" | "websocket" | "spdy" | undefined
  /** How often to PING the API server on each session; `0` turns it off. Default 5 seconds. */
  readonly pingInterval?: Duration.Input | undefined
  /** How long a PING may go unanswered before the session counts as lost. Default 10 seconds. */
  readonly pingTimeout?: Duration.Input | undefined
  /**
   * For `svc/` targets: spread connections over every ready pod behind the service (following
   * pods as they come and go) instead of kubectl's one pod. Default `false`.
   */
  readonly spread?: boolean | undefined
}

/** How long a loaded kubeconfig is used before it is read again (token files rotate). */
const CONFIG_TTL_MS = 60_000

const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

/** Loaded kubeconfigs by source, each for {@link CONFIG_TTL_MS}. */
const clientCache = () => {
  const cache = new Map<string, { readonly at: number; readonly client: KubeClient.KubeClient }>()
  return (source: KubeClient.Source): Effect.Effect<KubeClient.KubeClient, KubeconfigInvalid> =>
    Effect.suspend(() => {
      const key = JSON.stringify(source)
      const hit = cache.get(key)
      if (hit !== undefined && Date.now() - hit.at < CONFIG_TTL_MS) return Effect.succeed(hit.client)
      return KubeClient.make(source).pipe(
        Effect.tap((client) => Effect.sync(() => cache.set(key, { at: Date.now(), client })))
      )
    })
}

/**
 * Builds the native carrier. Loading client-node's kubeconfig support takes a while the first
 * time; it happens here, off the first forward's way to ready.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Forwarder["Service"]> =>
  Effect.gen(function*() {
    yield* Effect.promise(KubeClient.preload)
    const settings: Attempt.Settings = {
      namespace: options.namespace,
      transport: options.transport ?? "auto",
      pingIntervalMs: millis(options.pingInterval, 5_000),
      pingTimeoutMs: millis(options.pingTimeout, 10_000),
      spread: options.spread ?? false
    }
    const files = options.kubeconfig === undefined
      ? undefined
      : typeof options.kubeconfig === "string"
      ? [options.kubeconfig]
      : options.kubeconfig
    const clients = clientCache()
    return Forwarder.of({
      backend: "native",
      namespace: options.namespace,
      start: (request) =>
        Effect.gen(function*() {
          const client = yield* clients({
            files: request.spec.kubeconfig !== undefined ? [request.spec.kubeconfig] : files,
            context: request.spec.context ?? options.context
          })
          const route = settings.spread && request.spec.target.kind === "service"
            ? Spread.route(client, settings)
            : Attempt.singlePod(client, settings)
          return yield* Attempt.start(request, client, settings, route)
        })
    })
  })

/**
 * The native carrier and OS-assigned dynamic ports: everything `PortForward.make` needs.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PortForward } from "@kube-forward/core"
 * import { NativeForwarder } from "@kube-forward/native"
 *
 * const program = Effect.gen(function*() {
 *   const fwd = yield* PortForward.make({ target: "svc/web", ports: [80] })
 *   yield* Effect.log(`http://127.0.0.1:${fwd.localPort}`)
 * }).pipe(Effect.scoped, Effect.provide(NativeForwarder.layer()))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Forwarder | PortAllocator.PortAllocator> =>
  Layer.mergeAll(Layer.effect(Forwarder, make(options)), PortAllocator.layer)

/**
 * As {@link layer}, with the options read from `Config`s (a `Config` of the whole options, or
 * a record with a `Config` per option).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (
  options: Config.Wrap<Options>
): Layer.Layer<Forwarder | PortAllocator.PortAllocator, Config.ConfigError> =>
  Layer.mergeAll(Layer.effect(Forwarder, Config.unwrap(options).pipe(Effect.flatMap(make))), PortAllocator.layer)

/** An optional variable, where an empty value counts as unset. */
const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.option(config).pipe(Config.map(Option.getOrUndefined))

/**
 * The {@link Options} read from kube-forward's environment variables (the kubeconfig itself is
 * `KUBECONFIG`, as kubectl reads it, unless `KUBE_FORWARD_KUBECONFIG` names one):
 *
 * | variable | option |
 * |---|---|
 * | `KUBE_FORWARD_KUBECONFIG` | `kubeconfig` |
 * | `KUBE_FORWARD_CONTEXT` | `context` |
 * | `KUBE_FORWARD_NAMESPACE` | `namespace` |
 * | `KUBE_FORWARD_TRANSPORT` | `transport` (`auto`, `websocket`, `spdy`) |
 * | `KUBE_FORWARD_PING_INTERVAL`, `KUBE_FORWARD_PING_TIMEOUT` | `pingInterval`, `pingTimeout` (durations) |
 * | `KUBE_FORWARD_SPREAD` | `spread` (`true`/`false`) |
 *
 * @category config
 * @since 0.1.0
 */
export const envConfig: Config.Config<Options> = Config.all({
  kubeconfig: optional(Config.String("KUBE_FORWARD_KUBECONFIG")),
  context: optional(Config.String("KUBE_FORWARD_CONTEXT")),
  namespace: optional(Config.String("KUBE_FORWARD_NAMESPACE")),
  transport: optional(Config.Literals(["auto", "websocket", "spdy"], "KUBE_FORWARD_TRANSPORT")),
  pingInterval: optional(Config.Duration("KUBE_FORWARD_PING_INTERVAL")),
  pingTimeout: optional(Config.Duration("KUBE_FORWARD_PING_TIMEOUT")),
  spread: optional(Config.Boolean("KUBE_FORWARD_SPREAD"))
})

/**
 * {@link layer} configured from kube-forward's environment variables ({@link envConfig}).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerFromEnv: Layer.Layer<Forwarder | PortAllocator.PortAllocator, Config.ConfigError> = layerConfig(
  envConfig
)
