/**
 * The exit codes of `kube-forward`, for scripts to branch on.
 *
 * | code | when |
 * |---:|---|
 * | 0 | a clean stop: Ctrl-C, SIGTERM or SIGHUP, every forward closed |
 * | 1 | an unexpected internal error (a bug: please report it) |
 * | 2 | invalid input: a flag, a PORT, a config file, a `--` placeholder, an unknown `--backend`; nothing was started |
 * | 3 | a forward failed for good: it could not start, or it was lost and could not be brought back (or `--no-reconnect`) |
 * | 4 | the ports file could not be written once the forwards were ready (they were closed again) |
 * | 126, 127 | `--` mode: the command could not be run (not executable, not found) |
 * | 128 + n | stopped by a second signal n before the close finished (130 for Ctrl-C, 143 for SIGTERM); in `--` mode, also a signal that came before the command started |
 * | the command's | `--` mode: the command's own exit code (128 + n when it was killed by signal n) |
 *
 * @since 0.1.0
 */
import { Cause, Context, Exit } from "effect"
import { CliError } from "effect/cli"
import * as Os from "node:os"

/**
 * A clean stop.
 *
 * @category codes
 * @since 0.1.0
 */
export const Ok = 0

/**
 * An unexpected internal error.
 *
 * @category codes
 * @since 0.1.0
 */
export const Internal = 1

/**
 * The output could not be written for another reason than a closed pipe (a full disk, an I/O
 * error): said on stderr, the forwards closed. The same code as {@link Internal}.
 *
 * @category codes
 * @since 0.1.0
 */
export const OutputFailed = 1

/**
 * Invalid input; nothing was started.
 *
 * @category codes
 * @since 0.1.0
 */
export const InvalidInput = 2

/**
 * A forward failed for good.
 *
 * @category codes
 * @since 0.1.0
 */
export const ForwardFailed = 3

/**
 * The ports file (`--ports-file`) could not be written once the forwards were ready; they were
 * closed again.
 *
 * @category codes
 * @since 0.1.0
 */
export const PortsFileFailed = 4

/**
 * `--` mode: the command exists but could not be executed.
 *
 * @category codes
 * @since 0.1.0
 */
export const CommandNotExecutable = 126

/**
 * `--` mode: the command was not found.
 *
 * @category codes
 * @since 0.1.0
 */
export const CommandNotFound = 127

/**
 * The shell's code for a process ended by `signal`: 128 + its number (130 for SIGINT).
 *
 * @category codes
 * @since 0.1.0
 */
export const ofSignal = (signal: string): number =>
  128 + ((Os.constants.signals as Record<string, number | undefined>)[signal] ?? 0)

/**
 * The code of a failure, by its tag: invalid input and command-line errors are 2, a forward
 * that failed for good is 3, a ports file that could not be written 4, anything else is 1.
 *
 * @category codes
 * @since 0.1.0
 */
export const ofError = (error: unknown): number => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : ""
  if (tag === "ForwardFailed") return ForwardFailed
  if (tag === "PortsFileFailed") return PortsFileFailed
  if (["InvalidInput", "ConfigError"].includes(tag)) return InvalidInput
  // effect/cli's parse errors (unknown flag, missing argument, bad value, help shown for them)
  if (CliError.isCliError(error)) return InvalidInput
  return Internal
}

/**
 * The code for how the program ended when no code was recorded: 0 for success or a stop by
 * interruption, else {@link ofError} of the failure.
 *
 * @category codes
 * @since 0.1.0
 */
export const ofExit = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? Ok : ofError(Cause.squash(exit.cause))

/**
 * Where the run records the code it decided on (a command's own code, a stop by signal), so
 * that the process exits with it even when the main fiber ends by interruption. The default
 * records nothing; the `kube-forward` binary provides one.
 *
 * @category references
 * @since 0.1.0
 */
export const Recorder = Context.Reference<(code: number) => void>("@kube-forward/cli/ExitCode/Recorder", {
  defaultValue: () => () => {}
})
