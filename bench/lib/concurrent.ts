/**
 * Many connections on ONE forward at once: half uploads, half downloads, each with bytes of its
 * own, every one checked (count and CRC-32) on its own, and the fake server's counters checked
 * for how many sessions carried them.
 */
import type { Contender } from "./contenders/common.ts"
import { type Bench, type Counters, errorText, pods } from "./context.ts"
import type { ConcurrentResult } from "./results.ts"

interface Concurrent {
  readonly connections: number
  readonly bytesPerConnection: number
  readonly ok: number
  readonly ms: number
  readonly failures: ReadonlyArray<string>
}

/** A contender, the server transport it runs against, and the session kind that must carry it. */
export interface ConcurrentCase {
  readonly contender: Contender
  readonly transport: "tunnel" | "spdy-only"
  /** `undefined`: no forward (direct), no session at all. */
  readonly session: "tunnel" | "spdy" | "websocket" | undefined
  /** How many sessions carry N connections: one, or one per connection (client-node). */
  readonly sessionsPer: "forward" | "connection"
}

const sessionsOk = (c: ConcurrentCase, n: number, counters: Counters): boolean => {
  const total = Object.values(counters.sessions).reduce((a, x) => a + x, 0)
  if (c.session === undefined) return total === 0
  const expected = c.sessionsPer === "forward" ? 1 : n
  return counters.sessions[c.session] === expected && total === expected && counters.connections >= n
}

/** Runs one case: a fresh forward to the sink pod (its server takes uploads and downloads alike). */
const runCase = async (b: Bench, c: ConcurrentCase): Promise<ConcurrentResult> => {
  const n = b.settings.concurrentConnections
  const base = { contender: c.contender.id, transport: c.transport, connections: n }
  await b.server.call("setTransport", c.transport)
  await b.server.call("resetCounters")
  const opened = c.contender.carrier === "none" ? undefined : await c.contender.open(pods.sink)
  try {
    const direct = b.hello.sink
    const r = await b.loadgen.call<Concurrent>("concurrent", {
      host: opened?.hosts[0] ?? direct.host,
      port: opened?.port ?? direct.port,
      connections: n,
      bytes: b.settings.concurrentBytes
    })
    const counters = await b.server.call<Counters>("counters")
    const agree = sessionsOk(c, n, counters)
    const ok = r.ok === n && agree
    if (!ok) {
      b.errors.push(
        `concurrent ${c.contender.id}: ${r.ok}/${n} identical, sessions ${
          JSON.stringify(counters.sessions)
        }, ${counters.connections} connections; ${r.failures.join("; ")}`
      )
    }
    b.log(`concurrent ${c.contender.id}: ${r.ok}/${n} identical in ${r.ms.toFixed(0)} ms`)
    return {
      ...base,
      ok,
      bytesPerConnection: r.bytesPerConnection,
      identical: r.ok,
      ms: r.ms,
      failures: r.failures,
      sessions: counters.sessions,
      serverConnections: counters.connections
    }
  } catch (e) {
    b.errors.push(`concurrent ${c.contender.id}: ${errorText(e)}`)
    return {
      ...base,
      ok: false,
      error: errorText(e),
      bytesPerConnection: 0,
      identical: 0,
      ms: Number.NaN,
      failures: []
    }
  } finally {
    if (opened !== undefined) {
      await opened.close().catch(() => {})
      await opened.exited().catch(() => {})
    }
    await b.server.call("setTransport", "tunnel")
  }
}

export const runConcurrent = async (
  b: Bench,
  cases: ReadonlyArray<ConcurrentCase>
): Promise<Array<ConcurrentResult>> => {
  const out: Array<ConcurrentResult> = []
  for (const c of cases) out.push(await runCase(b, c))
  return out
}
