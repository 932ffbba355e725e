/**
 * The few REST calls target resolution needs: GET an object or a list as JSON, and WATCH a list
 * as a stream of events. Errors are the library's (`PodNotFound` for a 404, …).
 *
 * @internal
 */
import { ApiServerError, type Forbidden, PodNotFound } from "@kube-forward/core/PortForwardError"
import { Cause, Effect, Queue, Stream } from "effect"
import type * as Http from "node:http"
import { answerError, type RequestFailure, requestFailure } from "./errors.ts"
import type { KubeClient } from "./kubeClient.ts"

/** Everything a REST call can fail with. */
export type RestError = RequestFailure | Forbidden | PodNotFound | ApiServerError

/** How long a REST call may take before the API server counts as unreachable. */
const REST_TIMEOUT_MS = 30_000

const readBody = (response: Http.IncomingMessage, limit: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    response.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) return response.destroy(new Error(`answer larger than ${limit} bytes`))
      chunks.push(chunk)
    })
    response.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    response.once("error", reject)
  })

/** `GET path` as JSON; a 404 becomes `notFound(detail)`. */
export const getJson = (
  client: KubeClient,
  path: string,
  notFound: (detail: string) => PodNotFound
): Effect.Effect<unknown, RestError> =>
  client.request({ method: "GET", path, headers: { Accept: "application/json" } }).pipe(
    Effect.flatMap((request) =>
      Effect.callback<unknown, RestError>((resume) => {
        const fail = (e: unknown) => resume(Effect.fail(requestFailure(client.server)(e)))
        request.setTimeout(REST_TIMEOUT_MS, () => request.destroy(new Error(`no answer within ${REST_TIMEOUT_MS} ms`)))
        request.once("error", fail)
        request.once("response", (response) => {
          readBody(response, 64 * 1024 * 1024).then((body) => {
            if (response.statusCode === 200) {
              try {
                return resume(Effect.succeed(JSON.parse(body)))
              } catch {
                return resume(Effect.fail(notJson(200, path)))
              }
            }
            resume(Effect.fail(answerError(response, body, notFound)))
          }, fail)
        })
        request.end()
        return Effect.sync(() => request.destroy())
      })
    )
  )

/** One event of a watch. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR"
  readonly object: unknown
}

/**
 * `GET path&watch=true`: the events as they come, one JSON object per line. The stream ends
 * when the server ends the watch, and fails when the connection does.
 */
export const watch = (client: KubeClient, path: string): Stream.Stream<WatchEvent, RestError> =>
  Stream.callback<WatchEvent, RestError>((queue) =>
    client.request({ method: "GET", path, headers: { Accept: "application/json" } }).pipe(
      Effect.flatMap((request) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            request.once("error", (e) => Queue.failCauseUnsafe(queue, failCause(requestFailure(client.server)(e))))
            request.once("response", (response) => follow(response, queue, client))
            request.end()
            return request
          }),
          (request) => Effect.sync(() => request.destroy())
        )
      )
    )
  )

const failCause = (e: RestError) => Cause.fail(e)

/** The longest watch event read (kube-apiserver's own request limit is 3 MiB; a margin above). */
const MAX_EVENT_CHARS = 16 * 1024 * 1024

const follow = (
  response: Http.IncomingMessage,
  queue: Queue.Queue<WatchEvent, RestError | Cause.Done>,
  client: KubeClient
) => {
  if (response.statusCode !== 200) {
    readBody(response, 1024 * 1024).then(
      (body) => Queue.failCauseUnsafe(queue, failCause(answerError(response, body, notWatchable))),
      (e) => Queue.failCauseUnsafe(queue, failCause(requestFailure(client.server)(e)))
    )
    return
  }
  let rest = ""
  response.setEncoding("utf8")
  response.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n")
    rest = lines.pop() ?? ""
    if (rest.length > MAX_EVENT_CHARS) {
      response.destroy()
      return Queue.failCauseUnsafe(queue, failCause(notJson(200, "a watch event (over 16 MiB without a line end)")))
    }
    for (const line of lines) {
      if (line.trim().length === 0) continue
      let event: WatchEvent
      try {
        event = JSON.parse(line) as WatchEvent
      } catch {
        // thrown here it would escape the event handler and end the process
        response.destroy()
        return Queue.failCauseUnsafe(queue, failCause(notJson(200, "a watch event")))
      }
      Queue.offerUnsafe(queue, event)
    }
  })
  response.once("end", () => Queue.endUnsafe(queue))
  response.once("error", (e) => Queue.failCauseUnsafe(queue, failCause(requestFailure(client.server)(e))))
}

/** An answer that should be JSON and is not. */
const notJson = (status: number, what: string) =>
  new ApiServerError({ status, detail: `the answer to ${what} is not JSON` })

const notWatchable = (detail: string) => new PodNotFound({ target: "pods", namespace: undefined, detail })
