/**
 * The benchmark itself (started by bench/run.ts, which checks for leaks after it exits).
 *
 * Processes: this one hosts the libraries under test (kube-forward's Effect runtime, xec,
 * client-node's forwarder) like an application would; bench/server.ts runs the fake cluster;
 * bench/loadgen.ts is the client at the local end of every throughput forward. kubectl is
 * always its own process.
 *
 * Flags: --quick, --runs N, --mib N, --reps N, --kubectl-version 1.33, --spdy-kubectl-version 1.30,
 * --out DIR, --simulate-leak (leaves a detached child behind, to see bench/run.ts fail).
 */
import * as KubectlBinaries from "@kube-forward/testkit/KubectlBinaries"
import * as Processes from "@kube-forward/testkit/Processes"
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import {
  checkConnection,
  clientNode,
  type Contender,
  echoRoundTrip,
  execaKubectl,
  kubeForward,
  kubeForwardArgs,
  type Opened,
  rawKubectl,
  type Settings,
  type Target,
  xec
} from "./lib/contenders.ts"
import { type Helper, startHelper } from "./lib/ipc.ts"
import { canBind, cpuMsOf, sleep, treeMemory, waitBindable } from "./lib/proc.ts"
import { crcOf } from "./lib/protocol.ts"
import { render } from "./lib/report.ts"
import type {
  KubectlInfo,
  MachineInfo,
  MemoryResult,
  ReadyRun,
  Results,
  ScaleResult,
  ThroughputRow,
  ThroughputRun
} from "./lib/results.ts"

const started = performance.now()
const here = Path.dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
const quick = argv.includes("--quick")
const MiB = 1024 * 1024
const settings = {
  readyRuns: Number(flag("--runs") ?? (quick ? 5 : 60)),
  warmups: quick ? 1 : 2,
  bytes: Number(flag("--mib") ?? (quick ? 16 : 256)) * MiB,
  reps: Number(flag("--reps") ?? (quick ? 1 : 5)),
  memoryN: quick ? 5 : 20,
  scaleN: quick ? 10 : 50
}
const outDir = flag("--out") ?? (quick ? Path.join(here, "out") : here)
const resultsMd = Path.join(outDir, quick ? "RESULTS.quick.md" : "RESULTS.md")
const resultsJson = Path.join(outDir, quick ? "results.quick.json" : "results.json")
const statePath = process.env.KUBE_FORWARD_BENCH_STATE
const gc = (globalThis as { gc?: () => void }).gc

const errors: Array<string> = []
const log = (...parts: ReadonlyArray<unknown>) =>
  console.log(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s]`, ...parts)
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

const fullGc = () => {
  if (gc === undefined) return
  gc()
  gc()
}

// ---------------------------------------------------------------------------------------------
// machine

const machineInfo = async (
  loadAvgStart: ReadonlyArray<number>,
  patternMs: number,
  patternBytes: number
): Promise<MachineInfo> => {
  const cpuinfo = Fs.readFileSync("/proc/cpuinfo", "utf8")
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? Os.cpus()[0]?.model ?? "unknown"
  const sample = Buffer.alloc(64 * MiB, 7)
  const t0 = performance.now()
  crcOf(sample)
  const crcMs = performance.now() - t0
  return {
    cpuModel: model.trim(),
    cores: Os.cpus().length,
    ramGiB: Math.round((Os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: `${Os.type()} ${Os.release()}`,
    date: new Date().toISOString(),
    commit: gitRevision(),
    loadAvgStart,
    loadAvgEnd: Os.loadavg(),
    ipv6Loopback: await canBind(0, "::1"),
    patternMiBps: patternBytes / MiB / (patternMs / 1000),
    crcMiBps: 64 / (crcMs / 1000)
  }
}

const gitRevision = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: here, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", ".", ":!bench"], {
      cwd: Path.dirname(here),
      encoding: "utf8"
    })
      .split("\n").filter((l) => l.trim() !== "").length
    return dirty === 0 ? head : `${head} + ${dirty} uncommitted file(s) outside bench/`
  } catch {
    return "unknown"
  }
}

const findKubectl = (version: string): Promise<KubectlInfo | undefined> =>
  Effect.runPromise(
    KubectlBinaries.find(version).pipe(
      Effect.map((b): KubectlInfo | undefined => ({ path: b.path, gitVersion: b.gitVersion })),
      Effect.catch(() => Effect.succeed(undefined))
    )
  )

/** kube-forward's watchdog: a child `/bin/sh -c <script>` of this process (its script tracks `groups`). */
const findWatchdog = (): number | undefined =>
  Processes.descendants(process.pid).find((pid) => {
    try {
      const cmd = Fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0")
      return cmd[1] === "-c" && cmd[2]?.includes("groups") === true
    } catch {
      return false
    }
  })

// ---------------------------------------------------------------------------------------------
// time to ready and close

const cpuSince = (u: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(u)
  return (d.user + d.system) / 1000
}

const readyRun = async (
  c: Contender,
  target: Target,
  round: number,
  instrumented: boolean,
  kubeconfigPath: string
): Promise<ReadyRun> => {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  let opened: Opened | undefined
  try {
    opened = await c.open(target)
    const tOpen = performance.now()
    const appCpuOpenMs = cpuSince(c0)
    const checkMs = instrumented
      ? await (async () => {
        const s = performance.now()
        await checkConnection(opened.port)
        return performance.now() - s
      })()
      : undefined
    const tCheck = performance.now()
    await echoRoundTrip(opened.port)
    const tReply = performance.now()
    const appCpuReplyMs = cpuSince(c0)
    const pid = opened.kubectlPid ??
      (c.id.startsWith("kube-forward") ? Processes.portForwards(kubeconfigPath)[0]?.pid : undefined)
    const kubectlCpuMs = pid === undefined ? undefined : cpuMsOf(pid)
    // without the separate check the reply came right after open; with it, leave the check out
    const firstReplyMs = tOpen - t0 + (tReply - tCheck)
    const kubectlRssKiB = opened.kubectlPid === undefined ? undefined : treeMemory(opened.kubectlPid).rssKiB
    const tc0 = performance.now()
    await opened.close()
    const tc1 = performance.now()
    const freeMs = await waitBindable(opened.port, opened.hosts, tc0)
    await opened.exited()
    const phases: Record<string, number> = {}
    const cpu0 = (c0.user + c0.system) / 1000
    for (const [k, v] of Object.entries(opened.marks)) {
      phases[k] = v - (k.startsWith("cpu:") ? cpu0 : k.startsWith("kill") ? tc0 : t0)
    }
    if (Number.isNaN(freeMs)) throw new Error(`port ${opened.port} not bindable 10 s after close`)
    return {
      contender: c.id,
      round,
      ok: true,
      openMs: tOpen - t0,
      firstReplyMs,
      closeReturnMs: tc1 - tc0,
      freeMs,
      phases,
      appCpuOpenMs,
      appCpuReplyMs,
      ...(kubectlCpuMs === undefined ? {} : { kubectlCpuMs }),
      ...(checkMs === undefined ? {} : { checkMs }),
      ...(kubectlRssKiB === undefined ? {} : { kubectlRssKiB })
    }
  } catch (e) {
    if (opened !== undefined) {
      await opened.close().catch(() => {})
      await opened.exited().catch(() => {})
    }
    return {
      contender: c.id,
      round,
      ok: false,
      error: errorText(e),
      openMs: Number.NaN,
      firstReplyMs: Number.NaN,
      closeReturnMs: Number.NaN,
      freeMs: Number.NaN,
      phases: {},
      appCpuOpenMs: Number.NaN,
      appCpuReplyMs: Number.NaN
    }
  }
}

// ---------------------------------------------------------------------------------------------
// throughput

interface Transfer {
  readonly ok: boolean
  readonly bytes: number
  readonly ms: number
  readonly crcOk: boolean
  readonly error?: string
}

interface Counters {
  readonly sessions: Record<string, number>
  readonly bytesToPod: number
  readonly bytesFromPod: number
}

// ---------------------------------------------------------------------------------------------
// main

const main = async () => {
  const loadAvgStart = Os.loadavg()
  Fs.mkdirSync(outDir, { recursive: true })
  const execArgv = ["--conditions=source"]
  log(
    `mode ${quick ? "quick" : "full"}: ${settings.readyRuns} ready runs, ${
      settings.bytes / MiB
    } MiB × ${settings.reps} reps`
  )

  const kubectl = await findKubectl(flag("--kubectl-version") ?? "1.33")
  if (kubectl === undefined) throw new Error("no kubectl 1.33 found (KubectlBinaries.find)")
  const kubectlSpdy = await findKubectl(flag("--spdy-kubectl-version") ?? "1.30")
  log(`kubectl ${kubectl.gitVersion} at ${kubectl.path}; SPDY-only client ${kubectlSpdy?.gitVersion ?? "none"}`)

  const helpers: Array<Helper> = []
  const disposers: Array<() => Promise<void>> = []
  let kubeconfigPath = ""
  try {
    const server = await startHelper(Path.join(here, "server.ts"), ["--bytes", String(settings.bytes)], execArgv)
    helpers.push(server)
    const hello = server.hello as {
      readonly kubeconfigPath: string
      readonly cacheDir: string
      readonly sink: { readonly host: string; readonly port: number }
      readonly source: { readonly host: string; readonly port: number }
      readonly patternMs: number
      readonly patternBytes: number
    }
    kubeconfigPath = hello.kubeconfigPath
    // interrupted: end every kubectl of ours (the helpers leave when their IPC channel closes)
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        for (const p of Processes.portForwards(kubeconfigPath)) {
          try {
            process.kill(p.pid, "SIGKILL")
          } catch {
            // gone
          }
        }
        process.exit(130)
      })
    }
    const loadgen = await startHelper(Path.join(here, "loadgen.ts"), ["--bytes", String(settings.bytes)], execArgv)
    helpers.push(loadgen)
    /** Tells bench/run.ts what must be gone after this process exits, even if it is interrupted. */
    const writeState = (extra: ReadonlyArray<number>) => {
      if (statePath === undefined) return
      const children = [server.pid, loadgen.pid, ...extra].map((pid) => ({ pid, args: "" }))
      Fs.writeFileSync(statePath, JSON.stringify({ kubeconfigPath, children }))
    }
    writeState([])
    log(`fake cluster pid ${server.pid}, load generator pid ${loadgen.pid}`)

    // xec hands kubectl this process's environment: the discovery cache goes there for everyone
    process.env.KUBECACHEDIR = hello.cacheDir
    const s: Settings = { kubectl: kubectl.path, kubeconfigPath, cacheDir: hello.cacheDir }
    const machine0 = await machineInfo(loadAvgStart, hello.patternMs, hello.patternBytes)
    const xecHosts = machine0.ipv6Loopback ? ["127.0.0.1", "::1"] : ["127.0.0.1"]

    const kf = kubeForward("kube-forward", "kube-forward `PortForward.make` (verify on)", s, false)
    const kfi = kubeForward("kube-forward-instrumented", "kube-forward, instrumented Kubectl layer", s, true)
    const raw = rawKubectl("kubectl", "raw `kubectl port-forward`", s)
    const x = xec("xec", "@xec-sh/core 0.9.0 `portForward`", s, xecHosts)
    const cn = clientNode("client-node", "@kubernetes/client-node 2.0.1 `PortForward` + net.Server", s)
    const contenders: Array<Contender> = [kf, kfi, raw, x, cn]
    for (const c of contenders) disposers.push(c.dispose)
    const echo: Target = { pod: "echo", port: 7, namespace: "default" }

    // ---- warm-up (JIT, kube-forward's watchdog); the first round is kept as "cold" --------------
    // fill kubectl's discovery cache first, so no contender's first run pays for it
    execFileSync(kubectl.path, [`--kubeconfig=${kubeconfigPath}`, "get", "pods", "-o", "name"], {
      env: { ...process.env, KUBECACHEDIR: hello.cacheDir },
      stdio: "ignore"
    })
    const cold: Array<ReadyRun> = []
    for (let w = 0; w < settings.warmups; w++) {
      for (const c of contenders) {
        const r = await readyRun(c, echo, -1 - w, c === kfi, kubeconfigPath)
        if (!r.ok) throw new Error(`warm-up of ${c.id} failed: ${r.error}`)
        if (w === 0) cold.push(r)
      }
    }
    // the Kubectl layer puts its global flags (--kubeconfig=…) in front of what the library asks for
    const argvCheck = {
      kubeForward: [`--kubeconfig=${s.kubeconfigPath}`, ...(kfi.spawnedArgs[0] ?? [])],
      raw: kubeForwardArgs(s, echo),
      same: JSON.stringify([`--kubeconfig=${s.kubeconfigPath}`, ...(kfi.spawnedArgs[0] ?? [])]) ===
        JSON.stringify(kubeForwardArgs(s, echo))
    }
    if (!argvCheck.same) errors.push(`raw kubectl argv differs from kube-forward's: ${JSON.stringify(argvCheck)}`)
    log("warm-up done; argv identical:", argvCheck.same)
    const wd = findWatchdog()
    writeState(wd === undefined ? [] : [wd])

    // ---- time to ready + close, round-robin ---------------------------------------------------
    const watchdogPid = findWatchdog()
    const watchdogCpu0 = watchdogPid === undefined ? undefined : cpuMsOf(watchdogPid)
    const ready: Array<ReadyRun> = []
    for (let round = 0; round < settings.readyRuns; round++) {
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length])
      for (const c of order) {
        const r = await readyRun(c, echo, round, c === kfi, kubeconfigPath)
        if (!r.ok) errors.push(`ready run ${round} of ${c.id}: ${r.error}`)
        ready.push(r)
        await sleep(10)
      }
      if (round % 10 === 9 || round === settings.readyRuns - 1) log(`ready: ${round + 1}/${settings.readyRuns} rounds`)
    }
    const watchdogCpu1 = watchdogPid === undefined ? undefined : cpuMsOf(watchdogPid)
    const watchdogCpuPerForwardMs = watchdogCpu0 === undefined || watchdogCpu1 === undefined
      ? undefined
      : (watchdogCpu1 - watchdogCpu0) / (2 * settings.readyRuns)
    const stray = Processes.portForwards(kubeconfigPath)
    if (stray.length > 0) {
      errors.push(`after the ready runs, ${stray.length} kubectl still alive: ${stray.map((p) => p.pid).join(", ")}`)
    }

    // ---- throughput -----------------------------------------------------------------------------
    const both = ["upload", "download"] as const
    const spdyRaw = kubectlSpdy === undefined
      ? undefined
      : rawKubectl("kubectl-spdy", "raw kubectl (SPDY client)", s, kubectlSpdy.path)
    const rows: Array<ThroughputRow & { readonly contender: Contender | undefined; readonly tkSource?: boolean }> = [
      {
        id: "direct",
        label: "direct loopback (no forward)",
        transport: "tunnel",
        expectSession: null,
        kubectl: null,
        directions: both,
        contender: undefined
      },
      {
        id: "kubectl/tunnel",
        label: `raw kubectl ${kubectl.gitVersion}`,
        transport: "tunnel",
        expectSession: "tunnel",
        kubectl: kubectl.gitVersion,
        directions: both,
        contender: raw
      },
      {
        id: "kube-forward/tunnel",
        label: `kube-forward (kubectl ${kubectl.gitVersion})`,
        transport: "tunnel",
        expectSession: "tunnel",
        kubectl: kubectl.gitVersion,
        directions: both,
        contender: kf
      },
      {
        id: "xec/tunnel",
        label: `xec (kubectl ${kubectl.gitVersion})`,
        transport: "tunnel",
        expectSession: "tunnel",
        kubectl: kubectl.gitVersion,
        directions: both,
        contender: x
      },
      {
        id: "client-node/websocket",
        label: "client-node PortForward",
        transport: "tunnel",
        expectSession: "websocket",
        kubectl: null,
        directions: both,
        contender: cn
      },
      {
        id: "kubectl/spdy-only",
        label: `raw kubectl ${kubectl.gitVersion}`,
        transport: "spdy-only",
        expectSession: "spdy",
        kubectl: kubectl.gitVersion,
        directions: both,
        contender: raw
      },
      {
        id: "kube-forward/spdy-only",
        label: `kube-forward (kubectl ${kubectl.gitVersion})`,
        transport: "spdy-only",
        expectSession: "spdy",
        kubectl: kubectl.gitVersion,
        directions: both,
        contender: kf
      },
      ...(spdyRaw === undefined || kubectlSpdy === undefined ? [] : [
        {
          id: "kubectl-old/spdy",
          label: `raw kubectl ${kubectlSpdy.gitVersion}`,
          transport: "tunnel" as const,
          expectSession: "spdy" as const,
          kubectl: kubectlSpdy.gitVersion,
          directions: both,
          contender: spdyRaw
        }
      ]),
      {
        id: "kubectl/tunnel/testkit-source",
        label: `raw kubectl ${kubectl.gitVersion} ← testkit \`Backend.source\``,
        transport: "tunnel",
        expectSession: "tunnel",
        kubectl: kubectl.gitVersion,
        directions: ["download"],
        contender: raw,
        tkSource: true
      }
    ]
    if (spdyRaw !== undefined) disposers.push(spdyRaw.dispose)
    /** The kubectl behind a forward: its own pid, or the only live port-forward of the cluster (kube-forward keeps the pid to itself). */
    const kubectlPidOf = (o: Opened | undefined): number | undefined => {
      if (o === undefined) return undefined
      if (o.kubectlPid !== undefined) return o.kubectlPid
      const live = Processes.portForwards(kubeconfigPath)
      return live.length === 1 ? live[0].pid : undefined
    }
    const throughput: Array<ThroughputRun> = []
    const transferOp = (direction: "upload" | "download", tk: boolean) => (tk ? "stream" : direction)
    // warm-up: one small transfer per row and direction (JIT of the fake server's transports, kubectl's first stream)
    const warmBytes = Math.min(settings.bytes, 8 * MiB)
    for (const row of rows) {
      if (row.tkSource === true) continue
      await server.call("setTransport", row.transport)
      for (const direction of row.directions) {
        const pod: Target = direction === "upload"
          ? { pod: "sink", port: 9001, namespace: "default" }
          : { pod: "source", port: 9002, namespace: "default" }
        const direct = direction === "upload" ? hello.sink : hello.source
        const o = row.contender === undefined ? undefined : await row.contender.open(pod)
        try {
          const t = await loadgen.call<Transfer>(direction, {
            host: direct.host,
            port: o?.port ?? direct.port,
            bytes: warmBytes
          })
          if (!t.ok) errors.push(`throughput warm-up ${row.id} ${direction}: ${t.error ?? "not verified"}`)
        } finally {
          if (o !== undefined) {
            await o.close()
            await o.exited()
          }
        }
      }
    }
    log("throughput warm-up done")
    for (let rep = 0; rep < settings.reps; rep++) {
      const order = rows.map((_, i) => rows[(i + rep) % rows.length])
      for (const row of order) {
        await server.call("setTransport", row.transport)
        for (const direction of row.directions) {
          const pod: Target = row.tkSource === true
            ? { pod: "tk-source", port: 9003, namespace: "default" }
            : direction === "upload"
            ? { pod: "sink", port: 9001, namespace: "default" }
            : { pod: "source", port: 9002, namespace: "default" }
          let opened: Opened | undefined
          let hostPeak = 0
          const sampler = setInterval(() => {
            hostPeak = Math.max(hostPeak, process.memoryUsage().rss)
          }, 20)
          try {
            await server.call("resetCounters")
            let host = "127.0.0.1"
            let port: number
            if (row.contender === undefined) {
              const direct = direction === "upload" ? hello.sink : hello.source
              host = direct.host
              port = direct.port
            } else {
              opened = await row.contender.open(pod)
              port = opened.port
            }
            hostPeak = process.memoryUsage().rss
            const hostBase = hostPeak
            const t = await loadgen.call<Transfer>(transferOp(direction, row.tkSource === true), {
              host,
              port,
              bytes: settings.bytes
            })
            const hwm = kubectlPidOf(opened) === undefined
              ? undefined
              : treeMemory(kubectlPidOf(opened) as number).hwmKiB
            const counters = await server.call<Counters>("counters")
            const minTo = direction === "upload" ? settings.bytes + 16 : row.tkSource === true ? 0 : 16
            const minFrom = direction === "upload" ? 16 : settings.bytes
            const countersOk = row.expectSession === null
              ? counters.bytesToPod === 0 && counters.bytesFromPod === 0
              : counters.sessions[row.expectSession] === 1 &&
                Object.entries(counters.sessions).every(([k, v]) => k === row.expectSession || v === 0) &&
                counters.bytesToPod >= minTo && counters.bytesFromPod >= minFrom
            const run: ThroughputRun = {
              row: row.id,
              rep,
              direction,
              ok: t.ok && countersOk,
              bytes: t.bytes,
              ms: t.ms,
              mibps: t.bytes / MiB / (t.ms / 1000),
              crcOk: t.crcOk,
              ...(t.error === undefined ? {} : { error: t.error }),
              countersOk,
              sessions: counters.sessions,
              bytesToPod: counters.bytesToPod,
              bytesFromPod: counters.bytesFromPod,
              ...(hwm === undefined ? {} : { kubectlHwmKiB: hwm }),
              ...(row.contender === cn ? { hostRssPeakKiB: Math.round((hostPeak - hostBase) / 1024) } : {})
            }
            if (!run.ok) {
              errors.push(
                `throughput ${row.id} ${direction} rep ${rep}: ${t.error ?? ""} crc ${t.crcOk} counters ${
                  JSON.stringify(counters)
                }`
              )
            }
            throughput.push(run)
            log(`throughput ${row.id} ${direction}: ${run.mibps.toFixed(0)} MiB/s ${run.ok ? "verified" : "FAILED"}`)
          } catch (e) {
            errors.push(`throughput ${row.id} ${direction} rep ${rep}: ${errorText(e)}`)
            throughput.push({
              row: row.id,
              rep,
              direction,
              ok: false,
              bytes: 0,
              ms: Number.NaN,
              mibps: Number.NaN,
              crcOk: false,
              error: errorText(e),
              countersOk: false
            })
          } finally {
            clearInterval(sampler)
            if (opened !== undefined) {
              await opened.close().catch(() => {})
              await opened.exited().catch(() => {})
            }
          }
        }
      }
    }
    await server.call("setTransport", "tunnel")
    const rows0: Array<ThroughputRow> = rows.map(({ contender: _c, tkSource: _t, ...r }) => r)

    // ---- memory: kubectl RSS, heap growth per open forward -----------------------------------------
    const memory: Array<MemoryResult> = []
    const ex = execaKubectl("execa", "kubectl via execa alone (kube-forward's spawn options, no Effect)", s)
    for (const c of [kf, ex, raw, x, cn]) {
      const opened: Array<Opened> = []
      try {
        fullGc()
        const h0 = process.memoryUsage().heapUsed
        const r0 = process.memoryUsage().rss
        for (let i = 0; i < settings.memoryN; i++) {
          const o = await c.open(echo)
          opened.push(o)
          await echoRoundTrip(o.port)
        }
        await sleep(100)
        fullGc()
        const h1 = process.memoryUsage().heapUsed
        const r1 = process.memoryUsage().rss
        // every kubectl of this contender (kube-forward does not expose its pid): exactly N, or none
        const live = Processes.portForwards(kubeconfigPath)
        if (c !== cn && live.length !== settings.memoryN) {
          errors.push(`memory ${c.id}: ${live.length} kubectl processes alive for ${settings.memoryN} forwards`)
        }
        const rss = live.map((p) => treeMemory(p.pid).rssKiB)
        for (const o of opened.splice(0)) {
          await o.close()
          await o.exited()
        }
        await sleep(100)
        fullGc()
        const h2 = process.memoryUsage().heapUsed
        memory.push({
          contender: c.id,
          n: settings.memoryN,
          heapPerForwardKiB: (h1 - h0) / 1024 / settings.memoryN,
          heapRetainedAfterCloseKiB: (h2 - h0) / 1024,
          hostRssPerForwardKiB: (r1 - r0) / 1024 / settings.memoryN,
          kubectlRssKiB: rss
        })
        log(`memory ${c.id}: heap ${((h1 - h0) / 1024 / settings.memoryN).toFixed(1)} KiB/forward`)
      } catch (e) {
        errors.push(`memory ${c.id}: ${errorText(e)}`)
        memory.push({
          contender: c.id,
          n: settings.memoryN,
          heapPerForwardKiB: Number.NaN,
          heapRetainedAfterCloseKiB: Number.NaN,
          hostRssPerForwardKiB: Number.NaN,
          kubectlRssKiB: [],
          error: errorText(e)
        })
        for (const o of opened) {
          await o.close().catch(() => {})
          await o.exited().catch(() => {})
        }
      }
    }
    const watchdogNow = findWatchdog()
    const watchdog = watchdogNow === undefined
      ? undefined
      : { pid: watchdogNow, rssKiB: treeMemory(watchdogNow).rssKiB }
    if (gc === undefined) errors.push("global.gc is missing (run with --expose-gc): heap numbers are without GC")

    // ---- scale: N at once, then closed -------------------------------------------------------------
    const scale: Array<ScaleResult> = []
    const unbindable = async (
      ports: ReadonlyArray<{ readonly port: number; readonly hosts: ReadonlyArray<string> }>
    ) => {
      let n = 0
      for (const p of ports) {
        for (const h of p.hosts) {
          if (!(await canBind(p.port, h))) {
            n++
            break
          }
        }
      }
      return n
    }
    const scaleRuns: Array<
      { readonly id: string; readonly c: Contender; readonly strategy?: "sequential" | "parallel" }
    > = [
      { id: "kube-forward", c: kf, strategy: "sequential" },
      { id: "kube-forward (parallel scope)", c: kf, strategy: "parallel" },
      { id: "kubectl", c: raw },
      { id: "xec", c: x },
      { id: "client-node", c: cn }
    ]
    for (const { id, c, strategy } of scaleRuns) {
      const n = settings.scaleN
      let opened: Array<Opened> = []
      let many: { readonly ports: ReadonlyArray<number>; readonly close: () => Promise<void> } | undefined
      try {
        const t0 = performance.now()
        let ports: Array<{ readonly port: number; readonly hosts: ReadonlyArray<string> }>
        if (strategy !== undefined) {
          many = await kf.openMany(echo, n, strategy)
          ports = many.ports.map((port) => ({ port, hosts: ["127.0.0.1"] }))
        } else {
          const settled = await Promise.allSettled(Array.from({ length: n }, async () => {
            const o = await c.open(echo)
            opened.push(o)
            await echoRoundTrip(o.port)
            return o
          }))
          const failed = settled.filter((r) => r.status === "rejected")
          if (failed.length > 0) {
            throw new Error(`${failed.length}/${n} failed: ${errorText((failed[0] as PromiseRejectedResult).reason)}`)
          }
          ports = opened.map((o) => ({ port: o.port, hosts: o.hosts }))
        }
        const t1 = performance.now()
        if (many !== undefined) await many.close()
        else await Promise.all(opened.map((o) => o.close()))
        const t2 = performance.now()
        const procs0 = Processes.portForwards(kubeconfigPath).length
        const unbind0 = await unbindable(ports)
        await sleep(1000)
        const procs1 = Processes.portForwards(kubeconfigPath).length
        const unbind1 = await unbindable(ports)
        await Promise.all(opened.map((o) => o.exited()))
        opened = []
        many = undefined
        scale.push({
          contender: id,
          n,
          ok: true,
          openAllMs: t1 - t0,
          closeAllMs: t2 - t1,
          leftoverProcessesAtClose: procs0,
          leftoverProcessesAfter1s: procs1,
          unbindablePortsAtClose: unbind0,
          unbindablePortsAfter1s: unbind1
        })
        log(
          `scale ${id}: ${n} open in ${(t1 - t0).toFixed(0)} ms, closed in ${
            (t2 - t1).toFixed(0)
          } ms, leftovers ${procs0}/${unbind0}`
        )
      } catch (e) {
        errors.push(`scale ${id}: ${errorText(e)}`)
        scale.push({
          contender: id,
          n,
          ok: false,
          error: errorText(e),
          openAllMs: Number.NaN,
          closeAllMs: Number.NaN,
          leftoverProcessesAtClose: Number.NaN,
          leftoverProcessesAfter1s: Number.NaN,
          unbindablePortsAtClose: Number.NaN,
          unbindablePortsAfter1s: Number.NaN
        })
        if (many !== undefined) await many.close().catch(() => {})
        for (const o of opened) {
          await o.close().catch(() => {})
          await o.exited().catch(() => {})
        }
      }
    }

    // ---- end ----------------------------------------------------------------------------------------
    const leaksAtEnd = Processes.portForwards(kubeconfigPath).map((p) => `${p.pid} ${p.args}`)
    if (leaksAtEnd.length > 0) errors.push(`${leaksAtEnd.length} kubectl port-forward processes alive at the end`)
    const machine = { ...machine0, loadAvgEnd: Os.loadavg() }
    const results: Results = {
      mode: quick ? "quick" : "full",
      machine,
      kubectl,
      kubectlSpdy,
      settings,
      argvCheck,
      contenders: contenders.map((c) => ({ id: c.id, label: c.label, verifies: c.verifies })),
      ready,
      cold,
      throughputRows: rows0,
      throughput,
      memory,
      watchdog,
      watchdogCpuPerForwardMs,
      scale,
      leaksAtEnd,
      errors,
      durationMs: performance.now() - started
    }
    Fs.writeFileSync(resultsJson, JSON.stringify(results, null, 2) + "\n")
    const md = render(results)
    Fs.writeFileSync(resultsMd, md)
    // the ratios against raw kubectl, on the console too
    const from = md.indexOf("## Goals of this round")
    const to = md.indexOf("## Throughput")
    if (from !== -1 && to !== -1) console.log("\n" + md.slice(from, to))
    log(`wrote ${Path.relative(process.cwd(), resultsMd)} and ${Path.relative(process.cwd(), resultsJson)}`)
  } finally {
    for (const d of disposers) await d().catch((e: unknown) => errors.push(`dispose: ${errorText(e)}`))
    for (const h of helpers.reverse()) await h.stop()
    if (kubeconfigPath !== "") {
      const left = Processes.portForwards(kubeconfigPath)
      for (const p of left) {
        errors.push(`killing leftover kubectl ${p.pid}`)
        try {
          process.kill(p.pid, "SIGKILL")
        } catch {
          // gone
        }
      }
    }
    if (argv.includes("--simulate-leak")) {
      // a self-test of the leak check: a detached child that outlives this process
      spawn("sleep", ["30"], { detached: true, stdio: "ignore" }).unref()
    }
    if (statePath !== undefined) {
      // what the supervisor must see gone once this process has exited (kube-forward's watchdog, say)
      const children = Processes.descendants(process.pid).map((pid) => {
        let args = ""
        try {
          args = execFileSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" }).trim()
        } catch {
          // gone already
        }
        return { pid, args }
      }).filter((c) => !c.args.startsWith("ps "))
      Fs.writeFileSync(statePath, JSON.stringify({ kubeconfigPath, children, resultsMd, resultsJson, errors }))
    }
  }
}

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
