/**
 * Entry point of the `kube-forward-testkit` binary: runs {@link Cli.run} under
 * `NodeRuntime.runMain`, which interrupts it on SIGINT/SIGTERM. The cluster's finalizers then
 * remove its files, and the process exits 0 (a stop by signal is the normal way to end `serve`;
 * `runMain`'s default would be 130).
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Runtime } from "effect"
import * as Cli from "./Cli.ts"

const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

// Errors go to stderr: bad input as one `error: …` line, anything else as a pretty cause.
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  return Console.error(error instanceof Cli.CliInputError ? `error: ${error.message}` : Cause.pretty(cause))
}

Cli.run.pipe(
  Effect.tapCause(report),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown, disableErrorReporting: true })
)
