/**
 * The carrier every example runs on, chosen by the environment variable `KUBE_FORWARD_BACKEND`:
 *
 * - `kubectl` (the default): each forward is a `kubectl port-forward` process
 *   (`PortForward.layerFromEnv`: `KUBE_FORWARD_KUBECTL`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, …);
 * - `native`: forwards carried in-process by `@kube-forward/native`, no kubectl needed
 *   (`NativeForwarder.layerFromEnv`: `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`,
 *   `KUBE_FORWARD_TRANSPORT`, …).
 *
 * So any example runs without kubectl as
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/<file>.ts
 *
 * Everything else — the spec, status, retry, reconnect, `close`, the typed errors — is the same
 * on both. Your own program provides the one it wants directly:
 * `Effect.provide(PortForward.layerFromEnv)` or `Effect.provide(NativeForwarder.layerFromEnv)`.
 */
import { type Forwarder, type PortAllocator, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Config, Effect, Layer } from "effect"

/** The services a forward needs, on the carrier `KUBE_FORWARD_BACKEND` names (default `kubectl`). */
export const ForwardLive: Layer.Layer<Forwarder.Forwarder | PortAllocator.PortAllocator, Config.ConfigError> = Layer
  .unwrap(
    Config.Literals(["kubectl", "native"], "KUBE_FORWARD_BACKEND").pipe(
      Config.withDefault("kubectl" as const),
      Effect.map((backend) => backend === "native" ? NativeForwarder.layerFromEnv : PortForward.layerFromEnv)
    )
  )
