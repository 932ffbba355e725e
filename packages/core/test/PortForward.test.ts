import { assert, describe, it } from "@effect/vitest"
import { Kubectl, PortAllocator, PortForward, Retry } from "@kube-forward/core"
import { Deferred, Effect, Exit, Fiber, Layer, Schedule, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Net from "node:net"

/**
 * A scripted kubectl that records every spawn and every kill (of a process that had not
 * exited), also as one ordered log: `spawn 0`, `kill 0`, `spawn 1`, …
 */
const scripted = (script: (args: ReadonlyArray<string>, index: number) => Kubectl.TestScript) => {
  const spawns: Array<ReadonlyArray<string>> = []
  const events: Array<string> = []
  let kills = 0
  const layer = PortForward.layerWith(
    Kubectl.layerTest((args, index) => {
      spawns.push(args)
      events.push(`spawn ${index}`)
      const s = script(args, index)
      return {
        ...s,
        onKill: Effect.sync(() => {
          kills++
          events.push(`kill ${index}`)
        })
      }
    })
  )
  return { layer, spawns, events, kills: () => kills }
}

/** A scripted kubectl's exit: code 1 once `die` is completed (a forward lost after ready). */
const exitsWhen = (die: Deferred.Deferred<void>): Effect.Effect<Kubectl.ExitStatus> =>
  Deferred.await(die).pipe(Effect.as({ exitCode: 1, signal: null }))

const forwarding = (local: number, remote: number) => `Forwarding from 127.0.0.1:${local} -> ${remote}`
const stderr = (text: string): Kubectl.OutputLine => ({ stream: "stderr", text })

/**
 * A local TCP server that echoes and counts the connections it accepted; the scripted
 * "kubectl" points its Forwarding line here.
 */
const countingEcho = Effect.gen(function*() {
  let accepted = 0
  const server = yield* Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        accepted++
        socket.pipe(socket)
      })
      server.listen(0, "127.0.0.1", () => {
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )
  return { port: (server.address() as Net.AddressInfo).port, accepted: () => accepted }
})

/** A local TCP server that echoes; its port. */
const echoServer = countingEcho.pipe(Effect.map((s) => s.port))

/** How many finalizers a scope holds (Scope.state is public). */
const finalizersOf = (scope: Scope.Scope): number => {
  const state = scope.state
  if (state._tag !== "Open") return 0
  return state.finalizers?.size ?? (state.finalizer === undefined ? 0 : 1)
}

describe("PortForward.make with a scripted kubectl", () => {
  it.effect("forwards closed early leave nothing in a long-lived scope", () => {
    let n = 0
    const k = scripted(() => ({ output: [forwarding(30000 + n++, 80)] }))
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      const baseline = finalizersOf(scope)
      for (let i = 0; i < 50; i++) {
        const fwd = yield* PortForward.make({ target: "pod/web", ports: [80], verify: false }).pipe(
          Scope.provide(scope)
        )
        assert.isAbove(finalizersOf(scope), baseline)
        yield* fwd.close
      }
      assert.strictEqual(finalizersOf(scope), baseline, "every closed forward left the scope")
      assert.strictEqual(k.kills(), 50)
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("localhost plus an explicit address: a listener kubectl could not open on one of them is PortInUse for that address", () => {
    const k = scripted(() => ({
      output: [
        forwarding(5100, 80),
        "Forwarding from [::1]:5100 -> 80",
        "Forwarding from 10.1.2.3:5100 -> 80",
        forwarding(5101, 81),
        stderr(
          "Unable to listen on port 5101: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 10.1.2.3:5101: bind: address already in use]"
        )
      ]
    }))
    return Effect.gen(function*() {
      const error = yield* PortForward.make({
        target: "pod/web",
        ports: [80, 81],
        address: ["localhost", "10.1.2.3"],
        verify: false
      }).pipe(Effect.flip)
      assert.isTrue(error._tag === "PortInUse" && error.port === 5101 && error.address === "10.1.2.3", error.message)
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("is ready when every port has its Forwarding line; close kills kubectl", () => {
    const k = scripted(() => ({ output: [forwarding(8080, 80), forwarding(41234, 9090)] }))
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      const fwd = yield* PortForward.make({
        target: "pod/web",
        namespace: "shop",
        ports: [{ local: 8080, remote: 80 }, 9090],
        verify: false
      }).pipe(Scope.provide(scope))
      assert.strictEqual(fwd.localPort, 8080)
      assert.strictEqual(fwd.remotePort, 80)
      assert.deepStrictEqual(fwd.ports.map((p) => [p.address, p.local, p.remote, p.targetPort]), [
        ["127.0.0.1", 8080, 80, 80],
        ["127.0.0.1", 41234, 9090, 9090]
      ])
      assert.isTrue(yield* fwd.isOpen)
      assert.deepStrictEqual(k.spawns[0].slice(-3), ["pod/web", "8080:80", ":9090"])
      assert.strictEqual(k.kills(), 0)
      yield* fwd.close
      assert.isFalse(yield* fwd.isOpen)
      assert.strictEqual((yield* fwd.currentStatus)._tag, "Closed")
      assert.strictEqual(k.kills(), 1)
      yield* fwd.close // idempotent
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(k.kills(), 1)
      yield* fwd.awaitClosed
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("warnings on stderr do not fail a forward that then comes up", () => {
    const k = scripted(() => ({
      output: [
        stderr(
          "W1126 06:00:00.000000    1 memcache.go:287] couldn't get resource list for metrics.k8s.io/v1beta1: the server is currently unable to handle the request"
        ),
        stderr(
          "E1126 06:00:00.000000    1 memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list\""
        ),
        forwarding(8081, 80)
      ]
    }))
    return Effect.gen(function*() {
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [{ local: 8081, remote: 80 }], verify: false })
      assert.isTrue(yield* fwd.isOpen)
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("several addresses: ready only when every address of every port is listening", () => {
    const lines = [forwarding(5000, 80), "Forwarding from [::1]:5000 -> 80", forwarding(5001, 81)]
    const spec = {
      target: "pod/web",
      ports: [80, 81],
      address: ["127.0.0.1", "::1"],
      verify: false,
      readyTimeout: "10 seconds"
    } as const
    const missing = scripted(() => ({ output: lines }))
    const complete = scripted(() => ({ output: [...lines, "Forwarding from [::1]:5001 -> 81"] }))
    return Effect.gen(function*() {
      // one line short (port 81 on ::1): never ready, Timeout
      const fiber = yield* PortForward.make(spec).pipe(Effect.provide(missing.layer), Effect.forkChild)
      yield* TestClock.adjust("11 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual((error as any)?.error?._tag, "Timeout")
      assert.strictEqual(missing.kills(), 1)
      // every line there: ready
      const fwd = yield* PortForward.make(spec).pipe(Effect.provide(complete.layer))
      assert.isTrue(yield* fwd.isOpen)
      assert.deepStrictEqual(fwd.ports.map((p) => p.local), [5000, 5001])
    })
  })

  it.effect(
    "verifies with one check connection through each port; verify: false makes none",
    () =>
      Effect.gen(function*() {
        const first = yield* countingEcho
        const second = yield* countingEcho
        const output = [forwarding(first.port, 80), forwarding(second.port, 81)]
        const verified = yield* PortForward.make({ target: "pod/web", ports: [80, 81] }).pipe(
          Effect.provide(scripted(() => ({ output })).layer)
        )
        assert.isTrue(yield* verified.isOpen)
        assert.deepStrictEqual([first.accepted(), second.accepted()], [1, 1], "one check connection per port")
        const unverified = yield* PortForward.make({ target: "pod/web", ports: [80, 81], verify: false }).pipe(
          Effect.provide(scripted(() => ({ output })).layer)
        )
        assert.isTrue(yield* unverified.isOpen)
        assert.deepStrictEqual([first.accepted(), second.accepted()], [1, 1], "verify: false made no connection")
      }),
    { timeout: 10_000 }
  )

  it.effect("verification fails with VerifyFailed when nothing listens on the reported port", () =>
    Effect.gen(function*() {
      const port = yield* echoServer
      const reported = port === 1 ? 2 : 1
      const k = scripted(() => ({ output: [forwarding(reported, 80)] }))
      const error = yield* PortForward.make({ target: "pod/web", ports: [80] }).pipe(
        Effect.provide(k.layer),
        Effect.flip
      )
      // the socket error is ours, in a field of its own: nothing is put in kubectl's mouth
      assert.isTrue(error._tag === "VerifyFailed" && error.localPort === reported, error.message)
      assert.include(error.message, "ECONNREFUSED")
      assert.strictEqual(k.kills(), 1)
    }))

  it.effect("maps kubectl's exit before ready to a typed error; PodNotFound is not retried", () => {
    const k = scripted(() => ({
      output: [stderr("Error from server (NotFound): pods \"nope\" not found")],
      exit: { exitCode: 1, signal: null }
    }))
    return Effect.gen(function*() {
      const error = yield* PortForward.make({ target: "pod/nope", ports: [80], retry: Schedule.recurs(5) }).pipe(
        Effect.flip
      )
      assert.strictEqual(error._tag, "PodNotFound")
      assert.strictEqual(error.message, "pod/nope not found (pods \"nope\" not found)")
      assert.strictEqual(k.spawns.length, 1, "PodNotFound is not retried")
      assert.strictEqual(k.kills(), 0, "kubectl exited by itself (its whole stderr read); nothing was signalled")
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("retries transient errors on the schedule", () => {
    const k = scripted((_, i) =>
      i < 2
        ? {
          output: [stderr("error: unable to forward port because pod is not running. Current status=Pending")],
          exit: { exitCode: 1, signal: null }
        }
        : { output: [forwarding(7000, 80)] }
    )
    return Effect.gen(function*() {
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [80], verify: false, retry: Schedule.recurs(5) })
      assert.strictEqual(k.spawns.length, 3)
      assert.strictEqual(fwd.localPort, 7000)
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("each failed attempt is killed before the next one starts", () => {
    // attempts 0 and 1 never report ready (and never exit by themselves): Timeout, retried
    const k = scripted((_, i) => i < 2 ? { output: [] } : { output: [forwarding(7002, 80)] })
    return Effect.gen(function*() {
      const fiber = yield* PortForward.make({
        target: "pod/web",
        ports: [80],
        verify: false,
        readyTimeout: "1 second",
        retry: Schedule.recurs(5)
      }).pipe(Effect.forkChild)
      while (k.spawns.length < 3) yield* TestClock.adjust("1 second")
      const fwd = yield* Fiber.join(fiber)
      assert.strictEqual(fwd.localPort, 7002)
      assert.deepStrictEqual(k.events, ["spawn 0", "kill 0", "spawn 1", "kill 1", "spawn 2"])
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("InvalidSpec before anything is spawned", () => {
    const k = scripted(() => ({}))
    return Effect.gen(function*() {
      const error = yield* PortForward.make({ target: "pod/--privileged", ports: [80] }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "InvalidSpec")
      assert.strictEqual(k.spawns.length, 0)
    }).pipe(Effect.provide(k.layer))
  })

  it.live("a fixed port that is taken fails with PortInUse before kubectl starts", () => {
    const k = scripted(() => ({}))
    return Effect.gen(function*() {
      const port = yield* echoServer
      const error = yield* PortForward.make({ target: "pod/web", ports: [{ local: port, remote: 80 }] }).pipe(
        Effect.flip
      )
      assert.isTrue(error._tag === "PortInUse" && error.port === port && !error.dynamic)
      assert.strictEqual(k.spawns.length, 0)
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("a listener kubectl could not open fails the forward at once", () => {
    const k = scripted(() => ({
      output: [
        forwarding(6000, 80),
        stderr(
          "Unable to listen on port 6001: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:6001: bind: address already in use]"
        )
      ]
    }))
    return Effect.gen(function*() {
      const error = yield* PortForward.make({
        target: "pod/web",
        ports: [80, { local: 6001, remote: 81 }],
        verify: false
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            k.layer,
            Layer.succeed(
              PortAllocator.PortAllocator,
              PortAllocator.make({ allocate: () => Effect.succeed(0), isFree: () => Effect.succeed(true) })
            )
          )
        ),
        Effect.flip
      )
      assert.isTrue(error._tag === "PortInUse" && error.port === 6001)
      assert.strictEqual(k.kills(), 1)
    })
  })

  it.effect("Timeout when kubectl never reports ready; kubectl is killed", () => {
    const k = scripted(() => ({ output: [] }))
    return Effect.gen(function*() {
      const fiber = yield* PortForward.make({ target: "pod/web", ports: [80], readyTimeout: "3 seconds" }).pipe(
        Effect.flip,
        Effect.forkChild
      )
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber)
      assert.isTrue(error._tag === "Timeout" && error.stage === "ready" && error.after === 3000)
      assert.strictEqual(error.message, "port forward to pod/web took longer than 3000 ms to become ready")
      assert.strictEqual(k.kills(), 1)
    }).pipe(Effect.provide(k.layer))
  })

  it.effect("interruption before ready kills kubectl", () =>
    Effect.gen(function*() {
      const spawned = yield* Deferred.make<void>()
      const k = scripted(() => {
        Deferred.doneUnsafe(spawned, Exit.void)
        return { output: [] }
      })
      const fiber = yield* PortForward.make({ target: "pod/web", ports: [80] }).pipe(
        Effect.provide(k.layer),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Deferred.await(spawned)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(k.kills(), 1)
    }))

  it.effect("kubectl exiting after ready: Failed, isOpen false, awaitClosed fails with ForwardLost", () =>
    Effect.gen(function*() {
      const die = yield* Deferred.make<void>()
      const k = scripted(() => ({
        output: [forwarding(7001, 80)],
        exit: exitsWhen(die)
      }))
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [80], verify: false }).pipe(
        Effect.provide(k.layer)
      )
      assert.isTrue(yield* fwd.isOpen)
      yield* Deferred.succeed(die, undefined)
      const lost = yield* Effect.flip(fwd.awaitClosed)
      assert.strictEqual(lost._tag, "ForwardLost")
      assert.strictEqual(lost.reason, "kubectl exited with code 1")
      assert.isFalse(yield* fwd.isOpen)
      const status = yield* fwd.currentStatus
      assert.isTrue(status._tag === "Failed" && status.error._tag === "ForwardLost")
    }))

  it.effect("reconnect with Retry.policy() keeps trying through PodNotFound (a pod being recreated)", () =>
    Effect.gen(function*() {
      const die = yield* Deferred.make<void>()
      const k = scripted((_, i) =>
        i === 0
          ? {
            output: [forwarding(43211, 80)],
            exit: exitsWhen(die)
          }
          : i === 1
          ? {
            output: [stderr("Error from server (NotFound): pods \"web\" not found")],
            exit: { exitCode: 1, signal: null }
          }
          : { output: [forwarding(43211, 80)] }
      )
      const fwd = yield* PortForward.make({
        target: "pod/web",
        ports: [80],
        verify: false,
        reconnect: Retry.policy()
      }).pipe(Effect.provide(k.layer))
      const states = yield* fwd.status.pipe(
        Stream.map((s) => s._tag === "Reconnecting" ? `Reconnecting:${s.cause._tag}` : s._tag),
        Stream.take(4),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Deferred.succeed(die, undefined)
      // the reconnect attempts wait out the policy's (jittered, sub-second) first delays
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* Fiber.join(states), [
        "Ready",
        "Reconnecting:ForwardLost",
        "Reconnecting:PodNotFound",
        "Ready"
      ])
      assert.strictEqual(k.spawns.length, 3)
      assert.isTrue(yield* fwd.isOpen)
    }))

  it.effect("reconnects on the same local ports and reports the way there", () =>
    Effect.gen(function*() {
      const die = yield* Deferred.make<void>()
      const k = scripted((_, i) =>
        i === 0
          ? {
            output: [forwarding(43210, 80)],
            exit: exitsWhen(die)
          }
          : i === 1
          ? {
            output: [stderr("error: unable to forward port because pod is not running. Current status=Pending")],
            exit: { exitCode: 1, signal: null }
          }
          : { output: [forwarding(43210, 80)] }
      )
      const fwd = yield* PortForward.make({
        target: "pod/web",
        ports: [80],
        verify: false,
        reconnect: Schedule.recurs(3)
      }).pipe(Effect.provide(k.layer))
      const seen = yield* fwd.status.pipe(
        Stream.map((s) => s._tag === "Reconnecting" ? `Reconnecting#${s.attempt}:${s.cause._tag}` : s._tag),
        Stream.takeUntil((s) => s === "Ready" && k.spawns.length === 3),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Deferred.succeed(die, undefined)
      const states = yield* Fiber.join(seen)
      assert.deepStrictEqual(states, ["Ready", "Reconnecting#1:ForwardLost", "Reconnecting#2:PodNotRunning", "Ready"])
      assert.deepStrictEqual(k.spawns[0].slice(-1), [":80"])
      assert.deepStrictEqual(k.spawns[1].slice(-1), ["43210:80"])
      assert.deepStrictEqual(k.spawns[2].slice(-1), ["43210:80"])
      assert.isTrue(yield* fwd.isOpen)
      assert.strictEqual(fwd.localPort, 43210)
    }))

  it.effect("a reconnect is announced only when it will happen: none past the schedule, none for what is not reconnectable", () =>
    Effect.gen(function*() {
      const die = yield* Deferred.make<void>()
      const notRunning = stderr("error: unable to forward port because pod is not running. Current status=Pending")
      const k = scripted((_, i) =>
        i === 0
          ? {
            output: [forwarding(43220, 80)],
            exit: exitsWhen(die)
          }
          : { output: [notRunning], exit: { exitCode: 1, signal: null } }
      )
      const fwd = yield* PortForward.make({
        target: "pod/web",
        ports: [80],
        verify: false,
        reconnect: Schedule.recurs(1)
      })
        .pipe(Effect.provide(k.layer))
      const seen = yield* fwd.status.pipe(
        Stream.map((s) => s._tag === "Reconnecting" ? `Reconnecting#${s.attempt}:${s.cause._tag}` : s._tag),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Deferred.succeed(die, undefined)
      assert.deepStrictEqual(yield* Fiber.join(seen), [
        "Ready",
        "Reconnecting#1:ForwardLost",
        "Reconnecting#2:PodNotRunning",
        "Failed"
      ])
      assert.strictEqual(k.spawns.length, 3, "the first start and two reconnect attempts")
    }))

  it.effect("a reconnect that fails with what cannot be reconnected goes to Failed without announcing another attempt", () =>
    Effect.gen(function*() {
      const die = yield* Deferred.make<void>()
      const forbidden = stderr(
        `Error from server (Forbidden): pods "web" is forbidden: User "x" cannot create resource "pods/portforward"`
      )
      const k = scripted((_, i) =>
        i === 0
          ? {
            output: [forwarding(43221, 80)],
            exit: exitsWhen(die)
          }
          : { output: [forbidden], exit: { exitCode: 1, signal: null } }
      )
      const fwd = yield* PortForward.make({
        target: "pod/web",
        ports: [80],
        verify: false,
        reconnect: Schedule.recurs(5)
      })
        .pipe(Effect.provide(k.layer))
      const seen = yield* fwd.status.pipe(
        Stream.map((s) => s._tag === "Reconnecting" ? `Reconnecting#${s.attempt}` : s._tag),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Deferred.succeed(die, undefined)
      assert.deepStrictEqual(yield* Fiber.join(seen), ["Ready", "Reconnecting#1", "Failed"])
      const status = yield* fwd.currentStatus
      assert.isTrue(status._tag === "Failed" && status.error._tag === "Forbidden")
    }))

  it.effect("Ready after a reconnect shows the target port the new attempt reached, and so do the forward's ports", () =>
    Effect.gen(function*() {
      const die = yield* Deferred.make<void>()
      const k = scripted((_, i) =>
        i === 0
          ? {
            output: ["Forwarding from 127.0.0.1:43230 -> 80"],
            exit: exitsWhen(die)
          }
          : { output: ["Forwarding from 127.0.0.1:43230 -> 8080"] }
      )
      const fwd = yield* PortForward.make({
        target: "svc/web",
        ports: [80],
        verify: false,
        reconnect: Schedule.recurs(1)
      })
        .pipe(Effect.provide(k.layer))
      assert.deepStrictEqual(fwd.ports.map((p) => p.targetPort), [80])
      const ready = yield* fwd.status.pipe(
        Stream.filter((s) => s._tag === "Ready"),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Deferred.succeed(die, undefined)
      const [, again] = yield* Fiber.join(ready)
      assert.deepStrictEqual(again._tag === "Ready" ? again.ports.map((p) => [p.local, p.targetPort]) : [], [[
        43230,
        8080
      ]])
      assert.deepStrictEqual(fwd.ports.map((p) => [p.local, p.targetPort]), [[43230, 8080]])
    }))

  it.effect("isOpen is false from the moment closing begins", () =>
    Effect.gen(function*() {
      const killing = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const layer = PortForward.layerWith(
        Kubectl.layerTest(() => ({
          output: [forwarding(43240, 80)],
          onKill: Deferred.succeed(killing, undefined).pipe(Effect.andThen(Deferred.await(release)))
        }))
      )
      const fwd = yield* PortForward.make({ target: "pod/web", ports: [80], verify: false }).pipe(Effect.provide(layer))
      const closing = yield* fwd.close.pipe(Effect.forkChild({ startImmediately: true }))
      yield* Deferred.await(killing)
      assert.isFalse(yield* fwd.isOpen, "closing has begun")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(closing)
      assert.strictEqual((yield* fwd.currentStatus)._tag, "Closed")
    }))

  it.effect("a port the OS chose that kubectl finds taken is retried (it is dynamic, whoever chose it)", () =>
    Effect.gen(function*() {
      const k = scripted((_, i) =>
        i === 0
          ? {
            output: [
              "Forwarding from 127.0.0.1:43250 -> 80",
              stderr(
                "Unable to listen on port 43250: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp6 [::1]:43250: bind: address already in use]"
              )
            ],
            exit: { exitCode: 1, signal: null }
          }
          : { output: ["Forwarding from 127.0.0.1:43251 -> 80", "Forwarding from [::1]:43251 -> 80"] }
      )
      const fwd = yield* PortForward.make({
        target: "pod/web",
        ports: [80],
        address: ["127.0.0.1", "::1"],
        verify: false,
        retry: Schedule.recurs(3)
      }).pipe(Effect.provide(k.layer))
      assert.strictEqual(k.spawns.length, 2)
      assert.strictEqual(fwd.localPort, 43251)
    }))
})
