/**
 * The benchmark itself (started by bench/run.ts, which checks for leaks after it exits).
 *
 * Processes: this one hosts the libraries under test (kube-forward's Effect runtime on either
 * carrier, xec, client-node's forwarder) like an application would; bench/server.ts runs the fake
 * cluster; bench/loadgen.ts is the client at the local end of every throughput forward;
 * bench/host.ts is a fresh application process per memory and scale measurement. kubectl is
 * always its own process.
 *
 * Flags: --quick, --runs N, --mib N, --reps N, --kubectl-version 1.33, --spdy-kubectl-version 1.30,
 * --ab DIR (the older revision for the A/B, prepared by bench/ab.ts; default: its usual directory
 * when prepared), --no-ab, --out DIR, --simulate-leak (leaves a detached child behind, to see
 * bench/run.ts fail).
 */
import * as Processes from "@kube-forward/testkit/Processes"
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { preparedCommit } from "./lib/abCheckout.ts"
import { type ConcurrentCase, runConcurrent } from "./lib/concurrent.ts"
import { abKubeForward } from "./lib/contenders/ab.ts"
import { clientNode } from "./lib/contenders/clientNode.ts"
import { type Contender, kubeForwardArgs, type Settings as ContenderSettings } from "./lib/contenders/common.ts"
import { direct } from "./lib/contenders/direct.ts"
import { rawKubectl } from "./lib/contenders/kubectl.ts"
import { kubeForward } from "./lib/contenders/kubeForward.ts"
import { native } from "./lib/contenders/native.ts"
import { xec } from "./lib/contenders/xec.ts"
import { type Bench, errorText, MiB, pods, type ServerHello } from "./lib/context.ts"
import { type HostPlan, runHost } from "./lib/hosts.ts"
import { startHelper } from "./lib/ipc.ts"
import { findKubectl, machineInfo } from "./lib/machine.ts"
import { readyRounds } from "./lib/ready.ts"
import { writeReport } from "./lib/report.ts"
import type { KubectlInfo, MemoryResult, Results, ScaleResult, Settings } from "./lib/results.ts"
import { type Row, runThroughput } from "./lib/throughput.ts"

const started = performance.now()
const here = Path.dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
const quick = argv.includes("--quick")
const settings: Settings = {
  readyRuns: Number(flag("--runs") ?? (quick ? 4 : 60)),
  warmups: quick ? 1 : 2,
  bytes: Number(flag("--mib") ?? (quick ? 16 : 256)) * MiB,
  reps: Number(flag("--reps") ?? (quick ? 1 : 5)),
  memoryN: quick ? 4 : 20,
  memoryInProcessN: quick ? 50 : 200,
  scaleN: quick ? 10 : 50,
  scaleInProcessN: quick ? 200 : 1000,
  concurrentConnections: 100,
  concurrentBytes: quick ? 256 * 1024 : 2 * MiB
}
const outDir = flag("--out") ?? (quick ? Path.join(here, "out") : here)
const statePath = process.env.KUBE_FORWARD_BENCH_STATE
const errors: Array<string> = []
const log = (...parts: ReadonlyArray<unknown>) =>
  console.log(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s]`, ...parts)

/** The older revision of the A/B: `--ab DIR`, else bench/ab.ts's usual directory when it is prepared. */
const abDir = (): string | undefined => {
  if (argv.includes("--no-ab")) return undefined
  const dir = flag("--ab") ?? Path.join(Os.tmpdir(), "kube-forward-ab-034d034")
  if (preparedCommit(dir) !== undefined) return dir
  if (flag("--ab") !== undefined) throw new Error(`${dir} is not prepared: run node bench/ab.ts --dir ${dir}`)
  return undefined
}

/** Every process this bench started (helpers, hosts, kube-forward's watchdogs): all must be gone after it exits. */
const tracked = new Map<number, string>()
const stateExtra: Record<string, unknown> = {}

const commandOf = (pid: number): string => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").join(" ").trim().slice(0, 200)
  } catch {
    return ""
  }
}

/** Tells bench/run.ts what must be gone after this process exits, even if it is interrupted. */
const writeState = (kubeconfigPath: string, pids: ReadonlyArray<number>, extra: Record<string, unknown> = {}) => {
  for (const pid of pids) if (!tracked.has(pid)) tracked.set(pid, commandOf(pid))
  Object.assign(stateExtra, extra)
  if (statePath === undefined) return
  const children = [...tracked].map(([pid, args]) => ({ pid, args }))
  Fs.writeFileSync(statePath, JSON.stringify({ ...stateExtra, kubeconfigPath, children, errors }))
}

interface Contenders {
  readonly nativeTunnel: Contender
  readonly nativeSpdy: Contender
  readonly kf: ReturnType<typeof kubeForward>
  readonly kfi: ReturnType<typeof kubeForward>
  readonly ab: Contender | undefined
  readonly raw: Contender
  readonly rawSpdy: Contender | undefined
  readonly x: Contender
  readonly cn: Contender
  readonly direct: Contender
}

const buildContenders = async (
  s: ContenderSettings,
  hello: ServerHello,
  xecHosts: ReadonlyArray<string>,
  kubectlSpdy: KubectlInfo | undefined,
  ab: { readonly dir: string; readonly commit: string } | undefined
): Promise<Contenders> => ({
  nativeTunnel: native("native-tunnel", "kube-forward native, WebSocket tunnel", s, "websocket"),
  nativeSpdy: native("native-spdy", "kube-forward native, SPDY/3.1", s, "spdy"),
  kf: kubeForward("kube-forward", "kube-forward on kubectl (`PortForward.layer`)", s, false),
  kfi: kubeForward("kube-forward-instrumented", "kube-forward on kubectl, instrumented Kubectl layer", s, true),
  ab: ab === undefined
    ? undefined
    : await abKubeForward(
      `kube-forward@${ab.commit.slice(0, 7)}`,
      `kube-forward on kubectl at ${ab.commit.slice(0, 7)} (before the core reshape)`,
      s,
      ab.dir
    ),
  raw: rawKubectl("kubectl", "raw `kubectl port-forward`", s),
  rawSpdy: kubectlSpdy === undefined
    ? undefined
    : rawKubectl("kubectl-spdy", `raw kubectl ${kubectlSpdy.gitVersion} (SPDY client)`, s, kubectlSpdy.path),
  x: xec("xec", "@xec-sh/core 0.9.0 `portForward`", s, xecHosts),
  cn: clientNode("client-node", "@kubernetes/client-node 2.0.1 `PortForward` + net.Server", s),
  direct: direct(
    "direct",
    "direct loopback (no forward)",
    (t) => t.pod === "echo" ? hello.echo : t.pod === "source" ? hello.source : hello.sink
  )
})

const throughputRows = (c: Contenders, kubectl: KubectlInfo, kubectlSpdy: KubectlInfo | undefined): Array<Row> => {
  const both = ["upload", "download"] as const
  const v = kubectl.gitVersion
  const row = (
    id: string,
    label: string,
    driver: Contender | undefined,
    transport: Row["transport"],
    expectSession: Row["expectSession"],
    baseline?: string
  ): Row => ({
    id,
    label,
    contender: driver?.id ?? "direct",
    driver,
    transport,
    expectSession,
    kubectl: driver?.carrier === "kubectl" ? v : null,
    directions: both,
    ...(baseline === undefined ? {} : { baseline })
  })
  return [
    row("direct", "direct loopback (no forward)", undefined, "tunnel", null),
    row(
      "native/tunnel",
      "kube-forward native (WebSocket tunnel)",
      c.nativeTunnel,
      "tunnel",
      "tunnel",
      "kubectl/tunnel"
    ),
    row("native/spdy", "kube-forward native (SPDY/3.1)", c.nativeSpdy, "spdy-only", "spdy", "kubectl/spdy-only"),
    row("kubectl/tunnel", `raw kubectl ${v}`, c.raw, "tunnel", "tunnel"),
    row("kube-forward/tunnel", `kube-forward on kubectl ${v}`, c.kf, "tunnel", "tunnel", "kubectl/tunnel"),
    row("client-node/websocket", "client-node PortForward", c.cn, "tunnel", "websocket", "kubectl/tunnel"),
    row("kubectl/spdy-only", `raw kubectl ${v}`, c.raw, "spdy-only", "spdy"),
    ...(quick ? [] : [
      row("xec/tunnel", `xec (kubectl ${v})`, c.x, "tunnel", "tunnel", "kubectl/tunnel"),
      row("kube-forward/spdy-only", `kube-forward on kubectl ${v}`, c.kf, "spdy-only", "spdy", "kubectl/spdy-only"),
      ...(c.rawSpdy === undefined || kubectlSpdy === undefined
        ? []
        : [row("kubectl-old/spdy", `raw kubectl ${kubectlSpdy.gitVersion}`, c.rawSpdy, "tunnel", "spdy")]),
      {
        ...row(
          "kubectl/tunnel/testkit-source",
          `raw kubectl ${v} ← testkit \`Backend.source\``,
          c.raw,
          "tunnel",
          "tunnel"
        ),
        directions: ["download" as const],
        tkSource: true
      }
    ])
  ]
}

const concurrentCases = (c: Contenders): Array<ConcurrentCase> => [
  { contender: c.direct, transport: "tunnel", session: undefined, sessionsPer: "forward" },
  { contender: c.nativeTunnel, transport: "tunnel", session: "tunnel", sessionsPer: "forward" },
  { contender: c.nativeSpdy, transport: "spdy-only", session: "spdy", sessionsPer: "forward" },
  { contender: c.raw, transport: "tunnel", session: "tunnel", sessionsPer: "forward" },
  { contender: c.cn, transport: "tunnel", session: "websocket", sessionsPer: "connection" }
]

/** Memory, then N at once, in a fresh process per contender: in-process carriers with many forwards, kubectl ones with few. */
const hostRuns = async (b: Bench) => {
  const plans: ReadonlyArray<HostPlan> = [
    { kind: "native-tunnel", memoryN: settings.memoryInProcessN, scale: [{ n: settings.scaleInProcessN }] },
    ...(quick ? [] : [
      { kind: "native-spdy" as const, memoryN: settings.memoryInProcessN, scale: [{ n: settings.scaleInProcessN }] },
      { kind: "client-node" as const, memoryN: settings.memoryInProcessN, scale: [{ n: settings.scaleInProcessN }] }
    ]),
    {
      kind: "kube-forward",
      memoryN: settings.memoryN,
      scale: [
        ...(quick ? [] : [{ n: settings.scaleN, strategy: "sequential" as const }]),
        { n: settings.scaleN, strategy: "parallel" as const }
      ]
    },
    ...(quick ? [] : [{ kind: "kubectl" as const, memoryN: settings.memoryN, scale: [{ n: settings.scaleN }] }])
  ]
  const memory: Array<MemoryResult> = []
  const scale: Array<ScaleResult> = []
  for (const plan of plans) {
    const r = await runHost(b, plan)
    memory.push(...r.memory)
    scale.push(...r.scale)
  }
  return { memory, scale }
}

/** Ends every `kubectl port-forward` of the bench cluster still alive; their pids. */
const killPortForwards = (kubeconfigPath: string): Array<number> =>
  Processes.portForwards(kubeconfigPath).map((p) => {
    try {
      process.kill(p.pid, "SIGKILL")
    } catch {
      // gone
    }
    return p.pid
  })

/** The fake cluster and the load generator, and what an interruption must clean up. */
const startHelpers = async (execArgv: ReadonlyArray<string>) => {
  const args = ["--bytes", String(settings.bytes)]
  const server = await startHelper(Path.join(here, "server.ts"), args, execArgv)
  const hello = server.hello as ServerHello
  // interrupted: end every kubectl of ours (the helpers leave when their IPC channel closes)
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killPortForwards(hello.kubeconfigPath)
      process.exit(130)
    })
  }
  const loadgen = await startHelper(Path.join(here, "loadgen.ts"), args, execArgv).catch(async (e: unknown) => {
    await server.stop()
    throw e
  })
  writeState(hello.kubeconfigPath, [server.pid, loadgen.pid])
  return { server, hello, loadgen }
}

/** Checks (once the warm-up made kube-forward spawn kubectl) that raw kubectl gets exactly kube-forward's argv. */
const checkArgv = (c: Contenders, s: ContenderSettings): Results["argvCheck"] => {
  // the Kubectl layer puts its global flags (--kubeconfig=…) in front of what the library asks for
  const kubeForward = [`--kubeconfig=${s.kubeconfigPath}`, ...(c.kfi.spawnedArgs[0] ?? [])]
  const raw = kubeForwardArgs(s, pods.echo)
  const same = JSON.stringify(kubeForward) === JSON.stringify(raw)
  if (!same) errors.push(`raw kubectl argv differs from kube-forward's: ${JSON.stringify({ kubeForward, raw })}`)
  log("warm-up done; argv identical:", same)
  return { kubeForward, raw, same }
}

/** Every section, in order: time to ready and close, throughput, concurrency, then memory and scale. */
const measure = async (b: Bench, c: Contenders, kubectl: KubectlInfo, kubectlSpdy: KubectlInfo | undefined) => {
  const readyContenders = [c.nativeTunnel, c.nativeSpdy, c.kf, c.kfi, c.ab, c.raw, c.x, c.cn, c.direct].filter((
    x
  ): x is Contender => x !== undefined)
  // fill kubectl's discovery cache first, so no contender's first run pays for it
  execFileSync(kubectl.path, [`--kubeconfig=${b.s.kubeconfigPath}`, "get", "pods", "-o", "name"], {
    env: { ...process.env, KUBECACHEDIR: b.s.cacheDir },
    stdio: "ignore"
  })
  let argvCheck: Results["argvCheck"] = { kubeForward: [], raw: [], same: false }
  const ready = await readyRounds(b, readyContenders, c.kfi, () => {
    argvCheck = checkArgv(c, b.s)
    writeState(b.s.kubeconfigPath, Processes.descendants(process.pid))
  })
  const rows = throughputRows(c, kubectl, kubectlSpdy)
  const throughput = await runThroughput(b, rows)
  const concurrent = await runConcurrent(b, concurrentCases(c))
  const { memory, scale } = await hostRuns(b)
  return {
    argvCheck,
    ready: ready.ready,
    cold: ready.cold,
    watchdogCpuPerForwardMs: ready.watchdogCpuPerForwardMs,
    throughputRows: rows.map(({ driver: _d, tkSource: _t, ...r }) => r),
    throughput,
    concurrent,
    memory,
    scale
  }
}

const main = async () => {
  const loadAvgStart = Os.loadavg()
  Fs.mkdirSync(outDir, { recursive: true })
  const execArgv = ["--conditions=source"]
  log(
    `mode ${quick ? "quick" : "full"}: ${settings.readyRuns} ready rounds, ${
      settings.bytes / MiB
    } MiB × ${settings.reps} reps`
  )
  const kubectl = await findKubectl(flag("--kubectl-version") ?? "1.33")
  if (kubectl === undefined) throw new Error("no kubectl 1.33 found (KubectlBinaries.find)")
  const kubectlSpdy = quick ? undefined : await findKubectl(flag("--spdy-kubectl-version") ?? "1.30")
  log(`kubectl ${kubectl.gitVersion} at ${kubectl.path}; SPDY-only client ${kubectlSpdy?.gitVersion ?? "none"}`)
  const dir = abDir()
  const ab = dir === undefined ? undefined : { dir, commit: preparedCommit(dir)! }
  const { server, hello, loadgen } = await startHelpers(execArgv)
  const kubeconfigPath = hello.kubeconfigPath
  log(
    `fake cluster pid ${server.pid}, load generator pid ${loadgen.pid}${
      ab === undefined ? "" : `; A/B against ${ab.dir}`
    }`
  )
  const disposers: Array<() => Promise<void>> = []
  try {
    // xec hands kubectl this process's environment: the discovery cache goes there for everyone
    process.env.KUBECACHEDIR = hello.cacheDir
    const s: ContenderSettings = { kubectl: kubectl.path, kubeconfigPath, cacheDir: hello.cacheDir }
    const machine0 = await machineInfo(here, loadAvgStart, hello.patternMs, hello.patternBytes)
    const track = (pid: number) => writeState(kubeconfigPath, [pid])
    const b: Bench = { quick, settings, s, server, hello, loadgen, here, execArgv, errors, log, track }
    const xecHosts = machine0.ipv6Loopback ? ["127.0.0.1", "::1"] : ["127.0.0.1"]
    const c = await buildContenders(s, hello, xecHosts, kubectlSpdy, ab)
    const all = [c.nativeTunnel, c.nativeSpdy, c.kf, c.kfi, c.ab, c.raw, c.rawSpdy, c.x, c.cn, c.direct].filter((
      x
    ): x is Contender => x !== undefined)
    for (const x of all) disposers.push(x.dispose)
    const measured = await measure(b, c, kubectl, kubectlSpdy)
    const leaksAtEnd = Processes.portForwards(kubeconfigPath).map((p) => `${p.pid} ${p.args}`)
    if (leaksAtEnd.length > 0) errors.push(`${leaksAtEnd.length} kubectl port-forward processes alive at the end`)
    const results: Results = {
      mode: quick ? "quick" : "full",
      machine: { ...machine0, loadAvgEnd: Os.loadavg() },
      kubectl,
      kubectlSpdy,
      settings,
      ab,
      contenders: all.map((x) => ({ id: x.id, label: x.label, carrier: x.carrier, verifies: x.verifies })),
      ...measured,
      leaksAtEnd,
      errors,
      durationMs: performance.now() - started
    }
    const written = writeReport(results, { benchDir: here, outDir })
    for (const w of written.warnings) errors.push(w)
    log(`wrote ${written.files.map((f) => Path.relative(process.cwd(), f)).join(", ")}`)
    writeState(kubeconfigPath, [], { resultsMd: written.markdown, resultsJson: written.json })
  } finally {
    for (const d of disposers) await d().catch((e: unknown) => errors.push(`dispose: ${errorText(e)}`))
    await loadgen.stop()
    await server.stop()
    for (const pid of killPortForwards(kubeconfigPath)) errors.push(`killed leftover kubectl ${pid}`)
    if (argv.includes("--simulate-leak")) {
      // a self-test of the leak check: a detached child that outlives this process
      spawn("sleep", ["30"], { detached: true, stdio: "ignore" }).unref()
    }
    finalState(kubeconfigPath)
  }
}

/** What the supervisor must see gone once this process has exited: everything tracked, and whatever is still a child now. */
const finalState = (kubeconfigPath: string) => writeState(kubeconfigPath, Processes.descendants(process.pid))

main().then(
  () => {
    // nothing of ours should keep the event loop alive now; if something does, say so and leave
    setTimeout(() => {
      console.error("bench: something kept the event loop alive after the end; exiting")
      process.exit(process.exitCode ?? 1)
    }, 10_000).unref()
    if (errors.length > 0) {
      console.error(`bench finished with ${errors.length} problem(s):\n  ${errors.join("\n  ")}`)
      process.exitCode = 1
    }
  },
  (e: unknown) => {
    console.error("bench failed:", e)
    process.exitCode = 1
  }
)
