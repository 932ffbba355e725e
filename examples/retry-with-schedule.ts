/**
 * Retry with a Schedule, against a pod that becomes Running only after a moment (a pod just
 * created, or restarted by a rollout).
 *
 * How this example is made meaningful without controlling the cluster: it targets a pod named
 * by `RETRY_POD` (default `warming-up`) that is *not yet running* when the example starts. In
 * the example test, the fake cluster keeps `warming-up` Pending until the test runner sees this
 * program print its first failed attempt, and only then sets the pod Running — so the retries
 * shown are real, and the forward opens on a later attempt. Against your own cluster, start the
 * program right after creating or restarting a pod (`kubectl rollout restart ...`), with
 * `RETRY_POD` set to its name. If the pod never becomes Running within the schedule (30 s), the
 * program fails with `PodNotRunning`, as it should.
 *
 * Shown both ways the library offers:
 *
 * 1. `Retry.transient(schedule)` as a combinator: only transient errors are retried, so a
 *    missing pod (`PodNotFound`, permanent) fails after one attempt however generous the
 *    schedule.
 * 2. The spec's `retry` field with `Retry.policy(...)` (jittered exponential backoff, capped),
 *    tapped with `Schedule.tap` to print each failed attempt and the delay before the next.
 *
 * Needs: no pod named `no-such-pod`; pod `warming-up` (or `RETRY_POD`) with an HTTP server on
 * port 80, becoming Running within 30 s of the start.
 *
 * Run against your own cluster (kubectl on PATH):
 *
 *     kubectl rollout restart deployment/my-app && \
 *       RETRY_POD=my-app-... KUBECONFIG=~/.kube/config node --conditions=source examples/retry-with-schedule.ts
 *
 * Or on the native carrier (`examples/backend.ts`), right after the restart:
 *
 *     KUBE_FORWARD_BACKEND=native RETRY_POD=my-app-... KUBECONFIG=~/.kube/config node --conditions=source examples/retry-with-schedule.ts
 *
 * Environment: `KUBE_FORWARD_BACKEND`, `KUBECONFIG`, `KUBE_FORWARD_CONTEXT`, `KUBE_FORWARD_KUBECTL`
 * (read by `ForwardLive`, see `backend.ts`); `NAMESPACE` (default `default`); `RETRY_POD` (default `warming-up`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PortForward, Retry } from "@kube-forward/core"
import { Config, Duration, Effect, Ref, Schedule } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { ForwardLive } from "./backend.ts"

const ms = (d: Duration.Duration) => `${Math.round(Duration.toMillis(d))} ms`

const program = Effect.gen(function*() {
  const namespace = yield* Config.String("NAMESPACE").pipe(Config.withDefault("default"))
  const pod = yield* Config.String("RETRY_POD").pipe(Config.withDefault("warming-up"))

  // 1. permanent errors are not retried, whatever the schedule
  const attempts = yield* Ref.make(0)
  const notFound = yield* PortForward.make({ target: "pod/no-such-pod", namespace, ports: [80] }).pipe(
    Effect.tapError(() => Ref.update(attempts, (n) => n + 1)),
    Retry.transient(Schedule.spaced("200 millis").pipe(Schedule.upTo({ times: 10 }))),
    Effect.flip
  )
  yield* Effect.log(
    `pod/no-such-pod: ${notFound._tag} after ${yield* Ref.get(attempts)} attempt(s) (permanent, not retried)`
  )

  // 2. transient errors (a pod that is not Running yet) are retried on the spec's schedule
  const retry = Retry.policy({ base: "200 millis", maxDelay: "1 second", times: 60, within: "30 seconds" }).pipe(
    Schedule.tap(({ attempt, duration, input }) =>
      Effect.log(`attempt ${attempt} failed: ${input._tag} (${input.message}); next try in ${ms(duration)}`)
    )
  )
  yield* Effect.log(`opening a forward to pod/${pod}, retrying while it is not running...`)
  const [took, fwd] = yield* PortForward.make({ target: `pod/${pod}`, namespace, ports: [80], retry }).pipe(
    Effect.timed
  )
  yield* Effect.log(`forward to ${fwd.target} ready on 127.0.0.1:${fwd.localPort} after ${ms(took)}`)
  const health = yield* HttpClient.get(`http://127.0.0.1:${fwd.localPort}/health`)
  yield* Effect.log(`GET /health -> ${health.status}`)
}).pipe(Effect.scoped, Effect.provide([ForwardLive, FetchHttpClient.layer]))

NodeRuntime.runMain(program)
