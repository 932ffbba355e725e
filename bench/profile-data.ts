/**
 * Where the native carrier's CPU goes per MiB carried: one forward, N transfers of `--bytes` one
 * way (the load generator and the fake cluster in processes of their own, as in `npm run bench`),
 * under the V8 CPU profiler; then self time by function, per MiB. Not part of `npm run bench`; run
 * it by hand when working on the data path:
 *
 *   npx node --conditions=source bench/profile-data.ts upload|download [--native websocket|spdy]
 *     [--bytes N] [--reps N] [--out profile.cpuprofile]
 */
import { PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { Exit, ManagedRuntime, Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type Profile, profiled } from "./lib/cpuProfile.ts"
import { startHelper } from "./lib/ipc.ts"

const here = Path.dirname(fileURLToPath(import.meta.url))
const argValue = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback)
}
const direction = process.argv[2] === "upload" ? "upload" : "download"
const transport = argValue("--native", "websocket") as "websocket" | "spdy"
const bytes = Number(argValue("--bytes", String(128 * 1024 * 1024)))
const reps = Number(argValue("--reps", "3"))
const out = argValue("--out", "")

const server = await startHelper(Path.join(here, "server.ts"), ["--bytes", String(bytes)], ["--conditions=source"])
const loadgen = await startHelper(Path.join(here, "loadgen.ts"), ["--bytes", String(bytes)], ["--conditions=source"])
const hello = server.hello as { readonly kubeconfigPath: string }
if (transport === "spdy") await server.call("setTransport", "spdy-only")
const runtime = ManagedRuntime.make(NativeForwarder.layer({ kubeconfig: hello.kubeconfigPath, transport }))

interface Transfer {
  readonly ok: boolean
  readonly bytes: number
  readonly ms: number
}

const selfTimes = (profile: Profile): Map<string, number> => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined || frame.functionName === "(idle)") return
    const file = frame.url.split("/").slice(-2).join("/")
    const key = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  return self
}

try {
  const scope = await runtime.runPromise(Scope.make())
  const target = direction === "upload" ? { pod: "sink", port: 9001 } : { pod: "source", port: 9002 }
  const fwd = await runtime.runPromise(
    PortForward.make({ target: `pod/${target.pod}`, namespace: "default", ports: [target.port] }).pipe(
      Scope.provide(scope)
    )
  )
  const transfer = () => loadgen.call<Transfer>(direction, { host: "127.0.0.1", port: fwd.localPort, bytes })
  await transfer()
  const { cpu, profile, result: { mib, ms } } = await profiled(async () => {
    let mib = 0
    let ms = 0
    for (let i = 0; i < reps; i++) {
      const t = await transfer()
      if (!t.ok) throw new Error(`transfer ${i} failed`)
      mib += t.bytes / 1024 / 1024
      ms += t.ms
    }
    return { mib, ms }
  })
  if (out !== "") Fs.writeFileSync(out, JSON.stringify(profile))
  console.log(
    `native ${transport} ${direction}: ${(mib / (ms / 1000)).toFixed(0)} MiB/s, process CPU ${
      ((cpu.user + cpu.system) / 1000 / mib).toFixed(2)
    } ms/MiB (user ${(cpu.user / 1000 / mib).toFixed(2)}, system ${(cpu.system / 1000 / mib).toFixed(2)})`
  )
  console.log("\nself time, ms per MiB:")
  for (const [k, t] of [...selfTimes(profile)].sort((a, c) => c[1] - a[1]).slice(0, 25)) {
    console.log((t / 1000 / mib).toFixed(3).padStart(7), k)
  }
  await runtime.runPromise(Scope.close(scope, Exit.void))
} finally {
  await runtime.dispose()
  await loadgen.stop()
  await server.stop()
}
