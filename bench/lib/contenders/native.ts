/** kube-forward on its native carrier (`@kube-forward/native`): no kubectl, the protocol spoken in this process. */
import { NativeForwarder } from "@kube-forward/native"
import type { Settings } from "./common.ts"
import { type EffectContender, effectContender } from "./effect.ts"
import { current } from "./kubeForward.ts"

/** Which transport the native carrier is held to: the WebSocket tunnel or SPDY/3.1 over an HTTP/1.1 upgrade. */
export type NativeTransport = "websocket" | "spdy"

/** `PortForward.make` on `NativeForwarder.layer({ kubeconfig, transport })`, default ping interval. */
export const native = (id: string, label: string, s: Settings, transport: NativeTransport): EffectContender =>
  effectContender({
    id,
    label,
    carrier: "in-process",
    layer: NativeForwarder.layer({ kubeconfig: s.kubeconfigPath, transport }),
    modules: current
  })
