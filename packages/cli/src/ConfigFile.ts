/**
 * The config file of `kube-forward up`: named forwards in YAML or JSON, decoded with Schema.
 *
 * ```yaml
 * defaults:                 # optional: for every forward that does not say otherwise
 *   namespace: shop
 *   readyTimeout: 20s
 * forwards:
 *   web:
 *     target: svc/web
 *     ports: ["8080:80", metrics]   # kubectl's syntax; a number 5432 means 5432:5432
 *   db:
 *     target: pod/db-0
 *     namespace: data
 *     ports: [":5432"]             # a free local port
 *     keepalive: 10s               # or { interval: 10s, timeout: 2s }
 *     reconnect: false             # on by default
 * ```
 *
 * Fields of a forward (and of `defaults`): `target`, `ports` (strings in kubectl's syntax,
 * numbers, or `{ local, remote }`), `namespace`, `context`, `kubeconfig` (relative to the file),
 * `address` (one or a list), `readyTimeout`, `keepalive`, `reconnect`. A forward's own field
 * wins over `defaults`, which win over the command's flags. Unknown fields are errors (a typo
 * must not be ignored). Every error names the file and line, the forward and the field.
 *
 * @since 0.1.0
 */
import type { ForwardSpec } from "@kube-forward/core"
import { Effect, Result, Schema, SchemaIssue } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Document, LineCounter, parseDocument } from "yaml"
import { durationOption, type Forward, InvalidInput, nameIssue, type Plan, validate } from "./Plan.ts"
import * as Syntax from "./Syntax.ts"

const check = <T>(f: (value: T) => string | undefined) => Schema.makeFilter<T>((value) => f(value) ?? true)

const DurationText = Schema.String.check(check((s: string) => {
  const parsed = Syntax.parseDuration(s)
  return parsed._tag === "Failure" ? parsed.failure : undefined
}))

const PortEntry = Schema.Union([
  Schema.String,
  Schema.Number,
  Schema.Struct({ local: Schema.optional(Schema.Number), remote: Schema.Union([Schema.Number, Schema.String]) })
])

const settings = {
  namespace: Schema.optional(Schema.String),
  context: Schema.optional(Schema.String),
  kubeconfig: Schema.optional(Schema.String),
  address: Schema.optional(Schema.Union([Schema.String, Schema.Array(Schema.String)])),
  readyTimeout: Schema.optional(DurationText),
  keepalive: Schema.optional(Schema.Union([
    DurationText,
    Schema.Struct({ interval: DurationText, timeout: Schema.optional(DurationText) })
  ])),
  reconnect: Schema.optional(Schema.Boolean)
}

/**
 * The settings `defaults` may give (and each forward may override).
 *
 * @category schemas
 * @since 0.1.0
 */
export const Settings = Schema.Struct(settings)

/**
 * One forward of the file.
 *
 * @category schemas
 * @since 0.1.0
 */
export const ForwardEntry = Schema.Struct({ target: Schema.String, ports: Schema.Array(PortEntry), ...settings })

/**
 * The whole file.
 *
 * @category schemas
 * @since 0.1.0
 */
export const ConfigFile = Schema.Struct({
  defaults: Schema.optional(Settings),
  forwards: Schema.Record(Schema.String.check(check(nameIssue)), ForwardEntry).check(
    check((r: object) => Object.keys(r).length === 0 ? "must list at least one forward" : undefined)
  )
})

/**
 * The decoded file.
 *
 * @category models
 * @since 0.1.0
 */
export type ConfigFile = typeof ConfigFile.Type

/**
 * What the command's flags give to every forward that neither it nor `defaults` sets.
 *
 * @category models
 * @since 0.1.0
 */
export interface Fallbacks {
  readonly namespace?: string | undefined
  readonly context?: string | undefined
  readonly kubeconfig?: string | undefined
  readonly address?: ReadonlyArray<string> | undefined
  readonly readyTimeout?: string | undefined
  readonly keepalive?: string | undefined
  readonly reconnect: boolean
}

/**
 * The files `up` looks for, in order, when `-f` is not given.
 *
 * @category constants
 * @since 0.1.0
 */
export const defaultNames: ReadonlyArray<string> = ["kube-forward.yaml", "kube-forward.yml", "kube-forward.json"]

// ---------------------------------------------------------------------------------------------
// locations
// ---------------------------------------------------------------------------------------------

type Key = string | number

const pathText = (path: ReadonlyArray<Key>): string =>
  path.map((k, i) => typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`).join("")

/** Names a place in the file: `FILE:LINE: forward "web": ports[0]`. */
const makeLocator = (file: string, doc: Document, lines: LineCounter) => (path: ReadonlyArray<Key>): string => {
  let line: number | undefined
  for (let n = path.length; n >= 0 && line === undefined; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] | null } | undefined
    if (node?.range) line = lines.linePos(node.range[0]).line
  }
  const at = line === undefined ? file : `${file}:${line}`
  if (path[0] === "forwards" && path.length >= 2) {
    const rest = path.slice(2)
    return `${at}: forward ${JSON.stringify(String(path[1]))}${rest.length > 0 ? `: ${pathText(rest)}` : ""}`
  }
  return path.length === 0 ? at : `${at}: ${pathText(path)}`
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** Schema's message, made specific: unknown fields say which are known, a wrong type what it got. */
const issueText = (message: string, path: ReadonlyArray<Key>, input: unknown): string => {
  if (message === "Expected no excess property") return unknownField(path)
  if (!message.startsWith("Expected ") || message.includes(", got")) return message
  const value = path.reduce<unknown>(
    (v, k) => typeof v === "object" && v !== null ? (v as Record<Key, unknown>)[k] : undefined,
    input
  )
  return value === undefined ? message : `${message.replace(/ \| undefined$/, "")}, got ${JSON.stringify(value)}`
}

/** The message for an unknown field at `path`, with the fields that are known there. */
const unknownField = (path: ReadonlyArray<Key>): string => {
  // a forward whose name the key check rejected is reported as an excess key too
  const badName = path.length === 2 && path[0] === "forwards" ? nameIssue(String(path[1])) : undefined
  if (badName !== undefined) return badName
  const known = path.length <= 1
    ? ["defaults", "forwards"]
    : path[0] === "defaults"
    ? Object.keys(settings)
    : ["target", "ports", ...Object.keys(settings)]
  return `unknown field (a typo? known here: ${known.join(", ")})`
}

const keysOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): Array<Key> =>
  (path ?? []).map((p) => {
    const k = typeof p === "object" ? p.key : p
    return typeof k === "number" ? k : String(k)
  })

// ---------------------------------------------------------------------------------------------
// from the file to a plan
// ---------------------------------------------------------------------------------------------

type Entry = typeof ForwardEntry.Type
type SettingKey = keyof typeof settings

const portOf = (entry: typeof PortEntry.Type): Result.Result<ForwardSpec.PortInput, string> =>
  typeof entry === "string"
    ? Syntax.parsePort(entry)
    : typeof entry === "number"
    ? Result.succeed({ local: entry, remote: entry })
    : Result.succeed(entry)

const FLAGS: Record<SettingKey, string> = {
  namespace: "--namespace",
  context: "--context",
  kubeconfig: "--kubeconfig",
  address: "--address",
  readyTimeout: "--ready-timeout",
  keepalive: "--keepalive",
  reconnect: "--no-reconnect"
}

/** One forward of the file as a plan forward; syntax problems are added to `problems`. */
const toForward = (
  name: string,
  entry: Entry,
  config: ConfigFile,
  fallbacks: Fallbacks,
  ctx: { readonly dir: string; readonly locate: (path: ReadonlyArray<Key>) => string; readonly problems: Array<string> }
): Forward => {
  const defaults = config.defaults ?? {}
  const origin = (key: SettingKey): ReadonlyArray<Key> | undefined =>
    entry[key] !== undefined ? ["forwards", name, key] : defaults[key] !== undefined ? ["defaults", key] : undefined
  const pick = <K extends SettingKey>(key: K) => entry[key] ?? defaults[key]
  const where = (path: string): string => {
    const [field, ...rest] = path.split(".")
    if (field === "target") return ctx.locate(["forwards", name, "target"])
    if (field === "ports") {
      return ctx.locate(["forwards", name, "ports", ...(rest.length > 0 ? [kept[Number(rest[0])]] : [])])
    }
    const from = origin(field as SettingKey)
    if (from === undefined) return `${FLAGS[field as SettingKey] ?? field} (used by forward ${JSON.stringify(name)})`
    return from[0] === "defaults" ? `${ctx.locate(from)} (used by forward ${JSON.stringify(name)})` : ctx.locate(from)
  }
  const kept: Array<number> = []
  const ports = entry.ports.flatMap((port, i) => {
    const parsed = portOf(port)
    if (parsed._tag === "Success") return (kept.push(i), [parsed.success])
    ctx.problems.push(`${ctx.locate(["forwards", name, "ports", i])}: ${JSON.stringify(port)} ${parsed.failure}`)
    return []
  })
  const keepaliveSetting = pick("keepalive")
  const fileKeepalive = typeof keepaliveSetting === "string" ? { interval: keepaliveSetting } : keepaliveSetting
  const flagKeepalive = durationOption(fallbacks.keepalive, "--keepalive", ctx.problems)
  const kubeconfig = pick("kubeconfig")
  const spec: ForwardSpec.Input = {
    target: entry.target,
    ports,
    namespace: pick("namespace") ?? fallbacks.namespace,
    context: pick("context") ?? fallbacks.context,
    kubeconfig: kubeconfig !== undefined ? resolvePath(kubeconfig, ctx.dir) : fallbacks.kubeconfig,
    address: pick("address") ?? (fallbacks.address?.length ? Syntax.splitAddresses(fallbacks.address) : undefined),
    readyTimeout: pick("readyTimeout") !== undefined
      ? Result.getOrUndefined(Syntax.parseDuration(pick("readyTimeout")!))
      : durationOption(fallbacks.readyTimeout, "--ready-timeout", ctx.problems),
    keepalive: fileKeepalive !== undefined
      ? {
        interval: Result.getOrUndefined(Syntax.parseDuration(fileKeepalive.interval))!,
        timeout: fileKeepalive.timeout === undefined
          ? undefined
          : Result.getOrUndefined(Syntax.parseDuration(fileKeepalive.timeout))
      }
      : flagKeepalive === undefined
      ? undefined
      : { interval: flagKeepalive }
  }
  return { name, target: entry.target, spec, reconnect: pick("reconnect") ?? fallbacks.reconnect, where }
}

/** `~/x` and paths relative to the config file's directory. */
const resolvePath = (path: string, dir: string): string =>
  path === "~" || path.startsWith("~/") ? Path.join(Os.homedir(), path.slice(1)) : Path.resolve(dir, path)

/**
 * Parses and checks a config file's text (YAML or JSON) into a plan. `file` is the path used in
 * messages and to resolve relative kubeconfig paths. Nothing is read or connected.
 *
 * @category decoding
 * @since 0.1.0
 */
export const parse = (text: string, file: string, fallbacks: Fallbacks): Effect.Effect<Plan, InvalidInput> =>
  Effect.gen(function*() {
    const lines = new LineCounter()
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true })
    if (doc.errors.length > 0) {
      return yield* new InvalidInput({
        problems: doc.errors.map((e) => {
          const pos = e.linePos?.[0]
          const message = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")
          return `${file}${pos ? `:${pos.line}:${pos.col}` : ""}: ${message}`
        })
      })
    }
    const locate = makeLocator(file, doc, lines)
    const input: unknown = doc.toJS() ?? {}
    const decoded = yield* Schema.decodeUnknownEffect(ConfigFile)(input, {
      errors: "all",
      onExcessProperty: "error"
    }).pipe(
      Effect.mapError((error) =>
        new InvalidInput({
          problems: formatIssues(error.issue).issues.map((issue) => {
            const path = keysOf(issue.path)
            return `${locate(path)}: ${issueText(issue.message, path, input)}`
          })
        })
      )
    )
    const problems: Array<string> = []
    const ctx = { dir: Path.dirname(Path.resolve(file)), locate, problems }
    const forwards = Object.entries(decoded.forwards).map(([name, entry]) =>
      toForward(name, entry, decoded, fallbacks, ctx)
    )
    return yield* validate({ forwards }, problems)
  })

/**
 * Finds the file to read: `file` when given, else the first of {@link defaultNames} in `cwd`.
 *
 * @category files
 * @since 0.1.0
 */
export const find = (file: string | undefined, cwd: string): Effect.Effect<string, InvalidInput> =>
  file !== undefined
    ? Effect.succeed(file)
    : Effect.gen(function*() {
      for (const name of defaultNames) {
        const candidate = Path.join(cwd, name)
        const exists = yield* Effect.promise(() => Fs.access(candidate).then(() => true, () => false))
        if (exists) return candidate
      }
      return yield* new InvalidInput({
        problems: [`no config file: give one with -f FILE, or create ${defaultNames.join(", ")} in ${cwd}`]
      })
    })

/**
 * Reads and parses a config file (see {@link parse}); a file that cannot be read is invalid input.
 *
 * @category files
 * @since 0.1.0
 */
export const load = (file: string, fallbacks: Fallbacks): Effect.Effect<Plan, InvalidInput> =>
  Effect.tryPromise({
    try: () => Fs.readFile(file, "utf8"),
    catch: (cause) =>
      new InvalidInput({ problems: [`cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`] })
  }).pipe(Effect.flatMap((text) => parse(text, file, fallbacks)))
