/** Request/response over a forked child's IPC channel, both ends. */
import { type ChildProcess, fork } from "node:child_process"

interface Request {
  readonly id: number
  readonly op: string
  readonly args: unknown
}

interface Response {
  readonly id: number
  readonly ok: boolean
  readonly value?: unknown
  readonly error?: string
}

interface Hello {
  readonly hello: unknown
}

/** A forked helper process that answers requests. */
export interface Helper {
  readonly child: ChildProcess
  readonly pid: number
  /** What the helper said when it was ready. */
  readonly hello: unknown
  readonly call: <A>(op: string, args?: unknown, timeoutMs?: number) => Promise<A>
  /** Asks it to shut down and waits for the exit (SIGKILL after `graceMs`). */
  readonly stop: (graceMs?: number) => Promise<void>
}

/** Forks `script` (TypeScript, run by this Node) and waits for its hello. */
export const startHelper = (
  script: string,
  args: ReadonlyArray<string>,
  execArgv: ReadonlyArray<string>
): Promise<Helper> =>
  new Promise((resolve, reject) => {
    const child = fork(script, [...args], { execArgv: [...execArgv], stdio: ["ignore", "inherit", "inherit", "ipc"] })
    let next = 1
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
    let exited = false
    const exitPromise = new Promise<void>((res) => child.once("exit", () => res()))
    child.once("exit", (code, signal) => {
      exited = true
      for (const p of pending.values()) p.reject(new Error(`${script} exited (${code ?? signal})`))
      pending.clear()
      reject(new Error(`${script} exited before it was ready (${code ?? signal})`))
    })
    child.once("error", reject)
    child.on("message", (message: unknown) => {
      if (typeof message === "object" && message !== null && "hello" in message) {
        const helper: Helper = {
          child,
          pid: child.pid ?? -1,
          hello: (message as Hello).hello,
          call: <A>(op: string, callArgs?: unknown, timeoutMs = 300_000) =>
            new Promise<A>((res, rej) => {
              if (exited) return rej(new Error(`${script} has exited`))
              const id = next++
              const timer = setTimeout(() => {
                pending.delete(id)
                rej(new Error(`${script}: ${op} timed out after ${timeoutMs} ms`))
              }, timeoutMs)
              pending.set(id, {
                resolve: (v) => {
                  clearTimeout(timer)
                  res(v as A)
                },
                reject: (e) => {
                  clearTimeout(timer)
                  rej(e)
                }
              })
              child.send({ id, op, args: callArgs } satisfies Request)
            }),
          stop: async (graceMs = 5000) => {
            if (exited) return
            try {
              child.send({ id: 0, op: "shutdown", args: undefined } satisfies Request)
            } catch {
              // the channel is gone already
            }
            const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
            await exitPromise
            clearTimeout(timer)
          }
        }
        resolve(helper)
        return
      }
      const response = message as Response
      const p = pending.get(response.id)
      if (p === undefined) return
      pending.delete(response.id)
      if (response.ok) p.resolve(response.value)
      else p.reject(new Error(response.error ?? "failed"))
    })
  })

/** The helper side: says hello, then answers requests with `handlers`; `shutdown` (or losing the parent) calls `onShutdown`. */
export const serve = (
  hello: unknown,
  handlers: Record<string, (args: never) => unknown>,
  onShutdown: () => Promise<void>
): void => {
  const send = (m: unknown) => {
    if (process.connected) process.send?.(m)
  }
  let stopping = false
  const shutdown = async () => {
    if (stopping) return
    stopping = true
    try {
      await onShutdown()
    } finally {
      if (process.connected) process.disconnect()
      process.exit(0)
    }
  }
  process.on("disconnect", () => void shutdown())
  // Ctrl-C reaches the whole process group: clean up (the temp files of the cluster) instead of dying
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void shutdown())
  process.on("message", (message: Request) => {
    if (message.op === "shutdown") return void shutdown()
    const handler = handlers[message.op]
    if (handler === undefined) {
      return send({ id: message.id, ok: false, error: `unknown op ${message.op}` } satisfies Response)
    }
    Promise.resolve()
      .then(() => handler(message.args as never))
      .then(
        (value) => send({ id: message.id, ok: true, value } satisfies Response),
        (error: unknown) =>
          send(
            {
              id: message.id,
              ok: false,
              error: error instanceof Error ? error.message : String(error)
            } satisfies Response
          )
      )
  })
  send({ hello })
}
