/**
 * The `kube-forward-testkit` command line: `serve` runs a fake cluster until SIGINT/SIGTERM, for
 * tests written in other languages or by hand.
 *
 * ```sh
 * kube-forward-testkit serve --pod default/web:80=http --pod web:7=echo --pod db:5432=127.0.0.1:5432
 * kube-forward-testkit serve --config cluster.json --transport spdy-only
 * ```
 *
 * When the cluster is up it prints exactly one line, `KUBECONFIG=<path>`, on stdout. On SIGINT or
 * SIGTERM it removes its files and exits 0.
 *
 * Not part of the package barrel (it pulls in `effect/cli`); import `@kube-forward/testkit/Cli`.
 *
 * @since 0.1.0
 */
import { Console, Effect, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as Fs from "node:fs/promises"
import * as Backend from "./Backend.ts"
import * as FakeCluster from "./FakeCluster.ts"

/**
 * A backend in a config file: `{"echo":true}`, `{"http":true}` (or `{"http":{"name":"web-1"}}`),
 * `{"sink":true}`, `{"source":true}` (or `{"source":{"bytes":1048576}}`), `{"address":"host:port"}`.
 *
 * @category schemas
 * @since 0.1.0
 */
export const BackendConfig = Schema.Union([
  Schema.Struct({ echo: Schema.Literal(true) }),
  Schema.Struct({
    http: Schema.Union([Schema.Literal(true), Schema.Struct({ name: Schema.optional(Schema.String) })])
  }),
  Schema.Struct({ sink: Schema.Literal(true) }),
  Schema.Struct({
    source: Schema.Union([
      Schema.Literal(true),
      Schema.Struct({ bytes: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))) })
    ])
  }),
  Schema.Struct({ address: Schema.String.check(Schema.isPattern(/^.+:\d{1,5}$/, { message: "expected host:port" })) })
])

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
const Labels = Schema.Record(Schema.String, Schema.String)
const Phase = Schema.Literals(["Pending", "Running", "Succeeded", "Failed", "Unknown"])
const Workload = Schema.Struct({ name: Schema.String, namespace: Schema.optional(Schema.String), selector: Labels })

/**
 * The JSON of `--config FILE`: {@link FakeCluster.Options} with {@link BackendConfig} backends.
 *
 * @category schemas
 * @since 0.1.0
 */
export const ConfigFile = Schema.Struct({
  pods: Schema.optional(Schema.Array(Schema.Struct({
    name: Schema.String,
    namespace: Schema.optional(Schema.String),
    labels: Schema.optional(Labels),
    phase: Schema.optional(Phase),
    containers: Schema.optional(Schema.Array(Schema.Struct({
      name: Schema.String,
      ports: Schema.Array(
        Schema.Struct({ name: Schema.optional(Schema.String), containerPort: Port, backend: BackendConfig })
      )
    })))
  }))),
  services: Schema.optional(Schema.Array(Schema.Struct({
    name: Schema.String,
    namespace: Schema.optional(Schema.String),
    selector: Labels,
    ports: Schema.Array(Schema.Struct({
      name: Schema.optional(Schema.String),
      port: Port,
      targetPort: Schema.optional(Schema.Union([Port, Schema.String]))
    })),
    clusterIP: Schema.optional(Schema.String)
  }))),
  deployments: Schema.optional(Schema.Array(Workload)),
  statefulsets: Schema.optional(Schema.Array(Workload)),
  version: Schema.optional(Schema.String),
  transport: Schema.optional(Schema.Literals(["tunnel", "spdy-only"]))
})

/**
 * The CLI's input was invalid (a `--pod` value, or the config file).
 *
 * @category errors
 * @since 0.1.0
 */
export class CliInputError extends Schema.TaggedError<CliInputError>("@kube-forward/testkit/CliInputError")(
  "CliInputError",
  { message: Schema.String }
) {}

const toBackend = (config: typeof BackendConfig.Type): Backend.Backend => {
  if ("echo" in config) return Backend.echo()
  if ("http" in config) return Backend.http(config.http === true ? {} : config.http)
  if ("sink" in config) return Backend.sink()
  if ("source" in config) return Backend.source(config.source === true ? {} : config.source)
  const i = config.address.lastIndexOf(":")
  return Backend.address(config.address.slice(0, i), Number(config.address.slice(i + 1)))
}

/**
 * Converts a decoded config file into {@link FakeCluster.Options}.
 *
 * @category conversions
 * @since 0.1.0
 */
export const optionsFromConfig = (config: typeof ConfigFile.Type): FakeCluster.Options => ({
  ...config,
  pods: config.pods?.map((pod) => ({
    ...pod,
    containers: pod.containers?.map((c) => ({
      ...c,
      ports: c.ports.map((p) => ({ ...p, backend: toBackend(p.backend) }))
    }))
  }))
})

/**
 * One parsed `--pod` flag: `[NAMESPACE/]NAME:PORT=BACKEND`, where BACKEND is `echo`, `http`,
 * `sink`, `source` or `HOST:PORT`.
 *
 * @category models
 * @since 0.1.0
 */
export interface PodFlag {
  readonly namespace: string
  readonly name: string
  readonly port: number
  readonly backend: Backend.Backend
}

/**
 * Parses one `--pod` value.
 *
 * @category parsing
 * @since 0.1.0
 */
export const parsePodFlag = (value: string): Effect.Effect<PodFlag, CliInputError> => {
  const m = /^(?:([a-z0-9][-a-z0-9]*)\/)?([a-z0-9][-a-z0-9.]*):(\d{1,5})=(.+)$/.exec(value)
  const port = Number(m?.[3])
  if (!m || port < 1 || port > 65535) {
    return Effect.fail(
      new CliInputError({
        message: `invalid --pod "${value}": expected [NAMESPACE/]NAME:PORT=echo|http|sink|source|HOST:PORT`
      })
    )
  }
  const target = m[4]!
  const address = /^(.+):(\d{1,5})$/.exec(target)
  const backend = target === "echo" ?
    Backend.echo() :
    target === "http" ?
    Backend.http({ name: m[2]! }) :
    target === "sink" ?
    Backend.sink() :
    target === "source" ?
    Backend.source() :
    address ?
    Backend.address(address[1]!, Number(address[2])) :
    undefined
  if (backend === undefined) {
    return Effect.fail(new CliInputError({ message: `invalid backend "${target}" in --pod "${value}"` }))
  }
  return Effect.succeed({ namespace: m[1] ?? "default", name: m[2]!, port, backend })
}

/**
 * Groups `--pod` flags into pods (one container `main`; repeated flags for the same pod add ports;
 * the pod gets the label `app=<name>`).
 *
 * @category conversions
 * @since 0.1.0
 */
export const podsFromFlags = (flags: ReadonlyArray<PodFlag>): Array<FakeCluster.PodSpec> => {
  const pods = new Map<string, { namespace: string; name: string; ports: Array<FakeCluster.ContainerPort> }>()
  for (const flag of flags) {
    const key = `${flag.namespace}/${flag.name}`
    const pod = pods.get(key) ?? { namespace: flag.namespace, name: flag.name, ports: [] }
    pod.ports.push({ containerPort: flag.port, backend: flag.backend })
    pods.set(key, pod)
  }
  return [...pods.values()].map((p) => ({
    name: p.name,
    namespace: p.namespace,
    labels: { app: p.name },
    containers: [{ name: "main", ports: p.ports }]
  }))
}

const readConfig = Effect.fn("Cli.readConfig")(function*(path: string) {
  const text = yield* Effect.tryPromise({
    try: () => Fs.readFile(path, "utf8"),
    catch: (cause) => new CliInputError({ message: `cannot read --config ${path}: ${String(cause)}` })
  })
  const json = yield* Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (cause) => new CliInputError({ message: `--config ${path} is not JSON: ${String(cause)}` })
  })
  const config = yield* Schema.decodeUnknownEffect(ConfigFile)(json).pipe(
    Effect.mapError((error) => new CliInputError({ message: `invalid --config ${path}: ${error.message}` }))
  )
  return optionsFromConfig(config)
})

/**
 * Starts a fake cluster from the CLI inputs, prints `KUBECONFIG=<path>`, and waits forever (the
 * cluster stops when the fiber is interrupted, e.g. by SIGINT/SIGTERM under `NodeRuntime.runMain`).
 *
 * @category running
 * @since 0.1.0
 */
export const serve = Effect.fn("Cli.serve")(function*(input: {
  readonly pods: ReadonlyArray<string>
  readonly config: string | undefined
  readonly transport: FakeCluster.TransportMode | undefined
  readonly serverVersion: string | undefined
}) {
  const fromFile = input.config !== undefined ? yield* readConfig(input.config) : {}
  const flags = yield* Effect.forEach(input.pods, parsePodFlag)
  const options: FakeCluster.Options = {
    ...fromFile,
    pods: [...(fromFile.pods ?? []), ...podsFromFlags(flags)],
    ...(input.transport !== undefined ? { transport: input.transport } : {}),
    ...(input.serverVersion !== undefined ? { version: input.serverVersion } : {})
  }
  yield* Effect.scoped(Effect.gen(function*() {
    const cluster = yield* FakeCluster.make(options)
    yield* Console.log(`KUBECONFIG=${cluster.kubeconfigPath}`)
    return yield* Effect.never
  }))
})

/**
 * The `serve` subcommand.
 *
 * @category commands
 * @since 0.1.0
 */
export const serveCommand = Command.make(
  "serve",
  {
    pods: Flag.String("pod").pipe(
      Flag.withDescription(
        "[NAMESPACE/]NAME:PORT=echo|http|sink|source|HOST:PORT (repeatable; repeat a pod to add ports)"
      ),
      Flag.atLeast(0)
    ),
    config: Flag.String("config").pipe(
      Flag.withDescription("JSON file with pods, services, deployments, statefulsets (FakeCluster options)"),
      Flag.optional
    ),
    transport: Flag.Literals("transport", ["tunnel", "spdy-only"]).pipe(
      Flag.withDescription("tunnel: accept kubectl's WebSocket tunnel; spdy-only: answer it 400 so kubectl falls back"),
      Flag.optional
    ),
    serverVersion: Flag.String("server-version").pipe(
      Flag.withDescription("what /version reports (default v1.33.1)"),
      Flag.optional
    )
  },
  ({ config, pods, serverVersion, transport }) =>
    serve({
      pods,
      config: config._tag === "Some" ? config.value : undefined,
      transport: transport._tag === "Some" ? transport.value : undefined,
      serverVersion: serverVersion._tag === "Some" ? serverVersion.value : undefined
    })
).pipe(Command.withDescription("Run a fake Kubernetes API server until SIGINT/SIGTERM"))

/**
 * The root `kube-forward-testkit` command.
 *
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("kube-forward-testkit").pipe(
  Command.withDescription("A fake Kubernetes API server that real kubectl can port-forward through"),
  Command.withSubcommands([serveCommand])
)

/**
 * Runs the CLI with the process arguments (needs the platform services, e.g.
 * `NodeServices.layer`).
 *
 * @category running
 * @since 0.1.0
 */
export const run = Command.run(command, { version: "0.1.0" })
