/**
 * `npm run bench [-- --quick]`: runs bench/main.ts in a child Node process (with `--conditions=source`
 * and `--expose-gc`), then — after that process has exited — checks that everything it started is
 * gone: the fake cluster, load generator and host processes, kube-forward's watchdogs, every
 * `kubectl port-forward` pointed at the bench cluster, and the cluster's temp directory. Anything left is reported (and killed), the
 * result is appended to RESULTS.md / results.json, and the exit code is non-zero.
 */
import * as Processes from "@kube-forward/testkit/Processes"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { sleep } from "./lib/proc.ts"
import { POST_EXIT, postExitLine } from "./lib/report.ts"
import { fill } from "./lib/template.ts"

const here = Path.dirname(fileURLToPath(import.meta.url))
const stateDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "kube-forward-bench-"))
const statePath = Path.join(stateDir, "state.json")

interface State {
  readonly kubeconfigPath: string
  readonly children?: ReadonlyArray<{ readonly pid: number; readonly args: string }>
  readonly resultsMd?: string
  readonly resultsJson?: string
}

const child = spawn(
  process.execPath,
  ["--conditions=source", "--expose-gc", Path.join(here, "main.ts"), ...process.argv.slice(2)],
  { stdio: "inherit", env: { ...process.env, KUBE_FORWARD_BENCH_STATE: statePath } }
)
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))

const code: number = await new Promise((resolve) => child.once("exit", (c, s) => resolve(c ?? (s === null ? 1 : 128))))

let state: State | undefined
try {
  state = JSON.parse(Fs.readFileSync(statePath, "utf8")) as State
} catch {
  state = undefined
}
Fs.rmSync(stateDir, { recursive: true, force: true })

const leftovers = (): Array<string> => {
  if (state === undefined) return []
  const procs = (state.children ?? []).filter((c) => Processes.isAlive(c.pid)).map((c) =>
    `pid ${c.pid} (${c.args || "?"})`
  )
  const kubectl = state.kubeconfigPath === ""
    ? []
    : Processes.portForwards(state.kubeconfigPath).map((p) => `kubectl pid ${p.pid} (${p.args})`)
  // the fake cluster keeps its kubeconfig and discovery cache in a temp directory of its own
  const dir = state.kubeconfigPath === "" ? undefined : Path.dirname(state.kubeconfigPath)
  const files = dir !== undefined && Fs.existsSync(dir) ? [`temp directory ${dir}`] : []
  return [...procs, ...kubectl, ...files]
}

// kube-forward's watchdog leaves when its pipe closes, i.e. right after the bench process exits
let left = leftovers()
for (let i = 0; i < 50 && left.length > 0; i++) {
  await sleep(100)
  left = leftovers()
}

const detail = state === undefined
  ? ["the bench process left no state file (it failed before starting the cluster)"]
  : left.length === 0
  ? [
    `all ${
      (state.children ?? []).length
    } processes the bench started are gone; no kubectl port-forward for the bench cluster is alive; the cluster's temp directory is gone`
  ]
  : left.map((l) => `LEFT BEHIND 5 s after exit: ${l}`)
const ok = state !== undefined && left.length === 0

if (state !== undefined && left.length > 0) {
  for (const c of state.children ?? []) {
    try {
      if (Processes.isAlive(c.pid)) process.kill(c.pid, "SIGKILL")
    } catch {
      // gone
    }
  }
  for (const p of Processes.portForwards(state.kubeconfigPath)) {
    try {
      process.kill(p.pid, "SIGKILL")
    } catch {
      // gone
    }
  }
}

if (state?.resultsMd !== undefined && Fs.existsSync(state.resultsMd)) {
  const md = Fs.readFileSync(state.resultsMd, "utf8")
  Fs.writeFileSync(state.resultsMd, fill(md, { [POST_EXIT]: postExitLine(ok, detail) }).text)
}
if (state?.resultsJson !== undefined && Fs.existsSync(state.resultsJson)) {
  const json = JSON.parse(Fs.readFileSync(state.resultsJson, "utf8")) as Record<string, unknown>
  json.postExit = { ok, detail }
  Fs.writeFileSync(state.resultsJson, JSON.stringify(json, null, 2) + "\n")
}

console.log(`[bench] post-exit check: ${ok ? "passed" : "FAILED"}: ${detail.join("; ")}`)
process.exit(code !== 0 ? code : ok ? 0 : 1)
