/** `@xec-sh/core`'s `portForward`: a kubectl child process, resolved on its `Forwarding from` output. */
import { KubernetesAdapter } from "@xec-sh/core"
import type { ChildProcess } from "node:child_process"
import { type Contender, exitOf, type Settings } from "./common.ts"

interface XecForward {
  readonly localPort: number
  open(): Promise<void>
  close(): Promise<void>
}

export const xec = (id: string, label: string, s: Settings, hosts: ReadonlyArray<string>): Contender => {
  // xec passes process.env to kubectl (KUBECACHEDIR is set there by the bench)
  const adapter = new KubernetesAdapter({ kubeconfig: s.kubeconfigPath, kubectlPath: s.kubectl })
  return {
    id,
    label,
    carrier: "kubectl",
    verifies: false,
    open: async (t) => {
      const pf = (await adapter.portForward(t.pod, 0, t.port, {
        namespace: t.namespace,
        dynamicLocalPort: true
      })) as unknown as XecForward
      await pf.open()
      // xec keeps its ChildProcess private; the bench reads it for the pid and to await the exit
      const child = (pf as unknown as { readonly proc: ChildProcess | null }).proc
      return {
        port: pf.localPort,
        hosts,
        marks: {},
        kubectlPid: child?.pid,
        close: () => pf.close(),
        exited: () => (child === null ? Promise.resolve() : exitOf(child))
      }
    },
    dispose: () => adapter.dispose()
  }
}
