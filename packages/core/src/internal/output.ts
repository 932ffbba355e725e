/**
 * Reading kubectl's output: the `Forwarding from` lines on stdout, and the stderr texts that
 * map to typed errors. The texts are the ones real kubectl 1.27–1.35 print (see the protocol
 * reference, section E).
 *
 * @internal
 */
import {
  ClusterUnreachable,
  Forbidden,
  KubectlFailed,
  PodNotFound,
  PodNotRunning,
  PortInUse,
  type PortForwardError,
  RemoteRefused,
  Unauthorized
} from "../PortForwardError.ts"

/** One listener kubectl reported: `Forwarding from 127.0.0.1:8080 -> 80`. */
export interface Forwarding {
  readonly address: string
  readonly local: number
  readonly remote: number
}

const FORWARDING = /^Forwarding from (\[[^\]]+\]|[^\s:]+):(\d+) -> (\d+)\s*$/

/** Parses a `Forwarding from ADDRESS:PORT -> REMOTE` line (IPv6 addresses come in brackets). */
export const parseForwarding = (line: string): Forwarding | undefined => {
  const m = FORWARDING.exec(line)
  if (m === null) return undefined
  const address = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1]
  return { address, local: Number(m[2]), remote: Number(m[3]) }
}

const UNABLE_TO_LISTEN = /^Unable to listen on port (\d+): (.*)$/

/** A `Unable to listen on port N: …` line: kubectl could not open a local listener. */
export interface ListenFailure {
  readonly port: number
  readonly address: string | undefined
  readonly inUse: boolean
  readonly text: string
}

/** Parses kubectl's `Unable to listen on port N: …` stderr line. */
export const parseListenFailure = (line: string): ListenFailure | undefined => {
  const m = UNABLE_TO_LISTEN.exec(line)
  if (m === null) return undefined
  const address = /listen tcp[46]? (\[[^\]]+\]|[^\s:]+):\d+/.exec(m[2])
  return {
    port: Number(m[1]),
    address: address === null ? undefined : address[1].replace(/^\[|\]$/g, ""),
    inUse: m[2].includes("address already in use"),
    text: line
  }
}

const FORWARD_ERROR = /an error occurred forwarding (\d+) -> (\d+): (.*)$/

/** An error the kubelet sent back on a connection's error stream, as kubectl logs it. */
export interface StreamError {
  readonly local: number
  readonly remote: number
  readonly cause: string
}

/**
 * Parses `… an error occurred forwarding 8080 -> 80: <cause>` in both the klog format of
 * kubectl ≤ 1.30 and the structured `"Unhandled Error" err="…"` format of 1.31+.
 */
export const parseStreamError = (line: string): StreamError | undefined => {
  const m = FORWARD_ERROR.exec(line)
  if (m === null) return undefined
  let cause = m[3]
  if (line.includes("\"Unhandled Error\"") && cause.endsWith("\"")) {
    cause = cause.slice(0, -1).replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
  }
  return { local: Number(m[1]), remote: Number(m[2]), cause }
}

/** kubectl prints `Handling connection for N` for each accepted local connection. */
export const isHandlingConnection = (line: string): boolean => line.startsWith("Handling connection for ")

/** The facts the error mapping needs about the forward. */
export interface FailureContext {
  readonly target: string
  readonly namespace: string | undefined
  /** The requested remote port of each local port, to name the port in `RemoteRefused`. */
  readonly remoteOf: (local: number) => number | string | undefined
  /** Whether a local port was chosen by the library rather than by the user. */
  readonly isDynamic: (local: number) => boolean
}

/** How kubectl ended. */
export interface ExitInfo {
  readonly exitCode: number | null
  readonly signal: string | null
}

const NOT_FOUND = /Error from server \(NotFound\): (.*)$/
const NOT_RUNNING = /pod is not running\. Current status=(\w+)/
const CONNECTION_REFUSED = /The connection to the server (.*) was refused/
const UNABLE_TO_CONNECT = /Unable to connect to the server: (.*)$/
const FORBIDDEN = /Error from server \(Forbidden\): (.*)$/
const UNAUTHORIZED = /\(Unauthorized\)|Unauthorized$/
const UPGRADE = /error upgrading connection: (.*)$/


/**
 * Maps kubectl's stderr (every line it printed) and how it exited to the most specific error.
 * Lines are tried from the most specific meaning to the least; anything unrecognised becomes
 * `KubectlFailed`, which keeps the whole stderr.
 */
export const classifyFailure = (
  ctx: FailureContext,
  stderr: ReadonlyArray<string>,
  exit: ExitInfo
): PortForwardError => {
  const find = <A>(f: (line: string) => A | undefined): A | undefined => {
    for (const line of stderr) {
      const a = f(line)
      if (a !== undefined) return a
    }
    return undefined
  }
  const match = (re: RegExp) => find((line) => re.exec(line) ?? undefined)

  const listen = find(parseListenFailure)
  if (listen !== undefined && listen.inUse) {
    return new PortInUse({
      port: listen.port,
      address: listen.address ?? "localhost",
      dynamic: ctx.isDynamic(listen.port)
    })
  }
  const notFound = match(NOT_FOUND)
  if (notFound !== null && notFound !== undefined) {
    return new PodNotFound({ target: ctx.target, namespace: ctx.namespace, detail: notFound[1] })
  }
  const upgrade = match(UPGRADE)
  if (upgrade !== undefined && /pod does not exist|not found/i.test(upgrade[1]) && !/forbidden/i.test(upgrade[1])) {
    return new PodNotFound({ target: ctx.target, namespace: ctx.namespace, detail: upgrade[1] })
  }
  const noPods = match(/timed out waiting for the condition|no pods found|no matching pods/i)
  if (noPods !== undefined) {
    return new PodNotFound({
      target: ctx.target,
      namespace: ctx.namespace,
      detail: `no running pod was found for it (${noPods[0]})`
    })
  }
  const notRunning = match(NOT_RUNNING)
  if (notRunning !== undefined) {
    return new PodNotRunning({ target: ctx.target, namespace: ctx.namespace, phase: notRunning[1] })
  }
  const forbidden = match(FORBIDDEN) ?? (upgrade !== undefined && /forbidden/i.test(upgrade[1]) ? upgrade : undefined)
  if (forbidden !== undefined) return new Forbidden({ detail: forbidden[1] })
  const unauthorized = match(UNAUTHORIZED)
  if (unauthorized !== undefined) return new Unauthorized({ detail: unauthorized.input.replace(/^error: /, "") })
  const refused = match(CONNECTION_REFUSED)
  if (refused !== undefined) return new ClusterUnreachable({ detail: `connection to ${refused[1]} refused` })
  const unable = match(UNABLE_TO_CONNECT)
  if (unable !== undefined) return new ClusterUnreachable({ detail: unable[1] })
  const streamError = find(parseStreamError)
  if (streamError !== undefined) {
    return new RemoteRefused({
      target: ctx.target,
      remotePort: ctx.remoteOf(streamError.local) ?? streamError.remote,
      detail: streamError.cause
    })
  }
  return new KubectlFailed({ exitCode: exit.exitCode, signal: exit.signal, stderr: stderr.join("\n") })
}

/**
 * A short human reason for a forward that was ready and then ended: the kubelet's error if one
 * was logged, otherwise kubectl's own last `error:` line, otherwise how it exited.
 */
export const lostReason = (stderr: ReadonlyArray<string>, exit: ExitInfo): string => {
  for (let i = stderr.length - 1; i >= 0; i--) {
    const e = parseStreamError(stderr[i])
    if (e !== undefined) return e.cause
  }
  for (let i = stderr.length - 1; i >= 0; i--) {
    if (stderr[i].startsWith("error: ")) return stderr[i].slice("error: ".length)
  }
  return exit.signal !== null ? `kubectl was killed by ${exit.signal}` : `kubectl exited with code ${exit.exitCode}`
}
