/**
 * The `kube-forward` command, built with Effect's CLI module:
 *
 * ```sh
 * kube-forward [flags] TARGET PORT... [-- COMMAND ARGS...]     # like kubectl port-forward, but it comes back
 * kube-forward up [-f FILE] [flags] [-- COMMAND ARGS...]       # every forward of a config file
 * ```
 *
 * Everything after the first `--` is the command of the `--` mode (see `ChildCommand`), split
 * off before the flags are parsed, so its own flags are never read as ours.
 *
 * @since 0.1.0
 */
import { Console, Effect, type Exit, Fiber, Layer, Option } from "effect"
import { Argument, CliConfig, CliOutput, Command, Flag, GlobalFlag, TerminalCapabilities } from "effect/cli"
import * as Backend from "./Backend.ts"
import * as ChildCommand from "./ChildCommand.ts"
import * as ConfigFile from "./ConfigFile.ts"
import * as ExitCode from "./ExitCode.ts"
import * as Tree from "./internal/processTree.ts"
import { listen, type StopSignal } from "./internal/signals.ts"
import * as JsonEvents from "./JsonEvents.ts"
import * as Output from "./Output.ts"
import * as Plan from "./Plan.ts"
import * as Session from "./Session.ts"

/**
 * The version `--version` prints.
 *
 * @category constants
 * @since 0.1.0
 */
export const version = "0.1.0"

// ---------------------------------------------------------------------------------------------
// flags
// ---------------------------------------------------------------------------------------------

const optionalString = (name: string, metavar: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar(metavar), Flag.withDescription(description), Flag.optional)

/** The flags of a forward, on both commands (for `up`, they fill in what the file leaves out). */
const forwardFlags = {
  namespace: optionalString("namespace", "NS", "namespace of the target (default: the context's)").pipe(
    Flag.withAlias("n")
  ),
  context: optionalString("context", "NAME", "kubeconfig context to use"),
  kubeconfig: optionalString("kubeconfig", "FILE", "kubeconfig file to use"),
  address: Flag.String("address").pipe(
    Flag.withMetavar("ADDR"),
    Flag.withDescription("local address to listen on, repeatable or comma-separated (default 127.0.0.1)"),
    Flag.atLeast(0)
  ),
  reconnect: Flag.Boolean("reconnect").pipe(
    Flag.withDefault(true),
    Flag.withDescription("bring a lost forward back on the same local port (on; --no-reconnect turns it off)")
  ),
  keepalive: optionalString(
    "keepalive",
    "DURATION",
    "probe each forward this often (e.g. 10s); a failed probe counts as lost"
  ),
  readyTimeout: optionalString("ready-timeout", "DURATION", "how long a forward may take to be ready (default 30s)")
}

/** The flags of a run. */
const runFlags = {
  // KUBE_FORWARD_BACKEND is read by `main` (Backend.choose), whose message names the variable
  backend: Flag.Literals("backend", Backend.names).pipe(
    Flag.optional,
    Flag.withMetavar("NAME"),
    Flag.withDescription(
      "what carries the bytes: kubectl (a kubectl process per forward, the default) or native (in-process); also KUBE_FORWARD_BACKEND"
    )
  ),
  json: Flag.Boolean("json").pipe(
    Flag.withDefault(false),
    Flag.withDescription("print one JSON event per line (status changes, ready, exit)")
  ),
  portsFile: optionalString("ports-file", "PATH", "write the local ports as JSON to PATH once every forward is ready")
}

type ForwardFlags = Command.Command.Config.Infer<typeof forwardFlags>
type RunFlags = Command.Command.Config.Infer<typeof runFlags>

// ---------------------------------------------------------------------------------------------
// running
// ---------------------------------------------------------------------------------------------

/** What the signal handler needs to know about the run under way. */
interface StopState {
  stops: number
  signal: StopSignal | undefined
  /** The session, once it runs. */
  session: Fiber.Fiber<unknown, unknown> | undefined
  output: Output.Output | undefined
  /** Where the `exit` event goes with `--json`, once the output is chosen. */
  settings: Output.Settings | undefined
  /** Why our output could not be written (not a closed pipe): the run ends with exit code 1. */
  outputFailed: string | undefined
  /** The `--` command, while it runs, and after its exit while its leftovers are awaited. */
  command: ChildCommand.Running | undefined
}

/** With `--json`, the last event: the code the command exits with and why. */
const announceExit = (settings: Output.Settings | undefined, code: number, reason: string) => {
  if (settings?.mode !== "json" || settings.stream.destroyed) return
  settings.stream.write(`${JsonEvents.encode({ _tag: "Exit", code, reason }, Date.now())}\n`)
}

/**
 * Whether the `--` command already got this SIGINT from the terminal: a Ctrl-C goes to the
 * terminal's foreground process group, and the command is in ours. So when both we and the
 * running command are in the foreground group, the SIGINT is taken to be the terminal's (a
 * `kill -INT` from elsewhere cannot be told from it).
 */
const fromTerminal = (signal: StopSignal, command: ChildCommand.Running) =>
  signal === "SIGINT" && command.pid !== undefined && command.running() &&
  Tree.inForeground(process.pid) === true && Tree.inForeground(command.pid) === true

/**
 * The first stop signal closes everything and waits; the second exits at once (the `--`
 * command and its descendants get SIGKILL, kubectl's processes are ended by the library's
 * watchdog when this process is gone). While a `--` command runs, a Ctrl-C of the terminal
 * (see `fromTerminal`) is the command's: it got it already, it is not a stop, and the run ends
 * when the command exits, as it would without us. Any other stop signal is passed to the
 * command and its descendants, and its exit ends the run. Before the session runs,
 * `NodeRuntime.runMain`'s own interruption stops the start-up, and the code is recorded here.
 */
const onStop = (state: StopState, record: (code: number) => void, commandMode: boolean) => (signal: StopSignal) => {
  const command = state.command
  if (command !== undefined && fromTerminal(signal, command)) {
    // what it started is to be known when it exits, and a Ctrl-C may end what it was found by
    command.track()
    return
  }
  state.stops++
  state.signal = signal
  if (state.stops > 1) {
    command?.kill("SIGKILL")
    const code = ExitCode.ofSignal(signal)
    announceExit(state.settings, code, `quit at once on a second ${signal}`)
    process.exit(code)
  }
  // the command first: the note below is then the sign that it was signalled
  command?.kill(signal)
  if (state.output !== undefined) {
    Effect.runFork(state.output.note(`stopping… (${signal === "SIGINT" ? "Ctrl-C" : signal} again to quit at once)`))
  }
  if (command !== undefined) return
  if (state.session !== undefined) state.session.interruptUnsafe()
  else record(commandMode ? ExitCode.ofSignal(signal) : ExitCode.Ok)
}

/**
 * Our output can no longer be written (stdout was a pipe and its reader is gone, as with
 * `kube-forward up | head -1`): like a command that gets SIGPIPE, the run stops, but cleanly,
 * closing the forwards, and exits 0. In `--` mode our lines are only a report on stderr and
 * the command's run matters more: nothing more is written, the run goes on.
 */
const onOutputClosed = (state: StopState, commandMode: boolean) => () => {
  if (commandMode) return
  state.stops++
  // before the session runs, `main` interrupts it as soon as it starts
  state.session?.interruptUnsafe()
}

/**
 * Our output failed otherwise (a full disk, an I/O error): the run stops as for a closed pipe,
 * but says why on stderr and exits with 1. In `--` mode, where our lines are only a report on
 * stderr, nothing more is written and the command's run goes on.
 */
const onOutputFailed = (state: StopState, settings: Output.Settings, commandMode: boolean) =>
(
  error: NodeJS.ErrnoException
) => {
  if (commandMode) return
  state.outputFailed = Output.failureText(settings.stream, error)
  Output.toStderr(`kube-forward: ${state.outputFailed}`)
  onOutputClosed(state, commandMode)()
}

/** The code a finished session exits with. */
const codeOf = (
  exit: Exit.Exit<Session.Outcome, unknown>,
  state: StopState,
  commandMode: boolean
): { readonly code: number; readonly reason: string } => {
  if (state.outputFailed !== undefined && ExitCode.ofExit(exit) === ExitCode.Ok) {
    return { code: ExitCode.OutputFailed, reason: state.outputFailed }
  }
  if (exit._tag === "Success") {
    return exit.value._tag === "CommandExited"
      ? { code: exit.value.code, reason: exit.value.failure ?? "command exited" }
      : { code: ExitCode.Ok, reason: "stopped" }
  }
  const code = ExitCode.ofExit(exit)
  if (code === ExitCode.Ok && commandMode) {
    return { code: ExitCode.ofSignal(state.signal ?? "SIGINT"), reason: "stopped before the command ran" }
  }
  return {
    code,
    reason: code === ExitCode.Ok
      ? "stopped"
      : code === ExitCode.ForwardFailed
      ? "forward failed"
      : code === ExitCode.PortsFileFailed
      ? "ports file not written"
      : "error"
  }
}

/**
 * The plan and the rest of the input, checked before anything starts: the backend (the flag,
 * else `KUBE_FORWARD_BACKEND`), the directory of `--ports-file`, and in `--` mode the forwards'
 * names (as variables) and the command's placeholders.
 */
const checked = (
  load: Effect.Effect<Plan.Plan, Plan.InvalidInput>,
  flags: RunFlags,
  command: ReadonlyArray<string> | undefined
) =>
  Effect.flatMap(load, (plan) => {
    const problems: Array<string> = []
    const backend = Backend.choose(Option.getOrUndefined(flags.backend), process.env)
    if (backend._tag === "Failure") problems.push(backend.failure)
    const portsFile = Option.getOrUndefined(flags.portsFile)
    const portsFileProblem = portsFile === undefined ? undefined : Session.checkPortsFile(portsFile)
    if (portsFileProblem !== undefined) problems.push(portsFileProblem)
    if (command !== undefined) {
      problems.push(...ChildCommand.checkNames(plan), ...ChildCommand.checkPlaceholders(command, plan))
      if (command.length === 0) problems.push("nothing after -- (write -- COMMAND ARGS...)")
    }
    return problems.length > 0 || backend._tag === "Failure"
      ? Effect.fail(new Plan.InvalidInput({ problems }))
      : Effect.succeed({ plan, backend: backend.success })
  })

/** The backend's services; a variable it cannot use is invalid input, saying which and why. */
const buildBackend = (name: Backend.Name) =>
  Layer.build(Backend.layer(name)).pipe(
    Effect.mapError((error) => new Plan.InvalidInput({ problems: [Backend.describeConfigError(error, process.env)] }))
  )

/**
 * Runs a plan: validated input in, a session in a fiber of its own that the signal handling
 * controls, and the exit code recorded (so it holds even when the main fiber ends by
 * interruption, as `NodeRuntime.runMain` does on a signal).
 *
 * @category running
 * @since 0.1.0
 */
export const main = (
  load: Effect.Effect<Plan.Plan, Plan.InvalidInput>,
  flags: RunFlags,
  command: ReadonlyArray<string> | undefined
) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.scoped(Effect.gen(function*() {
      const record = yield* ExitCode.Recorder
      const state: StopState = {
        stops: 0,
        signal: undefined,
        session: undefined,
        output: undefined,
        settings: undefined,
        outputFailed: undefined,
        command: undefined
      }
      yield* listen(onStop(state, record, command !== undefined))
      const { backend, plan } = yield* restore(checked(load, flags, command))
      const settings = Output.choose({
        json: flags.json,
        commandMode: command !== undefined,
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env
      })
      state.settings = settings
      // the backend first: one that cannot be used is invalid input, reported before any output
      const services = yield* restore(buildBackend(backend))
      const commandMode = command !== undefined
      const output = yield* Output.make(
        plan,
        settings,
        onOutputClosed(state, commandMode),
        onOutputFailed(state, settings, commandMode)
      )
      const session = yield* Session.run(plan, {
        output,
        command,
        portsFile: Option.getOrUndefined(flags.portsFile),
        onCommand: (running) => (state.command = running)
      }).pipe(Effect.scoped, Effect.provideContext(services), Effect.interruptible, Effect.forkScoped)
      Object.assign(state, { session, output })
      if (state.stops > 0) session.interruptUnsafe()
      const exit = yield* Fiber.await(session)
      // a command that could not be run: say which and why (its code alone, 126/127, says little)
      if (exit._tag === "Success" && exit.value._tag === "CommandExited" && exit.value.failure !== undefined) {
        yield* output.note(exit.value.failure)
      }
      const { code, reason } = codeOf(exit, state, command !== undefined)
      record(code)
      announceExit(settings, code, reason)
      return yield* exit
    }))
  )

const forwardSettings = (flags: ForwardFlags) => ({
  namespace: Option.getOrUndefined(flags.namespace),
  context: Option.getOrUndefined(flags.context),
  kubeconfig: Option.getOrUndefined(flags.kubeconfig),
  address: flags.address,
  readyTimeout: Option.getOrUndefined(flags.readyTimeout),
  keepalive: Option.getOrUndefined(flags.keepalive),
  reconnect: flags.reconnect
})

// ---------------------------------------------------------------------------------------------
// commands
// ---------------------------------------------------------------------------------------------

/**
 * The root command, `kube-forward TARGET PORT…`, with `up` as its subcommand. `command` is the
 * `--` command, if any.
 *
 * @category commands
 * @since 0.1.0
 */
export const command = (child: ReadonlyArray<string> | undefined) => {
  const up = Command.make(
    "up",
    {
      file: optionalString("file", "FILE", `the config file (default: ${ConfigFile.defaultNames.join(", ")})`).pipe(
        Flag.withAlias("f")
      ),
      ...forwardFlags,
      ...runFlags
    },
    (flags) =>
      main(
        ConfigFile.find(Option.getOrUndefined(flags.file), process.cwd()).pipe(
          Effect.flatMap((file) => ConfigFile.load(file, forwardSettings(flags)))
        ),
        flags,
        child
      )
  ).pipe(
    Command.withDescription(
      "Open every forward of a config file (YAML or JSON) and keep them open. The flags fill in what\n  " +
        "the file leaves out (a forward's own fields win, then the file's defaults)."
    ),
    Command.withShortDescription("open every forward of a config file")
  )
  return Command.make(
    "kube-forward",
    {
      target: Argument.String("TARGET").pipe(
        Argument.withDescription("pod/NAME, svc/NAME, deployment/NAME, statefulset/NAME, or a pod name")
      ),
      ports: Argument.String("PORT").pipe(
        Argument.withDescription("LOCAL:REMOTE, :REMOTE (a free local port) or PORT; REMOTE may be a port name"),
        Argument.variadic({ min: 1 })
      ),
      ...forwardFlags,
      ...runFlags
    },
    (flags) =>
      main(Plan.fromArguments({ ...forwardSettings(flags), target: flags.target, ports: flags.ports }), flags, child)
  ).pipe(
    Command.withDescription(
      [
        "Port forwards that stay up. kubectl port-forward's syntax, but a forward that is lost (a pod",
        "restart, a dropped connection) comes back on the same local port. `up` opens every forward of",
        "a config file; `-- COMMAND` runs a command once they are ready and exits with its code."
      ].join("\n  ")
    ),
    Command.withExamples([
      { command: "kube-forward svc/web 8080:80 -n shop", description: "localhost:8080 to port 80 of service web" },
      {
        command: "kube-forward pod/db-0 :5432 -- psql -h {host} -p {port}",
        description: "a free port, and psql through it"
      },
      { command: "kube-forward up", description: "every forward of ./kube-forward.yaml, as a live table" },
      { command: "kube-forward up --json", description: "one JSON event per status change, for scripts" },
      {
        command: "kube-forward deploy/api :8080 --ports-file ports.json -- npm test",
        description: "tests against the cluster"
      }
    ]),
    Command.withSubcommands([up])
  )
}

// ---------------------------------------------------------------------------------------------
// help and errors
// ---------------------------------------------------------------------------------------------

const USAGE: Record<string, string> = {
  "kube-forward":
    "kube-forward [flags] TARGET PORT... [-- COMMAND ARGS...]\n  kube-forward up [-f FILE] [flags] [-- COMMAND ARGS...]",
  "kube-forward up": "kube-forward up [-f FILE] [flags] [-- COMMAND ARGS...]"
}

const CONFIG_FILE = `
CONFIG FILE
  defaults:                          # optional, for every forward
    namespace: shop
  forwards:
    web: { target: svc/web, ports: ["8080:80", metrics] }
    db:  { target: pod/db-0, namespace: data, ports: [":5432"], keepalive: 10s }
  Fields: target, ports, namespace, context, kubeconfig, address, readyTimeout, keepalive, reconnect.
`

const MORE = `
COMMAND MODE (-- COMMAND ARGS...)
  Runs COMMAND (no shell) once every forward is ready, closes them when it exits, and exits with its code.
  Environment:  KUBE_FORWARD_HOST, KUBE_FORWARD_PORT, KUBE_FORWARD_PORT_<REMOTE>,
                KUBE_FORWARD_<NAME>_HOST, KUBE_FORWARD_<NAME>_PORT, KUBE_FORWARD_<NAME>_PORT_<REMOTE>
  Arguments:    {port} {port.REMOTE} {host}  {NAME.port} {NAME.port.REMOTE} {NAME.host}
  A forward given on the command line is named after its target (svc/web: web).

EXIT CODES
  0 stopped cleanly (also when the reader of the output went away)    1 output could not be written
  2 invalid input (nothing started)    3 a forward failed for good
  4 the ports file could not be written (the forwards were closed again)
  -- mode: the command's own code (126/127: it could not be run)
  128+n: a second signal n quit at once (130: Ctrl-C)
`

/** Help with our usage lines and sections; errors as one line each, with a hint. */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    Effect.gen(function*() {
      const caps = yield* TerminalCapabilities.TerminalCapabilities
      const formatter = CliOutput.defaultFormatter({ colors: caps.canColor })
      const path = "commandPath" in event ? event.commandPath.join(" ") : ""
      switch (event._tag) {
        case "Help": {
          const doc = { ...event.helpDoc, usage: USAGE[path] ?? event.helpDoc.usage }
          const help = formatter.formatHelpDoc(doc).trimEnd().replace(/([^\n])\n(\S*EXAMPLES)/, "$1\n\n$2")
          return yield* Console.log(`${help}\n${path === "kube-forward up" ? CONFIG_FILE : ""}${MORE}`)
        }
        case "InvalidInvocation":
          return yield* Console.error(
            [...event.errors.map((e) => `kube-forward: ${e.message}`), `Run '${path} --help' for usage.`].join("\n")
          )
        case "Version":
          return yield* Console.log(formatter.formatVersion(event.name, event.version))
      }
    })
}

/**
 * The CLI's own settings: the built-in global flags it offers (help, version, shell
 * completions) and how help and errors are shown.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<never> = Layer.mergeAll(
  CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions] }),
  CliOutput.layerPresenter(presenter)
)

/**
 * Runs `kube-forward` with `argv` (the arguments after the program's name). Needs the platform
 * services (`NodeServices.layer`).
 *
 * @category running
 * @since 0.1.0
 */
export const run = (argv: ReadonlyArray<string>) => {
  const end = argv.indexOf("--")
  const child = end === -1 ? undefined : argv.slice(end + 1)
  const own = end === -1 ? argv : argv.slice(0, end)
  return Command.runWith(command(child), { version })(own).pipe(Effect.provide(layer))
}
