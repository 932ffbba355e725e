/**
 * Reading kubectl's output, purely: lines in, `Ready(ports)` or a typed failure out.
 *
 * {@link KubectlOutput} follows one kubectl process: the `Forwarding from` lines on stdout
 * make it ready, stderr lines are kept (the last 500) and read into the most specific error
 * when kubectl exits, fails to listen, or a check connection fails. No I/O, no clock: the
 * backend feeds it what happened and acts on what it answers. The texts are the ones real
 * kubectl 1.27–1.35 print (see the protocol reference, section E).
 *
 * @internal
 */
import type { ForwardedPort } from "../Forwarder.ts"
import type { ForwardSpec, RemotePort } from "../ForwardSpec.ts"
import type { ExitStatus, OutputLine } from "../Kubectl.ts"
import {
  ClusterUnreachable,
  Forbidden,
  KubeconfigInvalid,
  KubectlFailed,
  type OpenError,
  PodNotFound,
  PodNotRunning,
  PortInUse,
  PortNotFound,
  RemoteRefused,
  Unauthorized,
  VerifyFailed
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

/**
 * A klog line (`E1126 06:06:49.680024   10884 file.go:123] …`): kubectl's log output, warnings
 * about discovery and the like. Its text never decides the error kubectl ended with; only the
 * kubelet's stream errors are read from such lines.
 */
const KLOG = /^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]]*\] /

/** Causes of "Unable to connect" that are configuration, not a server that is down. */
const TLS_FAILURE = /x509|certificate|tls:/i
const CREDENTIALS_FAILURE = /getting credentials|exec plugin|executable .* not found/i

type Rule = (line: string, ctx: FailureContext, exit: ExitStatus) => OpenError | undefined

const rule =
  (re: RegExp, make: (m: RegExpExecArray, ctx: FailureContext, exit: ExitStatus) => OpenError | undefined): Rule =>
  (line, ctx, exit) => {
    const m = re.exec(line)
    return m === null ? undefined : make(m, ctx, exit)
  }

const portValue = (text: string): number | string => /^\d+$/.test(text) ? Number(text) : text

/** kubectl's final words, each a whole line as it prints it (anchored, so a quote elsewhere cannot match). */
const RULES: ReadonlyArray<Rule> = [
  rule(/^Error in configuration: (.*)$/, (m) => new KubeconfigInvalid({ detail: m[1] })),
  rule(
    /^error: error loading config file (.*)$/,
    (m) => new KubeconfigInvalid({ detail: `error loading config file ${m[1]}` })
  ),
  rule(
    /^error: stat (.*): no such file or directory$/,
    (m) => new KubeconfigInvalid({ detail: `${m[1]}: no such file` })
  ),
  rule(
    /^Error from server \(NotFound\): (.*)$/,
    (m, ctx) => new PodNotFound({ target: ctx.target, namespace: ctx.namespace, detail: m[1] })
  ),
  rule(/^Error from server \(Forbidden\): (.*)$/, (m) => new Forbidden({ detail: m[1] })),
  rule(/^Error from server \(Unauthorized\): (.*)$/, (m) => new Unauthorized({ detail: m[1] })),
  rule(
    /^error: You must be logged in to the server ?(.*)$/,
    (m) => new Unauthorized({ detail: `you must be logged in to the server ${m[1]}`.trim() })
  ),
  rule(
    /^error: unable to forward port because pod is not running\. Current status=(\w+)/,
    (m, ctx) => new PodNotRunning({ target: ctx.target, namespace: ctx.namespace, phase: m[1] })
  ),
  rule(
    /^error: Service (\S+) does not have a service port (\S+)$/,
    (m, ctx) => new PortNotFound({ target: ctx.target, remotePort: portValue(m[2]), detail: m[0].slice(7) })
  ),
  rule(
    /^error: Service '([^']*)' does not have a named port '([^']*)'$/,
    (m, ctx) => new PortNotFound({ target: ctx.target, remotePort: m[2], detail: m[0].slice(7) })
  ),
  rule(
    /^error: Pod '([^']*)' does not have a named port '([^']*)'$/,
    (m, ctx) => new PortNotFound({ target: ctx.target, remotePort: m[2], detail: m[0].slice(7) })
  ),
  rule(
    /^error: timed out waiting for the condition/,
    (m, ctx) =>
      new PodNotFound({
        target: ctx.target,
        namespace: ctx.namespace,
        detail: `no running pod was found for it (${m[0].slice(7)})`
      })
  ),
  rule(/^error: error upgrading connection: (.*)$/, (m, ctx) => {
    const cause = m[1]
    if (/forbidden/i.test(cause)) return new Forbidden({ detail: cause })
    if (/unauthorized/i.test(cause)) return new Unauthorized({ detail: cause })
    if (/pod does not exist|not found/i.test(cause)) {
      return new PodNotFound({ target: ctx.target, namespace: ctx.namespace, detail: cause })
    }
    return undefined
  }),
  rule(
    /^The connection to the server (.*) was refused/,
    (m) => new ClusterUnreachable({ detail: `connection to ${m[1]} refused` })
  ),
  rule(/^Unable to connect to the server: (.*)$/, (m) =>
    CREDENTIALS_FAILURE.test(m[1])
      ? new Unauthorized({ detail: m[1] })
      : new ClusterUnreachable(TLS_FAILURE.test(m[1]) ? { detail: m[1], tls: true } : { detail: m[1] }))
]

/**
 * Maps kubectl's stderr (every line it printed) and how it exited to the most specific error.
 *
 * - A local listener that could not be opened because the port is taken is `PortInUse`.
 * - Otherwise kubectl's own lines (not its klog lines) are read from the last backwards, and
 *   the first that has a known meaning decides: kubectl prints the error it ends with last.
 * - Otherwise an error the kubelet sent on a connection's error stream is `RemoteRefused`.
 * - Anything else is `KubectlFailed`, which keeps the whole stderr and the exit.
 */
export const classifyFailure = (
  ctx: FailureContext,
  stderr: ReadonlyArray<string>,
  exit: ExitStatus
): OpenError => {
  const own = stderr.filter((line) => !KLOG.test(line))
  for (const line of own) {
    const listen = parseListenFailure(line)
    if (listen !== undefined && listen.inUse) {
      return new PortInUse({
        port: listen.port,
        address: listen.address ?? "localhost",
        dynamic: ctx.isDynamic(listen.port)
      })
    }
  }
  for (let i = own.length - 1; i >= 0; i--) {
    for (const r of RULES) {
      const error = r(own[i], ctx, exit)
      if (error !== undefined) return error
    }
  }
  for (const line of stderr) {
    const streamError = parseStreamError(line)
    if (streamError !== undefined) {
      return new RemoteRefused({
        target: ctx.target,
        remotePort: ctx.remoteOf(streamError.local) ?? streamError.remote,
        detail: streamError.cause
      })
    }
  }
  return new KubectlFailed({ exitCode: exit.exitCode, signal: exit.signal, stderr: stderr.join("\n") })
}

/** How a running process looks to the error mapping: no exit code, no signal. */
const RUNNING: ExitStatus = { exitCode: null, signal: null }

/**
 * A short human reason for a forward that was ready and then ended: the kubelet's error if one
 * was logged, otherwise kubectl's own last `error:` line, otherwise how it exited.
 */
export const lostReason = (stderr: ReadonlyArray<string>, exit: ExitStatus): string => {
  for (let i = stderr.length - 1; i >= 0; i--) {
    const e = parseStreamError(stderr[i])
    if (e !== undefined) return e.cause
  }
  for (let i = stderr.length - 1; i >= 0; i--) {
    if (stderr[i].startsWith("error: ")) return stderr[i].slice("error: ".length)
  }
  return exit.signal !== null ? `kubectl was killed by ${exit.signal}` : `kubectl exited with code ${exit.exitCode}`
}

// ---------------------------------------------------------------------------------------------
// one kubectl process
// ---------------------------------------------------------------------------------------------

/** What reading a line decided. */
export type Verdict =
  | { readonly _tag: "Ready"; readonly ports: ReadonlyArray<ForwardedPort> }
  | { readonly _tag: "Failed"; readonly error: OpenError }

const MAX_STDERR_LINES = 500

/** Assigns kubectl's `Forwarding from` lines to the requested ports. */
class ForwardingTable {
  private readonly locals: Array<number | undefined>
  readonly lines: Array<Array<Forwarding>>
  private readonly expected: number
  constructor(requested: ReadonlyArray<number>, addresses: ReadonlyArray<string>) {
    this.locals = requested.map((p) => p === 0 ? undefined : p)
    this.lines = requested.map(() => [])
    // a line for each explicit address, plus one for `localhost` (kubectl binds it on
    // 127.0.0.1 and ::1 and reports whichever worked; it fails only if neither did)
    this.expected = addresses.filter((a) => a !== "localhost").length + (addresses.includes("localhost") ? 1 : 0)
  }
  add(line: Forwarding): void {
    let index = this.locals.indexOf(line.local)
    if (index === -1) {
      index = this.locals.findIndex((l) => l === undefined)
      if (index === -1) return
      this.locals[index] = line.local
    }
    this.lines[index].push(line)
  }
  get complete(): boolean {
    return this.lines.every((l) => l.length >= this.expected)
  }
  /** The index of the spec port that local port `local` serves. */
  indexOf(local: number): number {
    return this.locals.indexOf(local)
  }
}

/** The state of one kubectl process's output, and what it means. */
export class KubectlOutput {
  private readonly table: ForwardingTable
  private readonly stderr: Array<string> = []
  private readonly ctx: FailureContext
  private listenFailed = false
  private ready = false
  /** How many stream errors (the kubelet's refusals) kubectl has logged so far. */
  streamErrors = 0

  private readonly spec: ForwardSpec

  constructor(
    spec: ForwardSpec,
    locals: ReadonlyArray<number>,
    context: { readonly namespace: string | undefined; readonly isDynamic: (local: number) => boolean }
  ) {
    this.spec = spec
    this.table = new ForwardingTable(locals, spec.addresses)
    this.ctx = {
      target: spec.resource,
      namespace: context.namespace,
      isDynamic: context.isDynamic,
      remoteOf: (local) => this.remoteOf(local)
    }
  }

  private remoteOf(local: number): RemotePort | undefined {
    const i = this.table.indexOf(local)
    return i === -1 ? undefined : this.spec.ports[i].remote
  }

  /** Reads one line; answers once: `Ready` when every port listens, `Failed` when a listener could not be opened. */
  push(line: OutputLine): Verdict | undefined {
    if (line.stream === "stdout") {
      const forwarding = parseForwarding(line.text)
      if (forwarding === undefined) return undefined
      this.table.add(forwarding)
      if (this.ready || !this.table.complete) return undefined
      this.ready = true
      return { _tag: "Ready", ports: this.ports() }
    }
    this.stderr.push(line.text)
    if (this.stderr.length > MAX_STDERR_LINES) this.stderr.splice(0, this.stderr.length - MAX_STDERR_LINES)
    if (parseStreamError(line.text) !== undefined) this.streamErrors++
    if (parseListenFailure(line.text) === undefined) return undefined
    // kubectl goes on with the ports it could bind; for us the forward failed
    this.listenFailed = true
    if (this.ready) return undefined
    this.ready = true
    return { _tag: "Failed", error: classifyFailure(this.ctx, this.stderr, RUNNING) }
  }

  private ports(): ReadonlyArray<ForwardedPort> {
    return this.spec.ports.map((p, i): ForwardedPort => {
      const first = this.table.lines[i][0]
      return { address: first.address, local: first.local, remote: p.remote, targetPort: first.remote }
    })
  }

  /** The error of a kubectl that exited before it was ready. */
  exitedEarly(exit: ExitStatus): OpenError {
    return classifyFailure(this.ctx, this.stderr, exit)
  }

  /**
   * The verdict of the check connections: `undefined` when they passed and kubectl said
   * nothing against it. `streamErrorsBefore` is {@link streamErrors} before they were made;
   * `exit` is kubectl's exit if it has exited; `checkFailure` the first failed connection.
   */
  afterCheck(check: {
    readonly streamErrorsBefore: number
    readonly exit: ExitStatus | undefined
    readonly checkFailure: { readonly local: number; readonly detail: string } | undefined
  }): OpenError | undefined {
    const refused = this.streamErrors > check.streamErrorsBefore
    if (refused || check.exit !== undefined || this.listenFailed) {
      const error = classifyFailure(this.ctx, this.stderr, check.exit ?? RUNNING)
      if (error._tag !== "KubectlFailed" || !refused) return error
      // kubectl logged the kubelet's refusal but said nothing more specific
      return new RemoteRefused({
        target: this.ctx.target,
        remotePort: this.spec.ports[0].remote,
        detail: this.stderr.join("\n")
      })
    }
    if (check.checkFailure === undefined) return undefined
    return new VerifyFailed({
      target: this.ctx.target,
      localPort: check.checkFailure.local,
      detail: check.checkFailure.detail
    })
  }

  /** Why a ready kubectl ended, in a few words. */
  lostReason(exit: ExitStatus): string {
    return lostReason(this.stderr, exit)
  }
}
