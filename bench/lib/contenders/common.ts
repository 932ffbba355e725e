/**
 * What every contender shares: the interface the bench drives them through, and the few socket
 * helpers (an echo round trip, the check connection kube-forward does) used to say when a
 * contender that does not verify by itself has carried bytes to the pod.
 */
import type { ChildProcess } from "node:child_process"
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
  /** The kubectl process, when there is one and the contender knows it. */
  readonly kubectlPid: number | undefined
  /** The contender's own close. */
  readonly close: () => Promise<void>
  /** Resolves once every process of this forward has exited (cleanup between runs; never timed). */
  readonly exited: () => Promise<void>
}

/** How the bytes of a contender travel: a kubectl process, this process, or no forward at all. */
export type Carrier = "kubectl" | "in-process" | "none"

export interface Contender {
  readonly id: string
  readonly label: string
  readonly carrier: Carrier
  /** `open` returning means bytes reached the pod (kube-forward's check connection). */
  readonly verifies: boolean
  readonly open: (target: Target) => Promise<Opened>
  readonly dispose: () => Promise<void>
}

/** Many forwards opened at once by one call (the idiomatic way for kube-forward: one scope). */
export interface Many {
  readonly ports: ReadonlyArray<number>
  readonly close: () => Promise<void>
}

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

/** Resolves when `child` has exited and its pipes closed. */
export const exitOf = (child: ChildProcess): Promise<void> =>
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

/** The `Forwarding from` line kubectl prints once it listens. */
export const FORWARDING = /^Forwarding from 127\.0\.0\.1:(\d+) -> \d+/m
