/**
 * Spreading a service's connections over every ready pod behind it (kubectl pins one pod).
 *
 * The pool lists the pods the service selects, keeps one session to each that is Running and
 * Ready, and follows them with a watch: a pod that appears (or turns ready) gets a session, one
 * that goes away (or stops being ready) loses it. Each new local connection goes to the next
 * pod round-robin. A pod's session that ends takes that pod out until the watch brings it back;
 * the forward itself ends only when following the pods fails.
 *
 * @internal
 */
import type { Ended } from "@kube-forward/core/Forwarder"
import type { OpenError, PodNotFound } from "@kube-forward/core/PortForwardError"
import { Deferred, Effect, Exit, FiberSet, Scope, Stream } from "effect"
import { podSession, type Route, type Settings } from "./attempt.ts"
import { failedPair, type Opener } from "./connection.ts"
import type { KubeClient } from "./kubeClient.ts"
import type { Resolved } from "./resolve.ts"
import { getJson, watch } from "./rest.ts"
import type { Session } from "./session.ts"
import * as Targets from "./targets.ts"

interface Member {
  readonly pod: Targets.Pod
  readonly session: Session
  readonly scope: Scope.Closeable
}

const usable = (pod: Targets.Pod) => pod.status?.phase === "Running" && Targets.isReady(pod)

/** The pods of the service, with a session to each usable one. */
class Pool {
  private readonly members = new Map<string, Member>()
  private readonly starting = new Set<string>()
  private turn = 0
  private readonly connect: (pod: Targets.Pod) => Promise<Member | undefined>

  constructor(connect: (pod: Targets.Pod) => Promise<Member | undefined>) {
    this.connect = connect
  }

  /** A member whose session is up already. */
  add(member: Member): void {
    this.members.set(member.pod.metadata.name, member)
  }

  /** The next pod's session, round-robin. */
  next(): Member | undefined {
    const live = [...this.members.values()].filter((m) => m.session.ended === undefined)
    if (live.length === 0) return undefined
    return live[this.turn++ % live.length]
  }

  /** A pod as the API server now describes it (`deleted`: it is gone). */
  update(pod: Targets.Pod, deleted: boolean): void {
    const name = pod.metadata.name
    const member = this.members.get(name)
    if (deleted || !usable(pod)) {
      if (member !== undefined) this.drop(name, member)
      return
    }
    if ((member !== undefined && member.session.ended === undefined) || this.starting.has(name)) return
    if (member !== undefined) this.drop(name, member)
    this.starting.add(name)
    this.connect(pod).then((m) => {
      this.starting.delete(name)
      if (m !== undefined) this.members.set(name, m)
    })
  }

  private drop(name: string, member: Member): void {
    this.members.delete(name)
    Effect.runFork(Scope.close(member.scope, Exit.void))
  }

  /** Takes every pod of a fresh list (those missing from it are gone). */
  replace(pods: ReadonlyArray<Targets.Pod>): void {
    const names = new Set(pods.map((p) => p.metadata.name))
    for (const [name, member] of this.members) if (!names.has(name)) this.drop(name, member)
    for (const pod of pods) this.update(pod, false)
  }
}

const listPath = (namespace: string, selector: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(selector)}`

/** Lists the pods, then follows them until the watch fails; re-lists when a watch ends. */
const follow = (
  client: KubeClient,
  namespace: string,
  selector: string,
  pool: Pool,
  notFound: (d: string) => PodNotFound
) =>
  Effect.gen(function*() {
    while (true) {
      const list = (yield* getJson(client, listPath(namespace, selector), notFound)) as {
        readonly metadata?: { readonly resourceVersion?: string }
        readonly items?: ReadonlyArray<Targets.Pod>
      }
      pool.replace(list.items ?? [])
      const rv = list.metadata?.resourceVersion ?? ""
      yield* watch(client, `${listPath(namespace, selector)}&watch=true&resourceVersion=${encodeURIComponent(rv)}`)
        .pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED") {
                pool.update(event.object as Targets.Pod, event.type === "DELETED")
              }
            })
          )
        )
    }
  })

/** The route that spreads a service's connections over its ready pods. */
export const route = (client: KubeClient, settings: Settings) =>
(
  target: Resolved,
  namespace: string,
  notFound: (detail: string) => PodNotFound
): Effect.Effect<Route, OpenError, Scope.Scope> =>
  Effect.gen(function*() {
    const service = target.service
    if (service === undefined) return yield* Effect.die("spreading needs a service target")
    const scope = yield* Effect.scope
    const runPromise = yield* FiberSet.makeRuntimePromise<never>()
    const connect = (pod: Targets.Pod): Promise<Member | undefined> =>
      runPromise(
        Effect.gen(function*() {
          const podScope = yield* Scope.fork(scope, "sequential")
          const session = yield* podSession(client, namespace, pod.metadata.name, settings, notFound).pipe(
            Scope.provide(podScope)
          )
          return { pod, session, scope: podScope }
        }).pipe(Effect.catch(() => Effect.succeed(undefined)))
      )
    const pool = new Pool(connect)
    // the first pod is the one kubectl would pick: its session is up before the forward is
    // ready, and its failure is the attempt's
    const firstScope = yield* Scope.fork(scope, "sequential")
    const first = yield* podSession(client, namespace, target.pod, settings, notFound).pipe(Scope.provide(firstScope))
    pool.add({ pod: target.podObject, session: first, scope: firstScope })
    const ended = yield* Deferred.make<Ended>()
    yield* follow(client, namespace, service.selector, pool, notFound).pipe(
      Effect.catch((e) =>
        Deferred.succeed(ended, {
          reason: `following the pods of ${service.object.metadata.name} failed: ${e.message}`,
          exitCode: null
        })
      ),
      Effect.forkScoped
    )
    const opener = (i: number): Opener => (events) => {
      const member = pool.next()
      if (member === undefined) {
        return failedPair(events, `no ready pod behind service ${service.object.metadata.name}`)
      }
      const port = Targets.servicePort(service.object, member.pod, target.remotes[i])
      return typeof port === "number" ? member.session.open(port, events) : failedPair(events, port.detail)
    }
    return { opener, ended: Deferred.await(ended), endedReason: () => undefined }
  })
