/**
 * No forward at all: the pod's service reached directly on loopback (the fake cluster process
 * serves the same echo, sink and source next to its pods). The floor every forward is measured
 * against: "ready" is one echo round trip on a fresh connection; there is nothing to close.
 */
import type { Contender, Target } from "./common.ts"

/** Where each pod's port can be reached without a forward. */
export type DirectAddresses = (target: Target) => { readonly host: string; readonly port: number }

export const direct = (id: string, label: string, addressOf: DirectAddresses): Contender => ({
  id,
  label,
  carrier: "none",
  verifies: false,
  open: async (t) => {
    const a = addressOf(t)
    return {
      port: a.port,
      hosts: [a.host],
      marks: {},
      kubectlPid: undefined,
      close: () => Promise.resolve(),
      exited: () => Promise.resolve()
    }
  },
  dispose: () => Promise.resolve()
})
