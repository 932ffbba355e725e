/**
 * What a user may ask for when opening a port forward, as a Schema.
 *
 * A spec is decoded before anything is started: a port outside 1–65535, a name that is not a
 * valid Kubernetes name (or that starts with `-`, so it could never become a kubectl flag), an
 * unknown target kind, an address that is not an IP, an empty or oversized value, all fail with
 * `InvalidSpec` naming the field, and no process is spawned.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Schedule, Schema, SchemaGetter, SchemaIssue } from "effect"
import * as Net from "node:net"
import { InvalidSpec, type PortForwardError } from "./PortForwardError.ts"

// ---------------------------------------------------------------------------------------------
// field checks
// ---------------------------------------------------------------------------------------------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/
// the point of this pattern is to find control characters in a value
// oxlint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/

const describe = (value: string): string => JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)

/** Checks a Kubernetes object name (DNS-1123 subdomain, at most 253 characters). */
const objectNameIssue = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.startsWith("-")) return `${describe(name)} must not start with "-"`
  if (name.length > 253) return `must be at most 253 characters (got ${name.length})`
  if (!DNS1123_SUBDOMAIN.test(name)) {
    return `${
      describe(name)
    } is not a valid Kubernetes name (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)`
  }
  return undefined
}

/** Checks a namespace (DNS-1123 label, at most 63 characters). */
const namespaceIssue = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.startsWith("-")) return `${describe(name)} must not start with "-"`
  if (name.length > 63) return `must be at most 63 characters (got ${name.length})`
  if (!DNS1123_LABEL.test(name)) {
    return `${
      describe(name)
    } is not a valid namespace (lowercase letters, digits and "-", starting and ending with a letter or digit)`
  }
  return undefined
}

/** Checks a named container port (IANA_SVC_NAME). */
const portNameIssue = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.startsWith("-")) return `${describe(name)} must not start with "-"`
  if (name.length > 15) return `a port name must be at most 15 characters (got ${name.length})`
  if (!IANA_SVC_NAME.test(name) || name.includes("--") || !/[a-z]/.test(name)) {
    return `${
      describe(name)
    } is not a valid port name (lowercase letters, digits and single "-", with at least one letter)`
  }
  return undefined
}

/** Checks a free-form value passed to kubectl as `--flag=value` (context, kubeconfig path). */
const flagValueIssue = (value: string): string | undefined => {
  if (value.length === 0) return "must not be empty"
  if (value.length > 4096) return `must be at most 4096 characters (got ${value.length})`
  if (CONTROL_CHARS.test(value)) return "must not contain control characters"
  return undefined
}

const portIssue = (port: number): string | undefined =>
  Number.isInteger(port) && port >= 1 && port <= 65535
    ? undefined
    : `${port} is not a port number (an integer from 1 to 65535)`

const addressIssue = (address: string): string | undefined => {
  if (address === "localhost") return undefined
  if (address.length === 0) return "must not be empty"
  if (Net.isIP(address) === 0) return `${describe(address)} is not an IP address or "localhost"`
  return undefined
}

const check = <T>(f: (value: T) => string | undefined) => Schema.makeFilter<T>((value) => f(value) ?? true)

/**
 * The kinds of object a forward can target. kubectl resolves services, deployments and
 * statefulsets to one of their running pods.
 *
 * @category models
 * @since 0.1.0
 */
export type TargetKind = "pod" | "service" | "deployment" | "statefulset"

/**
 * A decoded target: its kind and its name.
 *
 * @category models
 * @since 0.1.0
 */
export interface Target {
  readonly kind: TargetKind
  readonly name: string
}

const kindAliases: Record<string, TargetKind> = {
  pod: "pod",
  pods: "pod",
  po: "pod",
  svc: "service",
  service: "service",
  services: "service",
  deploy: "deployment",
  deployment: "deployment",
  deployments: "deployment",
  sts: "statefulset",
  statefulset: "statefulset",
  statefulsets: "statefulset"
}

const parseTargetString = (input: string): Target | string => {
  if (input.length === 0) return "must not be empty"
  if (input.startsWith("-")) return `${describe(input)} must not start with "-"`
  const slash = input.indexOf("/")
  const kindText = slash === -1 ? "pod" : input.slice(0, slash)
  const name = slash === -1 ? input : input.slice(slash + 1)
  const kind = Object.hasOwn(kindAliases, kindText) ? kindAliases[kindText] : undefined
  if (kind === undefined) {
    return `unknown target kind ${describe(kindText)} (use pod/NAME, svc/NAME, deployment/NAME or statefulset/NAME)`
  }
  return objectNameIssue(name) ?? { kind, name }
}

const TargetObject = Schema.Struct({
  kind: Schema.Literals(["pod", "service", "deployment", "statefulset"]),
  name: Schema.String.check(check(objectNameIssue))
})

/** `KIND/NAME` (or a bare pod name), parsed once, into a {@link Target}. */
const TargetString = Schema.String.pipe(Schema.decodeTo(TargetObject, {
  decode: SchemaGetter.transformEffect((input: string, options) => {
    const parsed = parseTargetString(input)
    return typeof parsed === "string"
      ? Effect.fail(new SchemaIssue.InvalidValue({ message: parsed }, input, options))
      : Effect.succeed(parsed)
  }),
  encode: SchemaGetter.transform((target: Target) => `${target.kind}/${target.name}`)
}))

const RemotePort = Schema.Union([
  Schema.Number.check(check(portIssue)),
  Schema.String.check(check(portNameIssue))
])

const PortMapping = Schema.Struct({
  local: Schema.optional(Schema.Number.check(check(portIssue))),
  remote: RemotePort
})

const DurationInput = Schema.declare(
  (u: unknown): u is Duration.Input => {
    try {
      return Option.match(Duration.fromInput(u as Duration.Input), {
        onNone: () => false,
        onSome: (d) => Duration.isPositive(d) && Duration.isFinite(d)
      })
    } catch {
      return false
    }
  },
  { expected: "a positive, finite duration (e.g. \"5 seconds\" or a number of milliseconds)" }
)

const AnySchedule = Schema.declare(
  (u: unknown): u is Schedule.Schedule<unknown, PortForwardError> => Schedule.isSchedule(u),
  { expected: "a Schedule" }
)

const Addresses = Schema.Union([
  Schema.String.check(check(addressIssue)),
  Schema.Array(Schema.String.check(check(addressIssue))).check(
    check((a: ReadonlyArray<string>) => {
      if (a.length === 0) return "must list at least one address"
      if (a.length > 8) return `at most 8 addresses (got ${a.length})`
      if (new Set(a).size !== a.length) return "must not list an address twice"
      if (a.includes("localhost") && (a.includes("127.0.0.1") || a.includes("::1"))) {
        return "\"localhost\" already means 127.0.0.1 and ::1; list them or localhost, not both"
      }
      return undefined
    })
  )
])

const Ports = Schema.Array(Schema.Union([RemotePort, PortMapping])).check(
  check((ports: ReadonlyArray<number | string | { readonly local?: number | undefined }>) => {
    if (ports.length === 0) return "must list at least one port"
    if (ports.length > 64) return `at most 64 ports in one forward (got ${ports.length})`
    const locals = ports.flatMap((p) => typeof p === "object" && p.local !== undefined ? [p.local] : [])
    const seen = new Set<number>()
    for (const local of locals) {
      if (seen.has(local)) return `local port ${local} is listed twice`
      seen.add(local)
    }
    return undefined
  })
)

/**
 * The Schema of a forward spec as users write it.
 *
 * @category schemas
 * @since 0.1.0
 */
export const ForwardSpecInput = Schema.Struct({
  target: Schema.Union([TargetString, TargetObject]),
  namespace: Schema.optional(Schema.String.check(check(namespaceIssue))),
  context: Schema.optional(Schema.String.check(check(flagValueIssue))),
  kubeconfig: Schema.optional(Schema.String.check(check(flagValueIssue))),
  ports: Ports,
  address: Schema.optional(Addresses),
  readyTimeout: Schema.optional(DurationInput),
  verify: Schema.optional(Schema.Boolean),
  retry: Schema.optional(AnySchedule),
  reconnect: Schema.optional(AnySchedule),
  keepalive: Schema.optional(Schema.Struct({
    interval: DurationInput,
    timeout: Schema.optional(DurationInput)
  }))
})

/**
 * A remote port: a number, or the name of a container port (`"http"`).
 *
 * @category models
 * @since 0.1.0
 */
export type RemotePort = number | string

/**
 * One port of a forward as users write it: a remote port alone (the local port is then
 * chosen dynamically), or `{ local, remote }`; leave out `local` for a dynamic local port.
 *
 * @category models
 * @since 0.1.0
 */
export type PortInput = RemotePort | { readonly local?: number | undefined; readonly remote: RemotePort }

/**
 * A forward spec as users write it.
 *
 * @example
 * ```ts
 * const spec: ForwardSpec.Input = {
 *   target: "svc/web",          // pod/NAME, svc/NAME, deployment/NAME, statefulset/NAME, or a bare pod name
 *   namespace: "production",
 *   ports: [{ local: 8080, remote: 80 }, "metrics"], // "metrics": named remote port, dynamic local port
 *   readyTimeout: "10 seconds"
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Input {
  /** `pod/NAME`, `svc/NAME`, `deployment/NAME`, `statefulset/NAME` (or their kubectl aliases), a bare pod name, or `{ kind, name }`. */
  readonly target: string | Target
  /** The namespace; kubectl's current namespace when left out. */
  readonly namespace?: string | undefined
  /** The kubeconfig context; the Kubectl layer's (or kubeconfig's current) context when left out. */
  readonly context?: string | undefined
  /** A kubeconfig file; the Kubectl layer's (or `KUBECONFIG`) when left out. */
  readonly kubeconfig?: string | undefined
  /** The ports to forward, in one kubectl process. */
  readonly ports: ReadonlyArray<PortInput>
  /** Local bind address(es): IPs or `"localhost"` (127.0.0.1 and ::1). Default `"127.0.0.1"`. */
  readonly address?: string | ReadonlyArray<string> | undefined
  /** How long kubectl may take to report every port forwarded (and the check connection to pass). Default 30 seconds. */
  readonly readyTimeout?: Duration.Input | undefined
  /** Make one connection through each port before calling the forward ready. Default `true`. */
  readonly verify?: boolean | undefined
  /** Retry the start-up on transient errors with this schedule (see `Retry`). Default: no retry. */
  readonly retry?: Schedule.Schedule<unknown, PortForwardError> | undefined
  /** After the forward was ready and kubectl went away, bring it back on the same local ports, on this schedule. Default: no reconnection. */
  readonly reconnect?: Schedule.Schedule<unknown, PortForwardError> | undefined
  /** Probe the forward every `interval`; a probe that fails within `timeout` (default 5 s) counts as a lost forward. */
  readonly keepalive?: { readonly interval: Duration.Input; readonly timeout?: Duration.Input | undefined } | undefined
}

/**
 * The hand-written {@link Input} (with its field docs) and the Schema's encoded side must
 * describe the same object: this fails to compile when one changes without the other.
 */
type Same<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false
const inputMatchesSchema: Same<Input, typeof ForwardSpecInput.Encoded> = true
void inputMatchesSchema

/**
 * One port of a decoded spec. `local` is `undefined` for a dynamic local port.
 *
 * @category models
 * @since 0.1.0
 */
export interface PortRequest {
  readonly local: number | undefined
  readonly remote: RemotePort
}

/**
 * A decoded, normalised spec: what the rest of the library works with.
 *
 * @category models
 * @since 0.1.0
 */
export interface ForwardSpec {
  readonly target: Target
  /** The target as kubectl writes it, e.g. `pod/web`. */
  readonly resource: string
  readonly namespace: string | undefined
  readonly context: string | undefined
  readonly kubeconfig: string | undefined
  readonly ports: ReadonlyArray<PortRequest>
  readonly addresses: ReadonlyArray<string>
  readonly readyTimeout: Duration.Duration
  readonly verify: boolean
  readonly retry: Schedule.Schedule<unknown, PortForwardError> | undefined
  readonly reconnect: Schedule.Schedule<unknown, PortForwardError> | undefined
  readonly keepalive: { readonly interval: Duration.Duration; readonly timeout: Duration.Duration } | undefined
}

/**
 * The ready timeout when the spec gives none.
 *
 * @category defaults
 * @since 0.1.0
 */
export const defaultReadyTimeout: Duration.Duration = Duration.seconds(30)

/**
 * The bind address when the spec gives none: IPv4 loopback only.
 *
 * @category defaults
 * @since 0.1.0
 */
export const defaultAddress = "127.0.0.1"

const decodeInput = Schema.decodeUnknownEffect(ForwardSpecInput)
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathText = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string =>
  path === undefined || path.length === 0
    ? "spec"
    : path.map((p) => String(typeof p === "object" ? p.key : p)).join(".")

const normalise = (input: typeof ForwardSpecInput.Type): ForwardSpec => {
  const target: Target = { kind: input.target.kind, name: input.target.name }
  const addresses = input.address === undefined
    ? [defaultAddress]
    : typeof input.address === "string"
    ? [input.address]
    : input.address
  return {
    target,
    resource: `${target.kind}/${target.name}`,
    namespace: input.namespace,
    context: input.context,
    kubeconfig: input.kubeconfig,
    ports: input.ports.map((p): PortRequest =>
      typeof p === "object" ? { local: p.local, remote: p.remote } : { local: undefined, remote: p }
    ),
    addresses,
    readyTimeout: input.readyTimeout === undefined ? defaultReadyTimeout : Duration.fromInputUnsafe(input.readyTimeout),
    verify: input.verify ?? true,
    retry: input.retry,
    reconnect: input.reconnect,
    keepalive: input.keepalive === undefined ? undefined : {
      interval: Duration.fromInputUnsafe(input.keepalive.interval),
      timeout: input.keepalive.timeout === undefined
        ? Duration.seconds(5)
        : Duration.fromInputUnsafe(input.keepalive.timeout)
    }
  }
}

/**
 * Decodes and normalises a spec. Fails with `InvalidSpec` listing every problem (each with the
 * path of its field), without side effects.
 *
 * @category decoding
 * @since 0.1.0
 */
export const decode = (input: unknown): Effect.Effect<ForwardSpec, InvalidSpec> =>
  decodeInput(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.map(normalise),
    Effect.mapError((error) =>
      new InvalidSpec({
        issues: formatIssues(error.issue).issues.map((issue) => ({
          path: pathText(issue.path),
          message: issue.message
        }))
      })
    )
  )
