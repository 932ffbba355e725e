/**
 * What the command is asked to open: named forwards, each a `ForwardSpec.Input` of the library,
 * from the command line (`kube-forward TARGET PORT…`) or a config file (`kube-forward up`).
 *
 * A plan is checked before anything connects, with the library's own decoding
 * (`ForwardSpec.decode`), so the command rejects exactly what `PortForward.make` would. Each
 * forward knows where its fields came from (`PORT "99999:80"`, `kube-forward.yaml:7: forward
 * "db": ports[0]`), so a message says what is wrong and where.
 *
 * @since 0.1.0
 */
import { ForwardSpec } from "@kube-forward/core"
import { type Duration, Effect, Schema } from "effect"
import * as Syntax from "./Syntax.ts"

/**
 * One forward of a plan.
 *
 * @category models
 * @since 0.1.0
 */
export interface Forward {
  /** Its name: in the table, the JSON events, the environment of `--` and the ports file. */
  readonly name: string
  /** The target as the user wrote it (`svc/web`). */
  readonly target: string
  /** The spec, without the retry and reconnect schedules (the session adds them). */
  readonly spec: ForwardSpec.Input
  /** Bring the forward back after it was lost (on by default). */
  readonly reconnect: boolean
  /** Where a field of `spec` came from, for messages: `ports.0.local` → `PORT "99999:80"`. */
  readonly where: (path: string) => string
}

/**
 * The forwards to open, in order.
 *
 * @category models
 * @since 0.1.0
 */
export interface Plan {
  readonly forwards: ReadonlyArray<Forward>
}

/**
 * The input was rejected before anything connected: a flag, a PORT, a config file, a `--`
 * placeholder. Each problem says what is wrong and where.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>("@kube-forward/cli/InvalidInput")("InvalidInput", {
  problems: Schema.Array(Schema.String)
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return this.problems.join("\n")
  }
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/

/**
 * Why `name` cannot name a forward, or `undefined`: letters, digits, `-` and `_`, starting and
 * ending with a letter or digit, at most 63 characters (names become environment variables).
 *
 * @category validation
 * @since 0.1.0
 */
export const nameIssue = (name: string): string | undefined =>
  NAME.test(name)
    ? undefined
    : `${
      JSON.stringify(name)
    } is not a valid forward name (letters, digits, "-" and "_", starting and ending with a letter or digit, at most 63 characters)`

/**
 * The library's message about a duration suggests its own syntax (`"5 seconds"`); every duration
 * of a plan was written in kubectl's (`5s`) and parsed already, so the only one it can reject is
 * zero: say that, in the syntax the command takes.
 */
const inOurSyntax = (message: string): string =>
  message.startsWith("Expected a positive, finite duration")
    ? "must be more than 0 (write e.g. 5s, 1m30s or 500ms)"
    : message

/**
 * Checks every forward with `ForwardSpec.decode` (and the names for being unique), collecting
 * every problem, after the `earlier` ones (found while parsing); succeeds with the plan
 * unchanged when there are none.
 *
 * @category validation
 * @since 0.1.0
 */
export const validate = (plan: Plan, earlier: ReadonlyArray<string> = []): Effect.Effect<Plan, InvalidInput> =>
  Effect.gen(function*() {
    const problems: Array<string> = [...earlier]
    const seen = new Set<string>()
    for (const forward of plan.forwards) {
      if (seen.has(forward.name)) problems.push(`forward ${JSON.stringify(forward.name)} is defined twice`)
      seen.add(forward.name)
      const decoded = yield* Effect.result(ForwardSpec.decode(forward.spec))
      if (decoded._tag === "Failure") {
        for (const issue of decoded.failure.issues) {
          problems.push(`${forward.where(issue.path)}: ${inOurSyntax(issue.message)}`)
        }
      }
    }
    // one mistake can break two rules (`99999` is a bad local and a bad remote port): say it once
    if (problems.length > 0) return yield* new InvalidInput({ problems: [...new Set(problems)] })
    return plan
  })

/**
 * The command line of `kube-forward TARGET PORT… [flags]`, parsed by the command.
 *
 * @category models
 * @since 0.1.0
 */
export interface Arguments {
  readonly target: string
  readonly ports: ReadonlyArray<string>
  readonly namespace: string | undefined
  readonly context: string | undefined
  readonly kubeconfig: string | undefined
  readonly address: ReadonlyArray<string>
  readonly readyTimeout: string | undefined
  readonly keepalive: string | undefined
  readonly reconnect: boolean
}

const FLAG_OF: Record<string, string> = {
  namespace: "--namespace",
  context: "--context",
  kubeconfig: "--kubeconfig",
  address: "--address",
  readyTimeout: "--ready-timeout",
  keepalive: "--keepalive"
}

/** Where a spec field of a command-line forward came from (`kept[i]`: the PORT of spec port i). */
const argumentWhere = (args: Arguments, kept: ReadonlyArray<number>) => (path: string): string => {
  const [field, index] = path.split(".")
  if (field === "target") return `TARGET ${JSON.stringify(args.target)}`
  if (field === "ports" && index !== undefined) return `PORT ${JSON.stringify(args.ports[kept[Number(index)]] ?? "")}`
  if (field === "ports") return "PORT"
  return FLAG_OF[field] ?? field
}

/**
 * Parses a duration flag, adding a problem when it is not a duration.
 *
 * @category parsing
 * @since 0.1.0
 */
export const durationOption = (
  text: string | undefined,
  where: string,
  problems: Array<string>
): Duration.Duration | undefined => {
  if (text === undefined) return undefined
  const parsed = Syntax.parseDuration(text)
  if (parsed._tag === "Success") return parsed.success
  problems.push(`${where}: ${parsed.failure}`)
  return undefined
}

/**
 * The plan of `kube-forward TARGET PORT… [flags]`: one forward, named after its target. The
 * syntax of every PORT and duration is checked here; the rest by {@link validate}.
 *
 * @category constructors
 * @since 0.1.0
 */
export const fromArguments = (args: Arguments): Effect.Effect<Plan, InvalidInput> =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const ports: Array<ForwardSpec.PortInput> = []
    const kept: Array<number> = []
    args.ports.forEach((port, i) => {
      const parsed = Syntax.parsePort(port)
      if (parsed._tag === "Failure") return problems.push(`PORT ${JSON.stringify(port)} ${parsed.failure}`)
      ports.push(parsed.success)
      kept.push(i)
    })
    const readyTimeout = durationOption(args.readyTimeout, "--ready-timeout", problems)
    const keepalive = durationOption(args.keepalive, "--keepalive", problems)
    const spec: ForwardSpec.Input = {
      target: args.target,
      ports,
      namespace: args.namespace,
      context: args.context,
      kubeconfig: args.kubeconfig,
      address: args.address.length > 0 ? Syntax.splitAddresses(args.address) : undefined,
      readyTimeout,
      keepalive: keepalive === undefined ? undefined : { interval: keepalive }
    }
    const name = Syntax.targetName(args.target)
    return yield* validate({
      forwards: [{
        name: nameIssue(name) === undefined ? name : "forward",
        target: args.target,
        spec,
        reconnect: args.reconnect,
        where: argumentWhere(args, kept)
      }]
    }, problems)
  })
