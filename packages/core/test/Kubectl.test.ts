import { assert, describe, it } from "@effect/vitest"
import { Kubectl } from "@kube-forward/core"
import { Child, Processes } from "@kube-forward/testkit"
import { Effect, Exit, Option, Scope, Stream } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** Real kubectl; `kubectl proxy --port=0` runs until killed without any cluster. */
const KUBECTL = execFileSync("sh", ["-c", "command -v kubectl"]).toString().trim()
const env = { KUBECONFIG: "/dev/null" }

const alive = Processes.isAlive
const childrenOf = (pid: number) =>
  Processes.list().filter((p) => p.ppid === pid && Processes.isAlive(p.pid)).map((p) => p.pid)

const inGroup = (pgid: number) => Processes.group(pgid).map((p) => p.args)

/** The suites' kubectl wrapper fixture: starts `KUBE_FORWARD_REAL_KUBECTL` as its child (no exec). */
const kubectlWrapper = Path.join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "kubectl-wrapper.sh")

/** A script of its own in a temp dir standing in for kubectl (`$KUBECTL` is the real one). */
const wrapper = (body: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "kf-wrapper-"))
      const file = Path.join(dir, "kubectl")
      Fs.writeFileSync(file, `#!/bin/sh\n${body.replace("$KUBECTL", JSON.stringify(KUBECTL))}\n`, { mode: 0o755 })
      return { dir, file }
    }),
    ({ dir }) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  ).pipe(Effect.map(({ file }) => file))

const serving = (proc: Kubectl.KubectlProcess) =>
  proc.output.pipe(
    Stream.filter((l) => l.text.startsWith("Starting to serve on")),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

describe("Kubectl.layer (execa)", () => {
  it.live("runs kubectl with an argument array and reads its lines", () =>
    Effect.gen(function*() {
      const kubectl = yield* Kubectl.Kubectl
      const proc = yield* kubectl.spawn(["version", "--client", "-o", "json"])
      const lines = yield* proc.output.pipe(Stream.runCollect)
      const exit = yield* proc.exit
      assert.strictEqual(exit.exitCode, 0)
      const json = JSON.parse(lines.filter((l) => l.stream === "stdout").map((l) => l.text).join("\n"))
      assert.match(json.clientVersion.gitVersion, /^v1\.\d+/)
      assert.deepStrictEqual(yield* proc.exitStatus, Option.some(exit))
    }).pipe(Effect.provide(Kubectl.layer({ env }))))

  it.live("a missing binary is KubectlNotFound", () =>
    Effect.gen(function*() {
      const kubectl = yield* Kubectl.Kubectl
      const error = yield* Effect.flip(kubectl.spawn(["version"]))
      assert.strictEqual(error._tag, "KubectlNotFound")
      assert.include(error.message, "/nonexistent/kubectl")
    }).pipe(Effect.provide(Kubectl.layer({ binary: "/nonexistent/kubectl" }))))

  it.live("closing the scope ends the process", () =>
    Effect.gen(function*() {
      const kubectl = yield* Kubectl.Kubectl
      const scope = yield* Scope.make()
      const proc = yield* kubectl.spawn(["proxy", "--port=0"]).pipe(Scope.provide(scope))
      yield* serving(proc)
      assert.isTrue(alive(proc.pid))
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(alive(proc.pid))
      assert.strictEqual((yield* proc.exit).signal, "SIGTERM")
    }).pipe(Effect.provide(Kubectl.layer({ env }))))

  it.live("kill reaches kubectl started as a child of a wrapper", () =>
    Effect.gen(function*() {
      const kubectl = yield* Kubectl.Kubectl.pipe(
        Effect.provide(Kubectl.layer({ binary: kubectlWrapper, env: { ...env, KUBE_FORWARD_REAL_KUBECTL: KUBECTL } }))
      )
      const proc = yield* kubectl.spawn(["proxy", "--port=0"])
      yield* serving(proc)
      const children = childrenOf(proc.pid)
      assert.strictEqual(children.length, 1, "the wrapper runs the real kubectl as its child")
      yield* proc.kill
      assert.isFalse(alive(proc.pid))
      assert.isFalse(alive(children[0]))
      assert.deepStrictEqual(inGroup(proc.pid), [])
    }))

  it.live("kill returns even when something outside the group keeps kubectl's pipes open", () =>
    Effect.gen(function*() {
      // the wrapper leaves a process in a session of its own holding stdout/stderr, then
      // becomes kubectl; the group kill cannot reach that process
      const marker = 3000 + (process.pid % 997)
      const file = yield* wrapper(`setsid sleep ${marker} &\nexec $KUBECTL "$@"`)
      const kubectl = yield* Kubectl.Kubectl.pipe(Effect.provide(Kubectl.layer({ binary: file, env })))
      const proc = yield* kubectl.spawn(["proxy", "--port=0"])
      yield* serving(proc)
      const holder = Processes.live(`sleep ${marker}`)
      assert.strictEqual(holder.length, 1, "the pipe holder runs")
      yield* Effect.addFinalizer(() => Effect.sync(() => holder.forEach((p) => process.kill(p.pid, "SIGKILL"))))
      const exit = yield* proc.kill.pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(exit.signal, "SIGTERM")
      assert.isFalse(alive(proc.pid))
    }))

  // it.effect runs with a TestClock that nothing advances here: the grace period must run out
  // on the real clock all the same
  it.effect(
    "a tree that ignores SIGTERM gets SIGKILL after the grace period (real clock, even under a TestClock)",
    () =>
      Effect.gen(function*() {
        const file = yield* wrapper(`trap '' TERM\n$KUBECTL "$@" &\nwhile :; do wait; done`)
        const kubectl = yield* Kubectl.Kubectl.pipe(
          Effect.provide(Kubectl.layer({ binary: file, env, killGrace: "300 millis" }))
        )
        const proc = yield* kubectl.spawn(["proxy", "--port=0"])
        yield* serving(proc)
        const exit = yield* proc.kill
        assert.strictEqual(exit.signal, "SIGKILL")
        assert.deepStrictEqual(inGroup(proc.pid), [])
      }),
    { timeout: 20_000 }
  )

  it.live("lines may arrive split: a line longer than the pipe's buffer is handed over whole", () =>
    Effect.gen(function*() {
      // 1 + 2 × 100 000 bytes on one line: more than a pipe holds (64 KiB), so it is read in
      // several chunks, and the odd first byte puts chunk boundaries inside two-byte characters
      const file = yield* wrapper(`printf x; yes é | head -n 100000 | tr -d '\\n'; printf '\\nend\\n'`)
      const kubectl = yield* Kubectl.Kubectl.pipe(Effect.provide(Kubectl.layer({ binary: file, env })))
      const proc = yield* kubectl.spawn([])
      const lines = yield* proc.output.pipe(Stream.runCollect)
      assert.deepStrictEqual(lines.map((l) => [l.stream, l.text.length]), [["stdout", 100_001], ["stdout", 3]])
      assert.isTrue(lines[0].text === "x" + "é".repeat(100_000), "the line arrived whole and decoded")
      assert.strictEqual(lines[1].text, "end")
    }))

  it.live(
    "the watchdog ends kubectl when its owner is killed with SIGKILL, then exits itself",
    () =>
      Effect.gen(function*() {
        const owner = yield* Child.spawn(process.execPath, [
          "--conditions=source",
          Path.join(import.meta.dirname, "fixtures", "owner.ts"),
          KUBECTL,
          "2"
        ])
        yield* owner.awaitLine(/^READY$/, "stdout")
        const started = owner.lines("stdout").flatMap((line) => {
          const m = /^PID (\d+) PORT (\d+)$/.exec(line)
          return m === null ? [] : [{ pid: Number(m[1]), port: Number(m[2]) }]
        })
        assert.strictEqual(started.length, 2)
        // the owner's other child is the watchdog (a /bin/sh loop)
        const watchdogs = Processes.list().filter((p) =>
          p.ppid === owner.pid && alive(p.pid) && !started.some((s) => s.pid === p.pid)
        )
        assert.strictEqual(watchdogs.length, 1, `the owner's children: ${watchdogs.map((p) => p.args).join(" | ")}`)
        assert.match(watchdogs[0].args, /^\/bin\/sh -c/)
        // hold a connection to each kubectl: its closing is the event that the process is gone
        // (the listener is attached at once, so a close that comes early is not missed)
        const closed = yield* Effect.forEach(started, ({ port }) =>
          Effect.callback<Promise<void>>((resume) => {
            const socket = Net.connect({ host: "127.0.0.1", port }, () => {
              const gone = new Promise<void>((done) => socket.once("close", () => done()))
              socket.resume()
              resume(Effect.succeed(gone))
            })
          }).pipe(Effect.map((gone) => Effect.promise(() => gone))))
        for (const { pid } of started) assert.isTrue(alive(pid))
        yield* owner.kill("SIGKILL")
        assert.deepStrictEqual(yield* owner.awaitExit, { code: null, signal: "SIGKILL" })
        const killedAt = Date.now()
        yield* Effect.all(closed, { concurrency: "unbounded" }).pipe(Effect.timeout("10 seconds"))
        const after = Date.now() - killedAt
        // a process closes its sockets early in its exit; give the kernel a moment to finish it
        const remaining = yield* Processes.awaitExit(started.map(({ pid }) => pid))
        assert.deepStrictEqual(remaining, [], "no kubectl outlives its owner")
        assert.isBelow(after, 2000)
        // its work done (SIGTERM, a second's grace, SIGKILL), the watchdog leaves too
        const watchdogLeft = yield* Processes.awaitExit([watchdogs[0].pid], { within: "5 seconds" })
        assert.deepStrictEqual(watchdogLeft, [], "the watchdog outlived its owner")
      }),
    { timeout: 30_000 }
  )
})
