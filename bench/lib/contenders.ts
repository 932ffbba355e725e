/**
 * The four ways to open a forward that the bench compares, behind one interface. Each `open`
 * returns when that contender itself says the forward is usable; whether bytes reached the pod by
 * then is `verifies`. Marks are absolute `performance.now()` times of phases, for the analysis.
 */
import { Kubectl, PortForward } from "@kube-forward/core"
import { KubeConfig, PortForward as ClientNodePortForward } from "@kubernetes/client-node"
import { KubernetesAdapter } from "@xec-sh/core"
import { Effect, Exit, Layer, ManagedRuntime, Scope, Stream } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"

export interface Settings {
  readonly kubectl: string
  readonly kubeconfigPath: string
  readonly cacheDir: string
}

export interface Target {
  readonly pod: string
  readonly port: number
  readonly namespace: string
}

export interface Opened {
  readonly port: number
  /** Local addresses the forward listens on (all must be bindable again after close). */
  readonly hosts: ReadonlyArray<string>
  readonly marks: Record<string, number>
  /** The kubectl process, when there is one. */
  readonly kubectlPid: number | undefined
  /** The contender's own close. */
  readonly close: () => Promise<void>
  /** Resolves once every process of this forward has exited (cleanup between runs; never timed). */
  readonly exited: () => Promise<void>
}

export interface Contender {
  readonly id: string
  readonly label: string
  /** `open` returning means bytes reached the pod (kube-forward's check connection). */
  readonly verifies: boolean
  readonly open: (target: Target) => Promise<Opened>
  readonly dispose: () => Promise<void>
}

// ---------------------------------------------------------------------------------------------
// helpers

/** This process's CPU time so far (user + system), in ms. */
export const cpuNow = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** Sends a few bytes and waits until the same bytes came back (no half-close: client-node closes its WebSocket on FIN). */
export const echoRoundTrip = (port: number, host = "127.0.0.1", timeoutMs = 15_000): Promise<void> =>
  new Promise((resolve, reject) => {
    const payload = Buffer.from("ping through the forward\n")
    const socket = Net.connect({ host, port })
    socket.setNoDelay(true)
    let got = 0
    const timer = setTimeout(() => fail(new Error(`echo round trip timed out after ${timeoutMs} ms`)), timeoutMs)
    const fail = (e: Error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(e)
    }
    socket.once("connect", () => socket.write(payload))
    socket.on("data", (chunk: Buffer) => {
      got += chunk.length
      if (got >= payload.length) {
        clearTimeout(timer)
        socket.destroy()
        resolve()
      }
    })
    socket.once("error", fail)
    socket.once("close", () => fail(new Error(`connection closed after ${got} bytes`)))
  })

/** What kube-forward's check connection does (connect, FIN, wait for the pod's side to end), timed on its own. */
export const checkConnection = (port: number, host = "127.0.0.1", timeoutMs = 15_000): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host, port })
    socket.setNoDelay(true)
    const timer = setTimeout(() => done(new Error("check connection timed out")), timeoutMs)
    const done = (e?: Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (e === undefined) resolve()
      else reject(e)
    }
    socket.once("connect", () => socket.end())
    socket.once("data", () => done())
    socket.once("end", () => done())
    socket.once("error", (e) => done(e))
  })

const exitOf = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("close", () => resolve()))

/** The argument array kube-forward gives kubectl for a one-port forward with default options. */
export const kubeForwardArgs = (s: Settings, t: Target): Array<string> => [
  `--kubeconfig=${s.kubeconfigPath}`,
  "port-forward",
  `--namespace=${t.namespace}`,
  "--address=127.0.0.1",
  "--",
  `pod/${t.pod}`,
  `:${t.port}`
]

// ---------------------------------------------------------------------------------------------
// kube-forward

/** A Kubectl layer that records when the library spawns kubectl, gets its pid, reads its first line, and starts killing it. */
const instrumentedKubectl = (
  options: Kubectl.Options,
  recorder: { current: Record<string, number>; args: Array<ReadonlyArray<string>> }
): Layer.Layer<Kubectl.Kubectl> =>
  Layer.effect(
    Kubectl.Kubectl,
    Effect.gen(function*() {
      const inner = yield* Kubectl.Kubectl
      return Kubectl.Kubectl.of({
        binary: inner.binary,
        spawn: (args) =>
          Effect.gen(function*() {
            const marks = recorder.current
            recorder.args.push(args)
            marks.spawnStart = performance.now()
            const proc = yield* inner.spawn(args)
            marks.spawnEnd = performance.now()
            marks["cpu:spawnEnd"] = cpuNow()
            marks.pid = proc.pid
            yield* Effect.addFinalizer(() => Effect.sync(() => void (marks.killStart = performance.now())))
            let first = true
            return {
              ...proc,
              output: proc.output.pipe(Stream.tap((line) =>
                Effect.sync(() => {
                  if (first && line.stream === "stdout") {
                    first = false
                    marks.firstLine = performance.now()
                    marks["cpu:firstLine"] = cpuNow()
                  }
                })
              ))
            }
          })
      })
    })
  ).pipe(Layer.provide(Kubectl.layer(options)))

export interface KubeForwardContender extends Contender {
  /** Argument arrays kubectl was spawned with (instrumented variant only). */
  readonly spawnedArgs: Array<ReadonlyArray<string>>
  /** Opens `n` forwards at once in one scope (the idiomatic way); returns their ports and a close. */
  readonly openMany: (
    target: Target,
    n: number,
    strategy: "sequential" | "parallel"
  ) => Promise<{ readonly ports: ReadonlyArray<number>; readonly close: () => Promise<void> }>
}

export const kubeForward = (id: string, label: string, s: Settings, instrument: boolean): KubeForwardContender => {
  const options: Kubectl.Options = {
    binary: s.kubectl,
    kubeconfig: s.kubeconfigPath,
    env: { KUBECACHEDIR: s.cacheDir }
  }
  const recorder = { current: {} as Record<string, number>, args: [] as Array<ReadonlyArray<string>> }
  const layer = instrument
    ? PortForward.layerWith(instrumentedKubectl(options, recorder))
    : PortForward.layer(options)
  const runtime = ManagedRuntime.make(layer)
  const spec = (t: Target) => ({ target: `pod/${t.pod}`, namespace: t.namespace, ports: [t.port] })

  return {
    id,
    label,
    verifies: true,
    spawnedArgs: recorder.args,
    open: async (t) => {
      const marks: Record<string, number> = {}
      recorder.current = marks
      const { forward, scope } = await runtime.runPromise(Effect.gen(function*() {
        const scope = yield* Scope.make()
        const forward = yield* PortForward.make(spec(t)).pipe(
          Scope.provide(scope),
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        return { forward, scope }
      }))
      const pid = marks.pid
      delete marks.pid
      return {
        port: forward.localPort,
        hosts: ["127.0.0.1"],
        marks,
        kubectlPid: pid,
        close: () => runtime.runPromise(Scope.close(scope, Exit.void)),
        exited: () => Promise.resolve()
      }
    },
    openMany: async (t, n, strategy) => {
      const { forwards, scope } = await runtime.runPromise(Effect.gen(function*() {
        const scope = yield* Scope.make(strategy)
        const forwards = yield* Effect.forEach(Array.from({ length: n }), () => PortForward.make(spec(t)), {
          concurrency: "unbounded"
        }).pipe(Scope.provide(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
        return { forwards, scope }
      }))
      return { ports: forwards.map((f) => f.localPort), close: () => runtime.runPromise(Scope.close(scope, Exit.void)) }
    },
    dispose: () => runtime.dispose()
  }
}

// ---------------------------------------------------------------------------------------------
// raw kubectl

const FORWARDING = /^Forwarding from 127\.0\.0\.1:(\d+) -> \d+/m

/** `kubectl port-forward` spawned directly with the same arguments kube-forward uses; ready at its `Forwarding from` line. */
export const rawKubectl = (id: string, label: string, s: Settings, binary: string = s.kubectl): Contender => ({
  id,
  label,
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

// ---------------------------------------------------------------------------------------------
// @xec-sh/core

interface XecForward {
  readonly localPort: number
  open(): Promise<void>
  close(): Promise<void>
}

export const xec = (id: string, label: string, s: Settings, hosts: ReadonlyArray<string>): Contender => {
  // xec passes process.env to kubectl (KUBECACHEDIR is set there by the bench)
  const adapter = new KubernetesAdapter({ kubeconfig: s.kubeconfigPath, kubectlPath: s.kubectl })
  return {
    id,
    label,
    verifies: false,
    open: async (t) => {
      const pf = (await adapter.portForward(t.pod, 0, t.port, {
        namespace: t.namespace,
        dynamicLocalPort: true
      })) as unknown as XecForward
      await pf.open()
      // xec keeps its ChildProcess private; the bench reads it for the pid and to await the exit
      const child = (pf as unknown as { readonly proc: ChildProcess | null }).proc
      return {
        port: pf.localPort,
        hosts,
        marks: {},
        kubectlPid: child?.pid,
        close: () => pf.close(),
        exited: () => (child === null ? Promise.resolve() : exitOf(child))
      }
    },
    dispose: () => adapter.dispose()
  }
}

// ---------------------------------------------------------------------------------------------
// @kubernetes/client-node

interface WsLike {
  close(): void
  on(event: "close", listener: () => void): unknown
}

/** client-node's PortForward behind a local `net.Server`: one WebSocket per accepted connection. */
export const clientNode = (id: string, label: string, s: Settings): Contender => {
  const kc = new KubeConfig()
  kc.loadFromFile(s.kubeconfigPath)
  return {
    id,
    label,
    verifies: false,
    open: (t) =>
      new Promise((resolve, reject) => {
        const marks: Record<string, number> = {}
        const forward = new ClientNodePortForward(kc)
        const live = new Set<{ readonly socket: Net.Socket; ws: WsLike | undefined }>()
        const server = Net.createServer((socket) => {
          const entry: { readonly socket: Net.Socket; ws: WsLike | undefined } = { socket, ws: undefined }
          live.add(entry)
          socket.setNoDelay(true)
          socket.on("error", () => socket.destroy())
          socket.on("close", () => {
            live.delete(entry)
            entry.ws?.close()
          })
          forward.portForward(t.namespace, t.pod, [t.port], socket, null, socket).then(
            (ws) => {
              const w = ws as unknown as WsLike
              entry.ws = w
              w.on("close", () => socket.destroy())
              if (socket.destroyed) w.close()
            },
            () => socket.destroy()
          )
        })
        server.once("error", reject)
        server.listen({ host: "127.0.0.1", port: 0 }, () => {
          marks.listening = performance.now()
          resolve({
            port: (server.address() as Net.AddressInfo).port,
            hosts: ["127.0.0.1"],
            marks,
            kubectlPid: undefined,
            close: () =>
              new Promise<void>((res) => {
                for (const e of live) {
                  e.socket.destroy()
                  e.ws?.close()
                }
                server.close(() => res())
              }),
            exited: () => Promise.resolve()
          })
        })
      }),
    dispose: () => Promise.resolve()
  }
}

// ---------------------------------------------------------------------------------------------
// execa alone (a reference for the memory table: what kube-forward's process runner costs without Effect)

/** kubectl spawned with execa and the same options kube-forward's Kubectl layer uses, stdout read by hand. */
export const execaKubectl = (id: string, label: string, s: Settings): Contender => ({
  id,
  label,
  verifies: false,
  open: async (t) => {
    const { execa } = await import("execa")
    const marks: Record<string, number> = {}
    // the options of @kube-forward/core's Kubectl layer (packages/core/src/Kubectl.ts)
    const child = execa(s.kubectl, kubeForwardArgs(s, t), {
      killDescendants: true,
      forceKillAfterDelay: false,
      cleanup: false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      buffer: false,
      reject: false,
      env: { KUBECACHEDIR: s.cacheDir },
      extendEnv: true
    })
    const port = await new Promise<number>((resolve, reject) => {
      let out = ""
      child.stdout?.setEncoding("utf8")
      child.stderr?.resume()
      child.stdout?.on("data", (d: string) => {
        out += d
        const m = FORWARDING.exec(out)
        if (m !== null) resolve(Number(m[1]))
      })
      child.then((r) => reject(new Error(`kubectl exited (${r.exitCode ?? r.signal})`)), reject)
    })
    return {
      port,
      hosts: ["127.0.0.1"],
      marks,
      kubectlPid: child.pid,
      close: async () => {
        child.kill("SIGTERM")
        await child
      },
      exited: async () => {
        await child
      }
    }
  },
  dispose: () => Promise.resolve()
})
