/**
 * `--backend`: which carrier moves the bytes of every forward.
 *
 * A backend is nothing but a `Layer` that provides the `Forwarder` service of
 * `@kube-forward/core` (and the `PortAllocator` that goes with it); everything else, the
 * session, the table, the events, is the same whatever carries the bytes.
 *
 * - `kubectl` (default): each forward is a `kubectl port-forward` process, configured from
 *   kube-forward's environment variables (`KUBE_FORWARD_KUBECTL` for the binary, `KUBECONFIG`,
 *   `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_NAMESPACE`, `KUBE_FORWARD_KILL_GRACE`,
 *   `KUBE_FORWARD_WATCHDOG`; see `Kubectl.envConfig`). Flags and config-file fields win over them.
 * - `native`: in-process, without kubectl (`@kube-forward/native`), configured from the same
 *   environment where it applies (`KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_NAMESPACE`,
 *   `KUBE_FORWARD_TRANSPORT`, `KUBE_FORWARD_PING_INTERVAL`, `KUBE_FORWARD_SPREAD`, …; see
 *   `NativeForwarder.envConfig`). Flags and config-file fields win over them.
 *
 * @since 0.1.0
 */
import { type Forwarder, type PortAllocator, PortForward } from "@kube-forward/core"
import { NativeForwarder } from "@kube-forward/native"
import { type Config, Result, type SchemaIssue } from "effect"
import type { Layer } from "effect"

/**
 * The backends `--backend` accepts.
 *
 * @category models
 * @since 0.1.0
 */
export const names = ["kubectl", "native"] as const

/**
 * A backend's name.
 *
 * @category models
 * @since 0.1.0
 */
export type Name = typeof names[number]

/**
 * The services every forward needs, for one backend.
 *
 * @category models
 * @since 0.1.0
 */
export type Services = Forwarder.Forwarder | PortAllocator.PortAllocator

/**
 * The kubectl backend: `kubectl port-forward` processes, configured from the environment.
 *
 * @category layers
 * @since 0.1.0
 */
export const kubectl: Layer.Layer<Services, Config.ConfigError> = PortForward.layerFromEnv

/**
 * The native backend: in-process, configured from the environment.
 *
 * @category layers
 * @since 0.1.0
 */
export const native: Layer.Layer<Services, Config.ConfigError> = NativeForwarder.layerFromEnv

/**
 * The layer of backend `name`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (name: Name): Layer.Layer<Services, Config.ConfigError> => name === "native" ? native : kubectl

/**
 * The backend to use: the flag's when given, else `KUBE_FORWARD_BACKEND`'s (unset or empty:
 * `kubectl`). Fails with a message naming the variable, its value and the choices.
 *
 * @category models
 * @since 0.1.0
 */
export const choose = (
  flag: Name | undefined,
  env: Readonly<Record<string, string | undefined>>
): Result.Result<Name, string> => {
  if (flag !== undefined) return Result.succeed(flag)
  const value = env.KUBE_FORWARD_BACKEND
  if (value === undefined || value === "") return Result.succeed("kubectl")
  return (names as ReadonlyArray<string>).includes(value)
    ? Result.succeed(value as Name)
    : Result.fail(`KUBE_FORWARD_BACKEND=${JSON.stringify(value)} is not a backend (choices: ${names.join(", ")})`)
}

/** What the backends' variables may be, by kind. */
const EXPECTED: Record<string, string> = {
  KUBE_FORWARD_KILL_GRACE: "a duration such as \"2 seconds\" or \"500 millis\"",
  KUBE_FORWARD_PING_INTERVAL: "a duration such as \"30 seconds\" or \"500 millis\"",
  KUBE_FORWARD_PING_TIMEOUT: "a duration such as \"10 seconds\" or \"500 millis\"",
  KUBE_FORWARD_WATCHDOG: "true or false",
  KUBE_FORWARD_SPREAD: "true or false",
  KUBE_FORWARD_TRANSPORT: "one of auto, websocket, spdy"
}

/** The variable a schema issue points at (the first key of its path), if any. */
const variableOf = (issue: SchemaIssue.Issue): string | undefined =>
  issue._tag === "Pointer"
    ? (typeof issue.path[0] === "string" ? issue.path[0] : variableOf(issue.issue))
    : issue._tag === "Composite" || issue._tag === "AnyOf"
    ? issue.issues.map(variableOf).find((v) => v !== undefined)
    : issue._tag === "Encoding" || issue._tag === "Filter"
    ? variableOf(issue.issue)
    : undefined

/**
 * A backend's configuration error as one line for a person: the variable, its value and what
 * it may be (`KUBE_FORWARD_KILL_GRACE="soon" is not valid: expected a duration such as "2
 * seconds" or "500 millis"`), instead of the schema's wrapped message.
 *
 * @category errors
 * @since 0.1.0
 */
export const describeConfigError = (
  error: Config.ConfigError,
  env: Readonly<Record<string, string | undefined>>
): string => {
  const cause = error.cause
  const variable = cause._tag === "SchemaError" ? variableOf(cause.issue) : undefined
  if (variable === undefined) return `the backend's configuration: ${cause.message}`
  const expected = EXPECTED[variable] ??
    (/Expected (.*)/.exec(cause.message)?.[1] ?? cause.message).replace(/\)$/, "")
  return `${variable}=${JSON.stringify(env[variable] ?? "")} is not valid: expected ${expected}`
}
