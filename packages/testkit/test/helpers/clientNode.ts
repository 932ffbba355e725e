/**
 * Test helpers for `@kubernetes/client-node`'s `PortForward` (the `v4.channel.k8s.io` WebSocket
 * protocol): a local TCP listener that forwards each accepted connection over its own WebSocket,
 * as a scoped resource, with its error-stream text observable by events.
 */
import * as K8s from "@kubernetes/client-node"
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import * as Stream from "node:stream"
import { Signal } from "./signal.ts"

/** What a {@link clientNodeForward} forwards to. */
export type ClientNodeTarget =
  | { readonly pod: string; readonly port: number }
  | { readonly service: string; readonly port: number }

/** A running client-node forward. */
export interface ClientNodeForward {
  /** The local port (127.0.0.1). */
  readonly port: number
  /**
   * Everything client-node reported: the text of the error channel (the kubelet message), and
   * the message of a `portForward` call that failed (e.g. `Unexpected server response: 404`).
   */
  readonly errors: ReadonlyArray<string>
  /** Waits for the first reported error (past or future) matching `re`. */
  readonly waitForError: (re: RegExp) => Effect.Effect<string>
}

const messageOf = (error: unknown): string => {
  // `ws` rejects the connect with an ErrorEvent-like object carrying `message` / `error`.
  if (typeof error === "object" && error !== null) {
    const { message, error: inner } = error as { message?: unknown; error?: unknown }
    if (typeof message === "string" && message !== "") return message
    if (inner instanceof Error) return inner.message
  }
  return String(error)
}

/**
 * A local TCP listener (127.0.0.1, random port) that forwards each connection through
 * client-node's `PortForward` (one WebSocket per connection, as client-node does). The
 * kubeconfig must have `insecure-skip-tls-verify: true` for an `http://` server (the fake
 * cluster's does). Closing the scope destroys the accepted sockets, terminates the WebSockets
 * and closes the listener.
 */
export const clientNodeForward = (
  kubeconfigPath: string,
  target: ClientNodeTarget
): Effect.Effect<ClientNodeForward, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<ClientNodeForward & { readonly close: () => Promise<void> }>((resolve) => {
        const kc = new K8s.KubeConfig()
        kc.loadFromFile(kubeconfigPath)
        const forward = new K8s.PortForward(kc)
        const errors: Array<string> = []
        const signal = new Signal()
        const report = (text: string) => {
          errors.push(text)
          signal.notify()
        }
        const sockets = new Set<Net.Socket>()
        const webSockets = new Set<{ terminate?: () => void; close: () => void }>()
        let closing = false
        const server = Net.createServer((socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          socket.on("error", () => socket.destroy())
          const err = new Stream.Writable({
            write(chunk, _encoding, callback) {
              // client-node strips the 2-byte port prefix and writes the empty rest here
              if (chunk.length > 0) report(String(chunk))
              callback()
            }
          })
          const started = "pod" in target ?
            forward.portForward("default", target.pod, [target.port], socket, err, socket) :
            forward.portForwardService("default", target.service, [target.port], socket, err, socket)
          started.then(
            (ws) => {
              const webSocket = ws as unknown as { terminate?: () => void; close: () => void }
              if (closing) return webSocket.terminate?.() ?? webSocket.close()
              webSockets.add(webSocket)
            },
            (error) => {
              report(messageOf(error))
              socket.destroy()
            }
          )
        })
        const waitForError = (re: RegExp) => signal.until(() => errors.find((e) => re.test(e)))
        const close = () =>
          new Promise<void>((done) => {
            closing = true
            for (const ws of webSockets) {
              if (ws.terminate !== undefined) ws.terminate()
              else ws.close()
            }
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
        server.listen(
          0,
          "127.0.0.1",
          () => resolve({ port: (server.address() as Net.AddressInfo).port, errors, waitForError, close })
        )
      })
    ),
    (forward) => Effect.promise(() => forward.close())
  )

/**
 * Writes `payload` without half-closing (client-node closes the WebSocket when its input ends)
 * and resolves with exactly `payload.length` bytes read back.
 */
export const echoExactly = (port: number, payload: Uint8Array): Effect.Effect<Buffer, Error> =>
  Effect.callback<Buffer, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    let received = 0
    socket.on("connect", () => socket.write(payload))
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received >= payload.length) {
        socket.destroy()
        resume(Effect.succeed(Buffer.concat(chunks)))
      }
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("close", () => resume(Effect.fail(new Error(`closed after ${received} bytes`))))
    return Effect.sync(() => socket.destroy())
  })
