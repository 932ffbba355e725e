/**
 * A fresh application process holding forwards of ONE contender, for what can only be measured
 * without the rest of the bench in the same process: memory per open forward (RSS after GC, with
 * the fixed cost of loading the library measured apart), and N forwards open at once (time, RSS,
 * what is left after close). The bench reads the processes it starts (kubectl, a watchdog) from
 * the outside and checks leftovers itself.
 *
 * Top-level imports are Node's and the IPC helper only, so that `hello` reports a bare Node
 * process; the contender's library is imported by `load`.
 *
 * argv: none; driven over IPC (lib/ipc.ts): load, openSeq, openAll, roundTrips, closeAll, memory.
 */
import { serve } from "./lib/ipc.ts"

type Kind = "native-tunnel" | "native-spdy" | "kube-forward" | "kubectl" | "client-node"

interface Settings {
  readonly kubectl: string
  readonly kubeconfigPath: string
  readonly cacheDir: string
}
interface Target {
  readonly pod: string
  readonly port: number
  readonly namespace: string
}
interface Opened {
  readonly port: number
  readonly close: () => Promise<void>
  readonly exited: () => Promise<void>
}
interface Contender {
  readonly verifies: boolean
  readonly open: (t: Target) => Promise<Opened>
  readonly openMany?: (
    t: Target,
    n: number,
    strategy: "sequential" | "parallel"
  ) => Promise<{ readonly ports: ReadonlyArray<number>; readonly close: () => Promise<void> }>
  readonly dispose: () => Promise<void>
}

/** Memory after two full collections (`--expose-gc`), in KiB. */
export interface Memory {
  readonly rssKiB: number
  readonly heapUsedKiB: number
  readonly externalKiB: number
}

const gc = (globalThis as { gc?: () => void }).gc
const settle = () => new Promise((resolve) => setTimeout(resolve, 50))
const memory = async (): Promise<Memory> => {
  await settle()
  gc?.()
  gc?.()
  const m = process.memoryUsage()
  return { rssKiB: m.rss / 1024, heapUsedKiB: m.heapUsed / 1024, externalKiB: m.external / 1024 }
}

let contender: Contender | undefined
let roundTrip: ((port: number) => Promise<void>) | undefined
const forwards: Array<Opened> = []
let many: { readonly ports: ReadonlyArray<number>; readonly close: () => Promise<void> } | undefined

const build = async (kind: Kind, s: Settings): Promise<Contender> => {
  switch (kind) {
    case "native-tunnel":
    case "native-spdy": {
      const { native } = await import("./lib/contenders/native.ts")
      return native(kind, kind, s, kind === "native-spdy" ? "spdy" : "websocket")
    }
    case "kube-forward": {
      const { kubeForward } = await import("./lib/contenders/kubeForward.ts")
      return kubeForward(kind, kind, s, false)
    }
    case "kubectl": {
      const { rawKubectl } = await import("./lib/contenders/kubectl.ts")
      return rawKubectl(kind, kind, s)
    }
    case "client-node": {
      const { clientNode } = await import("./lib/contenders/clientNode.ts")
      return clientNode(kind, kind, s)
    }
  }
}

const the = (): Contender => {
  if (contender === undefined) throw new Error("load first")
  return contender
}

/** Imports and builds the contender, then opens, uses and closes one forward (JIT, lazy loading). */
const load = async (args: { readonly kind: Kind; readonly settings: Settings; readonly target: Target }) => {
  const t0 = performance.now()
  contender = await build(args.kind, args.settings)
  roundTrip = (await import("./lib/contenders/common.ts")).echoRoundTrip
  const o = await contender.open(args.target)
  await roundTrip(o.port)
  await o.close()
  await o.exited()
  return { loadMs: performance.now() - t0, memory: await memory() }
}

/** `n` forwards one after another, each carrying one echo round trip. */
const openSeq = async (args: { readonly n: number; readonly target: Target }) => {
  const t0 = performance.now()
  for (let i = 0; i < args.n; i++) {
    const o = await the().open(args.target)
    forwards.push(o)
    await roundTrip!(o.port)
  }
  return { ms: performance.now() - t0, ports: forwards.map((o) => o.port), memory: await memory() }
}

/**
 * `n` forwards at once: kube-forward's kinds in one scope (`Effect.forEach`, unbounded), the
 * others with `Promise.allSettled` (each followed by an echo round trip when it does not verify).
 */
const openAll = async (
  args: { readonly n: number; readonly target: Target; readonly strategy?: "sequential" | "parallel" }
) => {
  const c = the()
  const t0 = performance.now()
  let failed = 0
  let firstError: string | undefined
  if (c.openMany !== undefined) {
    many = await c.openMany(args.target, args.n, args.strategy ?? "parallel")
  } else {
    const settled = await Promise.allSettled(Array.from({ length: args.n }, async () => {
      const o = await c.open(args.target)
      forwards.push(o)
      if (!c.verifies) await roundTrip!(o.port)
    }))
    for (const r of settled) {
      if (r.status === "fulfilled") continue
      failed++
      firstError ??= String(r.reason instanceof Error ? r.reason.message : r.reason)
    }
  }
  const ms = performance.now() - t0
  return { ms, failed, firstError, ports: ports(), memory: await memory() }
}

const ports = (): Array<number> => [...(many?.ports ?? []), ...forwards.map((o) => o.port)]

/** One echo round trip through every open forward, `concurrency` at a time. */
const roundTrips = async (args: { readonly concurrency: number }) => {
  const all = ports()
  const t0 = performance.now()
  let ok = 0
  let firstError: string | undefined
  let next = 0
  const worker = async () => {
    while (next < all.length) {
      const port = all[next++]
      try {
        await roundTrip!(port)
        ok++
      } catch (e) {
        firstError ??= e instanceof Error ? e.message : String(e)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(args.concurrency, all.length) }, worker))
  return { ok, failed: all.length - ok, firstError, ms: performance.now() - t0 }
}

/** Closes everything open at once; the time until every close returned. */
const closeAll = async () => {
  const t0 = performance.now()
  const closing = forwards.splice(0)
  await Promise.all([...(many === undefined ? [] : [many.close()]), ...closing.map((o) => o.close())])
  many = undefined
  const ms = performance.now() - t0
  await Promise.all(closing.map((o) => o.exited()))
  return { ms, memory: await memory() }
}

const bare = await memory()
serve({ bare }, { load, openSeq, openAll, roundTrips, closeAll, memory }, async () => {
  await closeAll().catch(() => {})
  await contender?.dispose()
})
