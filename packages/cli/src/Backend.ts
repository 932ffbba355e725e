/**
 * `--backend`: which carrier moves the bytes of every forward.
 *
 * A backend is nothing but a `Layer` that provides the `Forwarder` service of
 * `@kube-forward/core` (and the `PortAllocator` that goes with it); everything else, the
 * session, the table, the events, is the same whatever carries the bytes.
 *
 * - `kubectl` (default): each forward is a `kubectl port-forward` process, configured from
 *   kube-forward's environment variables (`KUBE_FORWARD_KUBECTL` for the binary, `KUBECONFIG`,
 *   `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_NAMESPACE`, `KUBE_FORWARD_KILL_GRACE`,
 *   `KUBE_FORWARD_WATCHDOG`; see `Kubectl.envConfig`). Flags and config-file fields win over them.
 * - `native`: in-process, without kubectl (`@kube-forward/native`). Not part of this build yet:
 *   choosing it is invalid input (exit code 2) until {@link native} is connected.
 *
 * @since 0.1.0
 */
import { type Config, Effect, Layer, Schema } from "effect"
import { type Forwarder, type PortAllocator, PortForward } from "@kube-forward/core"

/**
 * The backends `--backend` accepts.
 *
 * @category models
 * @since 0.1.0
 */
export const names = ["kubectl", "native"] as const

/**
 * A backend's name.
 *
 * @category models
 * @since 0.1.0
 */
export type Name = typeof names[number]

/**
 * The backend asked for cannot be used in this build.
 *
 * @category errors
 * @since 0.1.0
 */
export class BackendUnavailable extends Schema.TaggedError<BackendUnavailable>("@kube-forward/cli/BackendUnavailable")(
  "BackendUnavailable",
  { backend: Schema.String, reason: Schema.String }
) {
  /** @since 0.1.0 */
  override get message(): string {
    return `--backend ${this.backend}: ${this.reason}`
  }
}

/**
 * The services every forward needs, for one backend.
 *
 * @category models
 * @since 0.1.0
 */
export type Services = Forwarder.Forwarder | PortAllocator.PortAllocator

/**
 * The kubectl backend: `kubectl port-forward` processes, configured from the environment.
 *
 * @category layers
 * @since 0.1.0
 */
export const kubectl: Layer.Layer<Services, Config.ConfigError> = PortForward.layerFromEnv

/**
 * The native backend. This is the one place to connect `@kube-forward/native` when it lands:
 * return its layer (its `Forwarder`, with `PortAllocator.layer`) instead of the failure.
 *
 * @category layers
 * @since 0.1.0
 */
export const native = (): Layer.Layer<Services, BackendUnavailable | Config.ConfigError> =>
  Layer.unwrap(Effect.fail(
    new BackendUnavailable({
      backend: "native",
      reason: "not available in this build (the in-process backend, @kube-forward/native, is not part of it yet); use --backend kubectl"
    })
  ))

/**
 * The layer of backend `name`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (name: Name): Layer.Layer<Services, BackendUnavailable | Config.ConfigError> =>
  name === "native" ? native() : kubectl
