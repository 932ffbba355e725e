/**
 * Database maintenance through a forward, with a finally-style guarantee: forwards local port
 * 15432 to the `db` pod, opens a session with `Effect.acquireUseRelease`, runs maintenance
 * commands, and always ends the session (`QUIT`) and the forward — whether the commands
 * succeed, fail or are interrupted (Ctrl-C).
 *
 * The `db` pod of the example cluster speaks a tiny line protocol (one command per line, one
 * reply per line: `PING` → `PONG`, `VACUUM t` / `ANALYZE t` → `OK …`, `QUIT` → `BYE`), so no
 * database driver is needed; with a real database, put your driver's connect/close in the
 * acquire and release steps — the shape of the program stays the same.
 *
 * Needs: pod `db` (namespace `default`) with the line protocol on port 5432.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     KUBECONFIG=~/.kube/config node --conditions=source examples/database-maintenance.ts
 *
 * Or without kubectl, on the native carrier (`examples/backend.ts`):
 *
 *     KUBE_FORWARD_BACKEND=native KUBECONFIG=~/.kube/config node --conditions=source examples/database-maintenance.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `LOCAL_PORT` (default 15432);
 * `TABLES` (default `orders,customers,audit_log`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { K8s } from "@kube-forward/core"
import { Cause, Config, Data, Effect, Exit, Queue } from "effect"
import * as Net from "node:net"
import { ForwardLive } from "./backend.ts"

class DbError extends Data.TaggedError("DbError")<{ readonly message: string }> {}

/** A session of the line protocol: send a command, get its reply line. */
interface DbSession {
  readonly send: (command: string) => Effect.Effect<string, DbError>
  readonly close: Effect.Effect<void>
}

/** Connects to the line protocol at 127.0.0.1:`port`. */
const connect = Effect.fn("connect")(function*(port: number) {
  const replies = yield* Queue.unbounded<string, DbError>()
  const socket = yield* Effect.callback<Net.Socket, DbError>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => resume(Effect.succeed(socket)))
    socket.once("error", (e) => resume(Effect.fail(new DbError({ message: `cannot connect: ${e.message}` }))))
  })
  let buffered = ""
  socket.setEncoding("utf8")
  socket.on("data", (chunk: string) => {
    buffered += chunk
    const lines = buffered.split("\n")
    buffered = lines.pop() ?? ""
    for (const line of lines) Queue.offerUnsafe(replies, line)
  })
  socket.on("error", () => {})
  socket.on("close", () => Queue.failCauseUnsafe(replies, Cause.fail(new DbError({ message: "connection closed" }))))

  const send = (command: string) =>
    Effect.sync(() => socket.write(`${command}\n`)).pipe(
      Effect.andThen(Queue.take(replies)),
      Effect.flatMap((reply) =>
        reply.startsWith("ERR") ? Effect.fail(new DbError({ message: `${command}: ${reply}` })) : Effect.succeed(reply)
      )
    )
  const session: DbSession = { send, close: Effect.sync(() => socket.destroy()) }
  return session
})

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const localPort = yield* Config.Port("LOCAL_PORT").pipe(Config.withDefault(15432))
  const tables = yield* Config.String("TABLES").pipe(
    Config.withDefault("orders,customers,audit_log"),
    Config.map((s) => s.split(","))
  )

  const fwd = yield* K8s.make({ namespace }).pod("db").portForward(localPort, 5432)
  yield* Effect.log(`db reachable on 127.0.0.1:${fwd.localPort}`)

  yield* Effect.acquireUseRelease(
    // acquire: open the session
    connect(fwd.localPort).pipe(Effect.tap(() => Effect.log("session opened"))),
    // use: the maintenance itself
    (db) =>
      Effect.gen(function*() {
        yield* Effect.log(`PING -> ${yield* db.send("PING")}`)
        for (const table of tables) {
          yield* Effect.log(`VACUUM ${table} -> ${yield* db.send(`VACUUM ${table}`)}`)
          yield* Effect.log(`ANALYZE ${table} -> ${yield* db.send(`ANALYZE ${table}`)}`)
        }
      }),
    // release: runs however `use` ended
    (db, exit) =>
      db.send("QUIT").pipe(
        Effect.tap((reply) => Effect.log(`QUIT -> ${reply}`)),
        Effect.ignore,
        Effect.andThen(db.close),
        Effect.andThen(
          Effect.log(`session closed (${Exit.isSuccess(exit) ? "maintenance succeeded" : "maintenance failed"})`)
        )
      )
  )
}).pipe(
  Effect.scoped, // the forward ends here, after the session's release
  Effect.ensuring(Effect.log("forward closed")),
  Effect.provide(ForwardLive)
)

NodeRuntime.runMain(program)
