import { assert, describe, it } from "@effect/vitest"
import { PortAllocator } from "@kube-forward/core"
import { Effect, Exit, Scope } from "effect"
import * as Net from "node:net"

/** A free block of `n` consecutive ports (checked now), as the start port. */
const freeBlock = (n: number) =>
  Effect.gen(function*() {
    for (let start = 42000; start < 60000; start += n) {
      let ok = true
      for (let p = start; p < start + n && ok; p++) ok = yield* PortAllocator.isFree(p, "127.0.0.1")
      if (ok) return start
    }
    return yield* Effect.die("no free block")
  })

const hold = (port: number, host = "127.0.0.1") =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer().listen(port, host, () => {
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )

describe("PortAllocator", () => {
  it.live("the default layer lets the OS choose (0)", () =>
    Effect.gen(function*() {
      const allocator = yield* PortAllocator.PortAllocator
      assert.strictEqual(yield* Effect.scoped(allocator.allocate(["127.0.0.1"])), 0)
    }).pipe(Effect.provide(PortAllocator.layer)))

  it.live("layerRange checks every address of the forward (a port taken on ::1 only is skipped)", () =>
    Effect.gen(function*() {
      const from = yield* freeBlock(2)
      const allocator = yield* PortAllocator.PortAllocator.pipe(
        Effect.provide(PortAllocator.layerRange({ from, to: from + 1 }))
      )
      yield* hold(from, "::1")
      assert.strictEqual(yield* Effect.scoped(allocator.allocate(["127.0.0.1"])), from)
      assert.strictEqual(yield* Effect.scoped(allocator.allocate(["127.0.0.1", "::1"])), from + 1)
      assert.isTrue(yield* PortAllocator.isFree(from, "localhost"), "localhost needs only one of its two addresses")
      assert.isFalse(yield* PortAllocator.isFree(from, "::1"))
    }))

  it.live("isFree is false only for a port in use, not for an address that is not local", () =>
    Effect.gen(function*() {
      const port = yield* freeBlock(1)
      assert.isTrue(yield* PortAllocator.isFree(port, "192.0.2.123"))
    }))

  it.live("isFree tells a bound port from a free one", () =>
    Effect.gen(function*() {
      const start = yield* freeBlock(1)
      assert.isTrue(yield* PortAllocator.isFree(start, "127.0.0.1"))
      yield* hold(start)
      assert.isFalse(yield* PortAllocator.isFree(start, "127.0.0.1"))
    }))

  it.live("layerRange hands out the lowest free port, skips taken ones, gives ports back on release", () =>
    Effect.gen(function*() {
      const from = yield* freeBlock(4)
      const allocator = yield* PortAllocator.PortAllocator.pipe(
        Effect.provide(PortAllocator.layerRange({ from, to: from + 3 }))
      )
      yield* hold(from + 1) // someone else holds the second port
      const a = yield* Scope.make()
      const b = yield* Scope.make()
      const first = yield* allocator.allocate(["127.0.0.1"]).pipe(Scope.provide(a))
      const second = yield* allocator.allocate(["127.0.0.1"]).pipe(Scope.provide(b))
      assert.deepStrictEqual([first, second], [from, from + 2])
      const concurrent = yield* Effect.all(
        [allocator.allocate(["127.0.0.1"]), allocator.allocate(["127.0.0.1"])],
        { concurrency: 2 }
      ).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(concurrent._tag, "PortsExhausted", "only one port was left for two concurrent claims")
      yield* Scope.close(a, Exit.void)
      const again = yield* Effect.scoped(allocator.allocate(["127.0.0.1"]))
      assert.strictEqual(again, from, "a released port is handed out again")
      const exhausted = yield* Effect.flip(
        Effect.scoped(Effect.all(Array.from({ length: 3 }, () => allocator.allocate(["127.0.0.1"]))))
      )
      assert.strictEqual(exhausted.message, `no free local port in ${from}-${from + 3} on 127.0.0.1`)
    }))
})
