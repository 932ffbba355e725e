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
 * - `native`: in-process, without kubectl (`@kube-forward/native`), configured from the same
 *   environment where it applies (`KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_NAMESPACE`,
 *   `KUBE_FORWARD_TRANSPORT`, `KUBE_FORWARD_PING_INTERVAL`, `KUBE_FORWARD_SPREAD`, …; see
 *   `NativeForwarder.envConfig`). Flags and config-file fields win over them.
 *
 * @since 0.1.0
 */
import { type Forwarder, type PortAllocator, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import type { Config, Layer } from "effect"

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
 * The native backend: in-process, configured from the environment.
 *
 * @category layers
 * @since 0.1.0
 */
export const native: Layer.Layer<Services, Config.ConfigError> = NativeForwarder.layerFromEnv

/**
 * The layer of backend `name`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (name: Name): Layer.Layer<Services, Config.ConfigError> => name === "native" ? native : kubectl
