/** `@kubernetes/client-node`'s `PortForward` behind a local `net.Server`: one WebSocket per accepted connection. */
import { KubeConfig, PortForward as ClientNodePortForward } from "@kubernetes/client-node"
import * as Net from "node:net"
import type { Contender, Settings } from "./common.ts"

interface WsLike {
  close(): void
  on(event: "close", listener: () => void): unknown
}

export const clientNode = (id: string, label: string, s: Settings): Contender => {
  const kc = new KubeConfig()
  kc.loadFromFile(s.kubeconfigPath)
  return {
    id,
    label,
    carrier: "in-process",
    verifies: false,
    open: (t) =>
      new Promise((resolve, reject) => {
        const marks: Record<string, number> = {}
        const forward = new ClientNodePortForward(kc)
        const live = new Set<{ readonly socket: Net.Socket; ws: WsLike | undefined }>()
        const server = Net.createServer((socket) => {
          const entry: { readonly socket: Net.Socket; ws: WsLike | undefined } = { socket, ws: undefined }
          live.add(entry)
          socket.setNoDelay(true)
          socket.on("error", () => socket.destroy())
          socket.on("close", () => {
            live.delete(entry)
            entry.ws?.close()
          })
          forward.portForward(t.namespace, t.pod, [t.port], socket, null, socket).then(
            (ws) => {
              const w = ws as unknown as WsLike
              entry.ws = w
              w.on("close", () => socket.destroy())
              if (socket.destroyed) w.close()
            },
            () => socket.destroy()
          )
        })
        server.once("error", reject)
        server.listen({ host: "127.0.0.1", port: 0 }, () => {
          marks.listening = performance.now()
          resolve({
            port: (server.address() as Net.AddressInfo).port,
            hosts: ["127.0.0.1"],
            marks,
            kubectlPid: undefined,
            close: () =>
              new Promise<void>((res) => {
                for (const e of live) {
                  e.socket.destroy()
                  e.ws?.close()
                }
                server.close(() => res())
              }),
            exited: () => Promise.resolve()
          })
        })
      }),
    dispose: () => Promise.resolve()
  }
}
