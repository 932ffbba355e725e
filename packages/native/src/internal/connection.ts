/**
 * A local connection carried on a stream pair, and the check connection of a forward.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as Net from "node:net"
import type { PairEvents } from "./session.ts"

/** How much the pod may have sent that the local reader has not taken yet, before the session waits. */
const HIGH_WATER = 256 * 1024

/** What the owner of a connection does with it (a `Pair` of a session). */
export interface PairHandle {
  readonly write: (bytes: Buffer) => boolean
  readonly end: () => void
  readonly reset: () => void
  readonly drained: () => void
}

/** Where a connection's streams are opened (one pod's session, or one of several). */
export type Opener = (events: PairEvents) => PairHandle

/** A connection that cannot be carried at all: it fails as soon as it is opened. */
export const failedPair = (events: PairEvents, reason: string): PairHandle => {
  queueMicrotask(() => events.onFail(reason, false))
  return { write: () => true, end: () => {}, reset: () => {}, drained: () => {} }
}

/**
 * Carries `socket` (accepted paused) on a new stream pair: bytes both ways, half-closes both
 * ways, backpressure both ways. A failure of this connection ends this socket only and is
 * reported (`onFail`); the end of the whole session closes the socket without a report (the
 * forward reports its loss once, as `ended`).
 */
export const carry = (socket: Net.Socket, open: Opener, onFail: (reason: string) => void): void => {
  socket.setNoDelay(true)
  socket.on("error", () => {})
  // the frames of one read of the session leave in one writev: corked until the read is done
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  const pair = open({
    onReady: () => socket.resume(),
    onData: (bytes) => {
      if (!corked) {
        corked = true
        socket.cork()
        queueMicrotask(uncork)
      }
      socket.write(bytes)
      return socket.writableLength < HIGH_WATER
    },
    onEnd: () => socket.end(),
    onFail: (reason, lost) => {
      socket.destroy()
      if (!lost) onFail(reason)
    },
    onWritable: () => {
      if (!socket.destroyed) socket.resume()
    }
  })
  socket.on("data", (chunk: Buffer) => {
    if (!pair.write(chunk)) socket.pause()
  })
  socket.on("end", () => pair.end())
  socket.on("drain", () => pair.drained())
  socket.on("close", () => pair.reset())
}

/** How a check connection ended badly. */
export interface CheckFailure {
  readonly reason: string
}

/**
 * The check connection, on the session itself: a stream pair that half-closes at once (no
 * payload, so no protocol is spoken at the pod) and waits for the pod's side — bytes, or its
 * end. The kubelet's text on the error stream (nothing listens there, say) is the failure.
 */
export const check = (open: Opener): Effect.Effect<void, CheckFailure> =>
  Effect.callback<void, CheckFailure>((resume) => {
    let settled = false
    const settle = (effect: Effect.Effect<void, CheckFailure>) => {
      if (settled) return
      settled = true
      resume(effect)
    }
    const pair = open({
      onReady: () => pair.end(),
      onData: () => {
        settle(Effect.void)
        queueMicrotask(() => pair.reset())
        return true
      },
      onEnd: () => {},
      onFail: (reason) => settle(Effect.fail({ reason })),
      onWritable: () => {},
      onClosed: () => settle(Effect.void)
    })
    return Effect.sync(() => pair.reset())
  })
