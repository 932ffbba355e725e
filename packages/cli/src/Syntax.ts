/**
 * kubectl's argument syntax, parsed without side effects.
 *
 * - Ports as `kubectl port-forward` takes them: `8080:80` (local 8080 to remote 80), `80`
 *   (local 80 to remote 80), `:80` or `0:80` (a free local port to remote 80), `8080:http`
 *   (a named container port) and `http` (a named port on a free local port: kubectl would reuse
 *   the container port's number, which is only known once connected, and a free port never
 *   needs privileges).
 * - Durations as kubectl (Go) writes them: `30s`, `1m30s`, `500ms`, `2h`.
 * - Address lists as `--address` takes them: repeated, or comma-separated (`localhost,10.0.0.1`).
 *
 * Only the syntax is checked here. Whether a number is a port, a name a valid port name, an
 * address an IP, is for `ForwardSpec.decode` to say, so the command and the library reject
 * exactly the same things.
 *
 * @since 0.1.0
 */
import type { ForwardSpec } from "@kube-forward/core"
import { Duration, Result } from "effect"

const DIGITS = /^\d+$/

/**
 * Parses one PORT argument into a port of a forward spec. Fails with what is wrong, in words.
 *
 * @example
 * ```ts
 * Syntax.parsePort("8080:80") // Result.succeed({ local: 8080, remote: 80 })
 * Syntax.parsePort(":http")   // Result.succeed({ remote: "http" })
 * Syntax.parsePort("80")      // Result.succeed({ local: 80, remote: 80 })
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const parsePort = (text: string): Result.Result<ForwardSpec.PortInput, string> => {
  if (text.length === 0) return Result.fail("is empty (write LOCAL:REMOTE, :REMOTE or REMOTE)")
  const colon = text.indexOf(":")
  if (colon === -1) {
    return Result.succeed(DIGITS.test(text) ? { local: Number(text), remote: Number(text) } : { remote: text })
  }
  const localText = text.slice(0, colon)
  const remoteText = text.slice(colon + 1)
  if (remoteText.length === 0) return Result.fail("has no remote port after \":\" (write LOCAL:REMOTE or :REMOTE)")
  if (remoteText.includes(":")) return Result.fail("has more than one \":\" (write LOCAL:REMOTE)")
  const remote = DIGITS.test(remoteText) ? Number(remoteText) : remoteText
  if (localText.length === 0 || /^0+$/.test(localText)) return Result.succeed({ remote })
  if (!DIGITS.test(localText)) return Result.fail(`has a local port ${JSON.stringify(localText)} that is not a number`)
  return Result.succeed({ local: Number(localText), remote })
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g

/**
 * Parses a duration as kubectl writes them (`30s`, `1m30s`, `500ms`, `2h`). Zero is accepted
 * here; whether it makes sense is for the option that takes it.
 *
 * @category parsing
 * @since 0.1.0
 */
export const parseDuration = (text: string): Result.Result<Duration.Duration, string> => {
  if (!DURATION.test(text)) {
    return Result.fail(`${JSON.stringify(text)} is not a duration (write e.g. 30s, 1m30s, 500ms or 2h)`)
  }
  let millis = 0
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) millis += Number(amount) * UNITS[unit]
  return Result.succeed(Duration.millis(millis))
}

/**
 * Splits `--address` values into single addresses: each value may be a comma-separated list,
 * as kubectl accepts. Empty items are kept (and then rejected by the spec's decoding).
 *
 * @category parsing
 * @since 0.1.0
 */
export const splitAddresses = (values: ReadonlyArray<string>): Array<string> =>
  values.flatMap((value) => value.split(",").map((a) => a.trim()))

/**
 * The short name of a target: `svc/web` → `web`, `web-0` → `web-0`. A forward given on the
 * command line is named after its target.
 *
 * @category parsing
 * @since 0.1.0
 */
export const targetName = (target: string): string => target.slice(target.indexOf("/") + 1)
