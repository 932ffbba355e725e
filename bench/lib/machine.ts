/** What the report says about the machine and the binaries a run used. */
import * as KubectlBinaries from "@kube-forward/testkit/KubectlBinaries"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { MiB } from "./context.ts"
import { canBind } from "./proc.ts"
import { crcOf } from "./protocol.ts"
import type { KubectlInfo, MachineInfo } from "./results.ts"

/** The library revision: HEAD, and how many files outside bench/ were uncommitted. */
const gitRevision = (benchDir: string): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: benchDir, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", ".", ":!bench"], {
      cwd: Path.dirname(benchDir),
      encoding: "utf8"
    })
      .split("\n").filter((l) => l.trim() !== "").length
    return dirty === 0 ? head : `${head} + ${dirty} uncommitted file(s) outside bench/`
  } catch {
    return "unknown"
  }
}

export const machineInfo = async (
  benchDir: string,
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
    commit: gitRevision(benchDir),
    loadAvgStart,
    loadAvgEnd: Os.loadavg(),
    ipv6Loopback: await canBind(0, "::1"),
    patternMiBps: patternBytes / MiB / (patternMs / 1000),
    crcMiBps: 64 / (crcMs / 1000)
  }
}

export const findKubectl = (version: string): Promise<KubectlInfo | undefined> =>
  Effect.runPromise(
    KubectlBinaries.find(version).pipe(
      Effect.map((b): KubectlInfo | undefined => ({ path: b.path, gitVersion: b.gitVersion })),
      Effect.catch(() => Effect.succeed(undefined))
    )
  )
