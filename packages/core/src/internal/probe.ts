/**
 * The check connection: proves that a local port of a forward carries bytes to the pod.
 *
 * It connects, half-closes at once (sending FIN, no payload, so no protocol is spoken at the
 * pod), and waits until the pod's side answers: bytes (a server that speaks first) or the end
 * of the connection (the pod's server saw our FIN and closed). kubectl closes the local
 * connection only after the kubelet's error stream has ended, and it logs an error from that
 * stream before closing, so when the probe returns, any refusal by the pod has already been
 * written to kubectl's stderr.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Net from "node:net"

/** How the probe connection ended. */
export type ProbeOutcome = "data" | "closed"

/** The probe could not connect to the local listener at all. */
export interface ProbeFailure {
  readonly _tag: "ProbeFailure"
  readonly detail: string
}

/** The address to connect to for a listener bound at `address`. */
export const connectHost = (address: string): string => {
  if (address === "localhost" || address === "0.0.0.0") return "127.0.0.1"
  if (address === "::") return "::1"
  return address
}

/** Opens the check connection to `host:port`; interrupting it destroys the socket. */
export const probe = (host: string, port: number): Effect.Effect<ProbeOutcome, ProbeFailure> =>
  Effect.callback<ProbeOutcome, ProbeFailure>((resume) => {
    let connected = false
    let done = false
    const socket = Net.connect({ host: connectHost(host), port })
    const finish = (effect: Effect.Effect<ProbeOutcome, ProbeFailure>) => {
      if (done) return
      done = true
      socket.destroy()
      resume(effect)
    }
    socket.setNoDelay(true)
    socket.once("connect", () => {
      connected = true
      socket.end()
    })
    socket.once("data", () => finish(Effect.succeed("data")))
    socket.once("end", () => finish(Effect.succeed("closed")))
    socket.once("error", (error: NodeJS.ErrnoException) =>
      finish(
        connected
          ? Effect.succeed("closed")
          : Effect.fail({ _tag: "ProbeFailure", detail: `${error.code ?? "error"}: ${error.message}` })
      ))
    socket.once(
      "close",
      () =>
        finish(
          connected ? Effect.succeed("closed") : Effect.fail({ _tag: "ProbeFailure", detail: "connection closed" })
        )
    )
    return Effect.sync(() => {
      done = true
      socket.destroy()
    })
  })

/**
 * Lets pending I/O callbacks run: after this, every output kubectl wrote before an event we
 * already saw has been read into our line queues.
 */
export const ioBarrier: Effect.Effect<void> = Effect.callback<void>((resume) => {
  setImmediate(() => resume(Effect.void))
}).pipe(Effect.andThen(Effect.yieldNow))
