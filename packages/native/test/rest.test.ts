/**
 * The REST calls of the native carrier against an API server that answers 200 with something
 * that is not JSON: a typed `ApiServerError`, never a parse error thrown out of an event handler.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import type { KubeClient } from "../src/internal/kubeClient.ts"
import { getJson, watch } from "../src/internal/rest.ts"

/** An HTTP server whose every answer is 200 with `body`, and a client of it. */
const serving = (body: string) =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.callback<Http.Server>((resume) => {
        const s = Http.createServer((_, res) => res.end(body))
        s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
      }),
      (s) => Effect.callback<void>((resume) => void s.close(() => resume(Effect.void)))
    )
    const url = new URL(`http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`)
    const client: KubeClient = {
      server: url,
      namespace: "default",
      request: (spec) =>
        Effect.sync(() =>
          Http.request({
            host: url.hostname,
            port: url.port,
            path: spec.path,
            method: spec.method,
            headers: spec.headers
          })
        )
    }
    return client
  })

describe("native REST calls", () => {
  it.live("a GET answered with something that is not JSON is an ApiServerError", () =>
    Effect.gen(function*() {
      const client = yield* serving("<html>proxy login</html>")
      const error = yield* getJson(client, "/api/v1/namespaces/default/pods/web", () => assert.fail("no 404")).pipe(
        Effect.flip
      )
      assert.strictEqual(error._tag, "ApiServerError")
      assert.strictEqual(
        error.message,
        "the API server answered 200: the answer to /api/v1/namespaces/default/pods/web is not JSON"
      )
    }))

  it.live("a watch line that is not JSON fails the stream after the events before it", () =>
    Effect.gen(function*() {
      const client = yield* serving(`{"type":"ADDED","object":{}}\nnot json\n`)
      const events: Array<string> = []
      const error = yield* watch(client, "/api/v1/pods?watch=true").pipe(
        Stream.runForEach((e) => Effect.sync(() => void events.push(e.type))),
        Effect.flip
      )
      assert.deepStrictEqual(events, ["ADDED"])
      assert.strictEqual(error._tag, "ApiServerError")
    }))
})
