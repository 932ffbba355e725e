/**
 * Spreading a service's connections over every ready pod behind it (kubectl pins one pod).
 *
 * The pool lists the pods the service selects, keeps one session to each that is Running and
 * Ready, and follows them with a watch: a pod that appears (or turns ready) gets a session, one
 * that goes away (or stops being ready) loses it. Each new local connection goes to the next
 * pod round-robin. A pod whose session ends gets one new session at once; if that fails too, the
 * pod is out until the watch reports it again. The forward itself ends (to be reconnected, or
 * `ForwardLost`) when no pod has a session and none is being connected, or when following the
 * pods fails.
 *
 * @internal
 */
import type { Ended } from "@kube-forward/core/Forwarder"
import type { OpenError, PodNotFound } from "@kube-forward/core/PortForwardError"
import { Deferred, Duration, Effect, Exit, FiberSet, Scope, Stream } from "effect"
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
  /** Connects in flight, by pod name: a newer token (or none) makes an older one stale. */
  private readonly starting = new Map<string, symbol>()
  /** The usable pods as last described, so that a lost session can be opened again. */
  private readonly known = new Map<string, Targets.Pod>()
  /** Pods that already had their one new session since the watch last reported them. */
  private readonly retried = new Set<string>()
  private turn = 0
  private closed = false
  private readonly connect: (pod: Targets.Pod) => Promise<Member | undefined>
  private readonly allLost: (reason: string) => void

  constructor(connect: (pod: Targets.Pod) => Promise<Member | undefined>, allLost: (reason: string) => void) {
    this.connect = connect
    this.allLost = allLost
  }

  /** A member whose session is up already. */
  add(member: Member): void {
    const name = member.pod.metadata.name
    this.known.set(name, member.pod)
    this.members.set(name, member)
    member.session.onEnd((reason) => this.lost(member, reason))
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
    this.retried.delete(name)
    if (deleted || !usable(pod)) {
      this.known.delete(name)
      this.starting.delete(name)
      if (member !== undefined) this.drop(name, member)
      return
    }
    this.known.set(name, pod)
    if ((member !== undefined && member.session.ended === undefined) || this.starting.has(name)) return
    if (member !== undefined) this.drop(name, member)
    this.start(pod)
  }

  /** Takes every pod of a fresh list (those missing from it are gone). */
  replace(pods: ReadonlyArray<Targets.Pod>): void {
    const names = new Set(pods.map((p) => p.metadata.name))
    for (const name of [...this.known.keys()]) if (!names.has(name)) this.known.delete(name)
    for (const name of [...this.starting.keys()]) if (!names.has(name)) this.starting.delete(name)
    for (const [name, member] of this.members) if (!names.has(name)) this.drop(name, member)
    for (const pod of pods) this.update(pod, false)
  }

  /** No more sessions: what is still connecting is closed when it arrives. */
  close(): void {
    this.closed = true
  }

  private start(pod: Targets.Pod): void {
    const name = pod.metadata.name
    const token = Symbol(name)
    this.starting.set(name, token)
    const settle = (member: Member | undefined) => {
      const current = this.starting.get(name) === token
      if (current) this.starting.delete(name)
      if (member === undefined) return this.checkEmpty(`no session to ${name} could be opened`)
      if (current && !this.closed) return this.add(member)
      Effect.runFork(Scope.close(member.scope, Exit.void))
    }
    // interrupted when the forward closes: nothing to settle then but the stale token
    this.connect(pod).then(settle, () => settle(undefined))
  }

  private lost(member: Member, reason: string): void {
    const name = member.pod.metadata.name
    if (this.closed || this.members.get(name) !== member) return
    this.drop(name, member)
    const pod = this.known.get(name)
    if (pod !== undefined && !this.retried.has(name)) {
      this.retried.add(name)
      this.start(pod)
    }
    this.checkEmpty(reason)
  }

  private checkEmpty(reason: string): void {
    if (!this.closed && this.members.size === 0 && this.starting.size === 0) this.allLost(reason)
  }

  private drop(name: string, member: Member): void {
    this.members.delete(name)
    Effect.runFork(Scope.close(member.scope, Exit.void))
  }
}

/** A watch that ends sooner than this after its list is re-listed only once this much time passed. */
const RELIST_INTERVAL = Duration.seconds(1)

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
      const listed = Date.now()
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
      // a server that ends every watch at once is not listed again in a tight loop
      const since = Date.now() - listed
      if (since < Duration.toMillis(RELIST_INTERVAL)) yield* Effect.sleep(Duration.toMillis(RELIST_INTERVAL) - since)
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
    // closed in this order: the watch, the pool (no new sessions), connects in flight, sessions
    const scope = yield* Scope.fork(yield* Effect.scope, "sequential")
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
    const ended = yield* Deferred.make<Ended>()
    let endedReason: string | undefined
    const end = (reason: string) => {
      endedReason ??= reason
      Deferred.doneUnsafe(ended, Exit.succeed({ reason, exitCode: null }))
    }
    const name = service.object.metadata.name
    const pool = new Pool(connect, (reason) => end(`lost connection to every pod of service ${name}: ${reason}`))
    // the first pod is the one kubectl would pick: its session is up before the forward is
    // ready, and its failure is the attempt's
    const firstScope = yield* Scope.fork(scope, "sequential")
    const first = yield* podSession(client, namespace, target.pod, settings, notFound).pipe(Scope.provide(firstScope))
    yield* Effect.addFinalizer(() => Effect.sync(() => pool.close()))
    pool.add({ pod: target.podObject, session: first, scope: firstScope })
    yield* follow(client, namespace, service.selector, pool, notFound).pipe(
      Effect.catch((e) => Effect.sync(() => end(`following the pods of ${name} failed: ${e.message}`))),
      Effect.forkScoped
    )
    const opener = (i: number): Opener => (events) => {
      const member = pool.next()
      if (member === undefined) {
        return failedPair(events, `no ready pod behind service ${name}`)
      }
      const port = Targets.servicePort(service.object, member.pod, target.remotes[i])
      return typeof port === "number" ? member.session.open(port, events) : failedPair(events, port.detail)
    }
    return { opener, ended: Deferred.await(ended), endedReason: () => endedReason }
  })
