/**
 * A small TCP client for tests of forwards: send some bytes through a local port, half-close,
 * and collect everything that comes back — what a forward to an echo backend returns, or what
 * a server that speaks first says.
 *
 * @example
 * ```ts
 * import { TcpClient } from "@kube-forward/testkit"
 *
 * const echoed = yield* TcpClient.roundTrip(fwd.localPort, "hello")
 * assert.strictEqual(echoed.toString(), "hello")
 * ```
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import * as Net from "node:net"

/**
 * Connects to `host:port`, writes `payload`, half-closes, and succeeds with every byte that came
 * back once the other side has ended too. Fails with the socket's error; interrupting it
 * destroys the socket.
 *
 * @category clients
 * @since 0.2.0
 */
export const roundTrip = (
  port: number,
  payload: Uint8Array | string,
  host = "127.0.0.1"
): Effect.Effect<Buffer, Error> =>
  Effect.callback<Buffer, Error>((resume) => {
    const chunks: Array<Buffer> = []
    const socket = Net.connect({ host, port }, () => {
      socket.end(payload)
    })
    socket.on("data", (d) => chunks.push(d))
    socket.once("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
    socket.once("error", (e) => resume(Effect.fail(e)))
    return Effect.sync(() => socket.destroy())
  })
