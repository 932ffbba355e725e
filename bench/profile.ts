/**
 * Where kube-forward's own CPU goes per forward: N × (`PortForward.make` + close) against the
 * bench's fake cluster under the V8 CPU profiler, then self time grouped by package and the
 * inclusive time of the interesting functions, per forward. Not part of `npm run bench`; run it
 * by hand when looking at the library's overhead:
 *
 *   npx node --conditions=source bench/profile.ts [N=100] [--native websocket|spdy] [--out profile.cpuprofile]
 *
 * `--native` profiles the native carrier (`NativeForwarder.layer`) instead of the kubectl one.
 */
import { PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import * as KubectlBinaries from "@kube-forward/testkit/KubectlBinaries"
import { Effect, Exit, ManagedRuntime, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type CallFrame, profiled } from "./lib/cpuProfile.ts"
import { startHelper } from "./lib/ipc.ts"
import { sleep } from "./lib/proc.ts"

const here = Path.dirname(fileURLToPath(import.meta.url))
const n = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 100)
const outIndex = process.argv.indexOf("--out")
const out = outIndex === -1 ? undefined : process.argv[outIndex + 1]
const nativeIndex = process.argv.indexOf("--native")
const nativeTransport = nativeIndex === -1 ? undefined : (process.argv[nativeIndex + 1] ?? "websocket") as
  | "websocket"
  | "spdy"

const kubectl = await Effect.runPromise(KubectlBinaries.find("1.33"))
const server = await startHelper(Path.join(here, "server.ts"), ["--bytes", "1024"], ["--conditions=source"])
const hello = server.hello as { readonly kubeconfigPath: string; readonly cacheDir: string }
if (nativeTransport === "spdy") await server.call("setTransport", "spdy-only")
const runtime = ManagedRuntime.make(
  nativeTransport === undefined
    ? PortForward.layer({
      binary: kubectl.path,
      kubeconfig: hello.kubeconfigPath,
      env: { KUBECACHEDIR: hello.cacheDir }
    })
    : NativeForwarder.layer({ kubeconfig: hello.kubeconfigPath, transport: nativeTransport })
)
const cycle = async () => {
  const scope = await runtime.runPromise(Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* PortForward.make({ target: "pod/echo", namespace: "default", ports: [7] }).pipe(Scope.provide(scope))
    return scope
  }))
  await runtime.runPromise(Scope.close(scope, Exit.void))
}

try {
  for (let i = 0; i < 5; i++) await cycle()
  const { cpu, profile, result: wall } = await profiled(async () => {
    let wall = 0
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      await cycle()
      wall += performance.now() - t0
      await sleep(5)
    }
    return wall
  })
  if (out !== undefined) Fs.writeFileSync(out, JSON.stringify(profile))

  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id)
  const sampleTime = new Map<number, number>()
  profile.samples.forEach((id, i) => sampleTime.set(id, (sampleTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const bucket = (frame: CallFrame): string => {
    if (frame.url === "") return frame.functionName || "(native)"
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url)
    if (pkg !== null) return pkg[1]
    const own = /\/packages\/(core|native|protocol)\/src\/(.*)$/.exec(frame.url)
    if (own !== null) return `kube-forward ${own[1]}/${own[2]}`
    if (frame.url.startsWith("node:")) return frame.url
    return frame.url.split("/").slice(-2).join("/")
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, t] of sampleTime) {
    const node = byId.get(id)
    if (node === undefined || node.callFrame.functionName === "(idle)") continue
    const b = bucket(node.callFrame)
    self.set(b, (self.get(b) ?? 0) + t)
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame
      if (frame === undefined) break
      const key = `${frame.functionName || "(anonymous)"} [${bucket(frame)}]`
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + t)
    }
  }
  const per = (us: number) => (us / 1000 / n).toFixed(3).padStart(8)
  console.log(
    `${n} × (make + close) on ${
      nativeTransport === undefined ? "kubectl" : `native (${nativeTransport})`
    }: process CPU ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms, wall ${(wall / n).toFixed(2)} ms per forward`
  )
  console.log("\nself time per forward (ms), by package:")
  for (const [b, t] of [...self].sort((a, c) => c[1] - a[1]).slice(0, 20)) console.log(per(t), b)
  console.log("\ninclusive time per forward (ms), selected functions:")
  const interesting =
    /execa|spawn|normalizeOptions|handleStdio|signal-exit|cleanupOnExit|guard|release|probe|reapGroup|isGroupAlive|decode|runAttempt|kill|upgrade|resolve|getJson|applyToHTTPSOptions|request|check|bind|listen|verify|Session/i
  for (const [k, t] of [...inclusive].filter(([k]) => interesting.test(k)).sort((a, c) => c[1] - a[1]).slice(0, 25)) {
    console.log(per(t), k)
  }
} finally {
  await runtime.dispose()
  await server.stop()
}
