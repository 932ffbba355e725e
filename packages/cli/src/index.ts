/**
 * `@kube-forward/cli`: the `kube-forward` command, built on `@kube-forward/core`. Its modules
 * are exported for programs that want the same pieces (the port syntax, the config file, the
 * table, the events); the command itself is `Cli.run`.
 *
 * @since 0.1.0
 */

/**
 * `--backend`: the layers that carry the bytes.
 *
 * @since 0.1.0
 */
export * as Backend from "./Backend.ts"

/**
 * The state of every forward of a run, folded from what happened to them.
 *
 * @since 0.1.0
 */
export * as Board from "./Board.ts"

/**
 * The `--` mode: placeholders, environment, the command's process.
 *
 * @since 0.1.0
 */
export * as ChildCommand from "./ChildCommand.ts"

/**
 * The command line itself (Effect's CLI module).
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.ts"

/**
 * The config file of `kube-forward up`.
 *
 * @since 0.1.0
 */
export * as ConfigFile from "./ConfigFile.ts"

/**
 * The exit codes.
 *
 * @since 0.1.0
 */
export * as ExitCode from "./ExitCode.ts"

/**
 * The `--json` events.
 *
 * @since 0.1.0
 */
export * as JsonEvents from "./JsonEvents.ts"

/**
 * Where the state goes: table, plain lines or JSON.
 *
 * @since 0.1.0
 */
export * as Output from "./Output.ts"

/**
 * Plain lines, one per change.
 *
 * @since 0.1.0
 */
export * as PlainLines from "./PlainLines.ts"

/**
 * The forwards to open, checked before anything connects.
 *
 * @since 0.1.0
 */
export * as Plan from "./Plan.ts"

/**
 * One run: open, report, run the command or wait, close.
 *
 * @since 0.1.0
 */
export * as Session from "./Session.ts"

/**
 * kubectl's argument syntax (ports, durations, addresses).
 *
 * @since 0.1.0
 */
export * as Syntax from "./Syntax.ts"

/**
 * The live table of a terminal.
 *
 * @since 0.1.0
 */
export * as Table from "./Table.ts"
