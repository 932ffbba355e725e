/** `kubectl port-forward` spawned directly, with the argv kube-forward gives it; ready at its `Forwarding from` line. */
import { spawn } from "node:child_process"
import { type Contender, cpuNow, exitOf, FORWARDING, kubeForwardArgs, type Settings } from "./common.ts"

export const rawKubectl = (id: string, label: string, s: Settings, binary: string = s.kubectl): Contender => ({
  id,
  label,
  carrier: "kubectl",
  verifies: false,
  open: (t) =>
    new Promise((resolve, reject) => {
      const marks: Record<string, number> = { spawnStart: performance.now() }
      const child = spawn(binary, kubeForwardArgs(s, t), {
        env: { ...process.env, KUBECACHEDIR: s.cacheDir },
        stdio: ["ignore", "pipe", "pipe"]
      })
      marks.spawnEnd = performance.now()
      marks["cpu:spawnEnd"] = cpuNow()
      let stdout = ""
      let stderr = ""
      let done = false
      child.stdout?.setEncoding("utf8")
      child.stderr?.setEncoding("utf8")
      child.stderr?.on("data", (d: string) => {
        stderr += d
      })
      child.stdout?.on("data", (d: string) => {
        if (done) return
        if (marks.firstLine === undefined) {
          marks.firstLine = performance.now()
          marks["cpu:firstLine"] = cpuNow()
        }
        stdout += d
        const m = FORWARDING.exec(stdout)
        if (m === null) return
        done = true
        resolve({
          port: Number(m[1]),
          hosts: ["127.0.0.1"],
          marks,
          kubectlPid: child.pid,
          close: async () => {
            child.kill("SIGTERM")
          },
          exited: () => exitOf(child)
        })
      })
      child.once("error", (e) => {
        if (!done) reject(e)
        done = true
      })
      child.once("exit", (code, signal) => {
        if (!done) reject(new Error(`kubectl exited (${code ?? signal}) before forwarding: ${stderr.trim()}`))
        done = true
      })
    }),
  dispose: () => Promise.resolve()
})
