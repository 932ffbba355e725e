/**
 * The local listeners of a forward, bound by us before anything is asked of the cluster — so a
 * taken port is a `PortInUse` at once — and closed on every path with the scope.
 *
 * Addresses as kubectl binds them (`--address`): each address of the spec on every port;
 * `localhost` is 127.0.0.1 and ::1, and needs only one of the two; a port chosen by the
 * operating system (`0`) is chosen on the first address and reused on the others.
 *
 * @internal
 */
import { InvalidSpec, PortInUse } from "@kube-forward/core/PortForwardError"
import { Effect, type Scope } from "effect"
import * as Net from "node:net"

/** One bound port: where it listens (the first address) and its servers. */
export interface Bound {
  readonly address: string
  readonly local: number
  readonly servers: ReadonlyArray<Net.Server>
}

/**
 * Hands every connection of `bound` to `handler`, those accepted before the call included (the
 * listeners accept from the moment they are bound; the route for their bytes comes later).
 */
export const serve = (bound: Bound, handler: (socket: Net.Socket) => void): void => {
  for (const server of bound.servers) {
    for (const socket of open.get(server) ?? []) handler(socket)
    server.on("connection", handler)
  }
}

type BindError = PortInUse | InvalidSpec

/** The connections each server accepted and that are still open, so closing can end them. */
const open = new WeakMap<Net.Server, Set<Net.Socket>>()

const listen = (port: number, host: string): Promise<Net.Server> =>
  new Promise((resolve, reject) => {
    // half-open: a client that has sent its FIN still reads the pod's answer
    const server = Net.createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true })
    const sockets = new Set<Net.Socket>()
    open.set(server, sockets)
    server.on("connection", (socket) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
    })
    server.once("error", reject)
    server.listen({ port, host, exclusive: true }, () => {
      server.off("error", reject)
      resolve(server)
    })
  })

/** Stops listening and ends every connection still open; resolves when all is closed. */
const closeAll = (servers: ReadonlyArray<Net.Server>): Promise<void> =>
  Promise.all(servers.map((server) =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of open.get(server) ?? []) socket.destroy()
    })
  )).then(() => undefined)

const bindError = (port: number, address: string, dynamic: boolean, e: NodeJS.ErrnoException): BindError => {
  if (e.code === "EADDRINUSE") return new PortInUse({ port, address, dynamic })
  const why = e.code === "EADDRNOTAVAIL"
    ? `${address} is not an address of this machine`
    : `${e.code ?? "error"}: ${e.message}`
  return new InvalidSpec({ issues: [{ path: "address", message: `cannot listen on ${address}:${port}: ${why}` }] })
}

/** Binds one port on every address; on failure nothing of it stays bound. */
const bindPort = async (requested: number, addresses: ReadonlyArray<string>, dynamic: boolean): Promise<Bound> => {
  const servers: Array<Net.Server> = []
  let port = requested
  let first: string | undefined
  try {
    for (const address of addresses) {
      const hosts = address === "localhost" ? ["127.0.0.1", "::1"] : [address]
      let bound = 0
      let lastError: NodeJS.ErrnoException | undefined
      for (const host of hosts) {
        try {
          const server = await listen(port, host)
          servers.push(server)
          if (port === 0) port = (server.address() as Net.AddressInfo).port
          first ??= host
          bound++
        } catch (e) {
          lastError = e as NodeJS.ErrnoException
        }
      }
      if (bound === 0) throw bindError(port, address, dynamic || requested === 0, lastError!)
    }
    return { address: first!, local: port, servers }
  } catch (e) {
    await closeAll(servers)
    throw e
  }
}

/**
 * Binds every port (`locals[i]`, `0` for one the operating system chooses) on every address.
 * The servers pause each connection they accept (`pauseOnConnect`); they close with the scope.
 */
export const bind = (
  locals: ReadonlyArray<number>,
  addresses: ReadonlyArray<string>,
  isDynamic: (local: number) => boolean
): Effect.Effect<ReadonlyArray<Bound>, BindError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const bound: Array<Bound> = []
        try {
          for (const local of locals) bound.push(await bindPort(local, addresses, isDynamic(local)))
          return bound
        } catch (e) {
          await closeAll(bound.flatMap((b) => b.servers))
          throw e
        }
      },
      catch: (e) =>
        e instanceof PortInUse || e instanceof InvalidSpec
          ? e
          : bindError(0, addresses.join(","), false, e as NodeJS.ErrnoException)
    }),
    (bound) => Effect.promise(() => closeAll(bound.flatMap((b) => b.servers)))
  )
