/**
 * Entry point of the `kube-forward` binary: runs {@link Cli.run} with the process arguments under
 * `NodeRuntime.runMain`, and exits with the code the run recorded (see `ExitCode`): a signal
 * that interrupted the run does not turn a command's own exit code, or a clean stop, into
 * runMain's default.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Console, Effect, type Runtime } from "effect"
import * as Cli from "./Cli.ts"
import * as ExitCode from "./ExitCode.ts"

let recorded: number | undefined

const teardown: Runtime.Teardown = (exit, onExit) => onExit(recorded ?? ExitCode.ofExit(exit))

// Our own errors as `kube-forward: …` lines on stderr; effect/cli's parse errors were already
// shown by the CLI's presenter; anything else is a bug, shown in full.
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  const code = ExitCode.ofError(error)
  if (code === ExitCode.Internal) return Console.error(Cause.pretty(cause))
  if (error instanceof Error && "~effect/cli/CliError" in error) return Effect.void
  const lines = (error as Error).message.split("\n").map((line) => `kube-forward: ${line}`)
  const hint = code === ExitCode.InvalidInput ? ["Run 'kube-forward --help' for usage."] : []
  return Console.error([...lines, ...hint].join("\n"))
}

Cli.run(process.argv.slice(2)).pipe(
  Effect.tapCause(report),
  Effect.provideService(ExitCode.Recorder, (code) => {
    recorded = code
  }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown, disableErrorReporting: true })
)
