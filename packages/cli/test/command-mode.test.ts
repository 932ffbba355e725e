/**
 * `kube-forward … -- COMMAND ARGS…` as a script uses it: the command runs once the forwards are
 * ready, finds its ports in its environment and its arguments, and its exit code (or the signal
 * that killed it) is the command's; the forwards are closed with nothing left behind.
 */
import { assert, layer } from "@effect/vitest"
import { Processes } from "@kube-forward/testkit"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { allBindable, Cluster, clusterLayer, echoPod, kubeForward } from "./support/cluster.ts"

const Env = clusterLayer({
  pods: [echoPod("run"), echoPod("db", { namespace: "shop", port: 5432, portName: "pg" }), echoPod("lose")]
})

/**
 * The command: a Node script that sends a line through the port in KUBE_FORWARD_PORT, prints
 * what it was given (arguments, the KUBE_FORWARD_* variables, the echo) as one JSON line, and
 * exits with its first argument (or kills itself with SIGKILL when that is "kill").
 */
const script = `
const net = require("node:net")
const [how, ...rest] = process.argv.slice(1)
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("KUBE_FORWARD_")))
const socket = net.connect(Number(process.env.KUBE_FORWARD_PORT), process.env.KUBE_FORWARD_HOST, () => socket.end("hello"))
let echoed = ""
socket.on("data", (d) => (echoed += d))
socket.on("end", () => {
  console.log(JSON.stringify({ args: rest, env, echoed }))
  if (how === "kill") process.kill(process.pid, "SIGKILL")
  else process.exit(Number(how))
})
`

/**
 * The live processes under `pid` (kube-forward) whose command line is `command`: this run's own,
 * whatever else runs on the machine.
 */
const sleepsUnder = (pid: number, command: string) => {
  const under = new Set(Processes.descendants(pid))
  return Processes.live(command).filter((p) => under.has(p.pid) && p.args === command).map((p) => p.pid)
}

/**
 * {@link sleepsUnder}, once there is one: a shell prints before it forks its next command, so
 * it is looked for every 20 ms, within 10 s.
 */
const awaitUnder = (pid: number, command: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    let found = sleepsUnder(pid, command)
    while (found.length === 0) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`no ${command} under ${pid}`))
      yield* Effect.sleep("20 millis")
      found = sleepsUnder(pid, command)
    }
    return found
  })

const run = (how: string, ...args: Array<string>) =>
  Effect.gen(function*() {
    const t = yield* Cluster
    const child = yield* kubeForward(
      ["pod/run", ":7000", "--", process.execPath, "-e", script, how, ...args],
      { env: t.env }
    )
    const exit = yield* child.awaitExit
    const printed = child.lines("stdout").map((l) =>
      JSON.parse(l) as { args: Array<string>; env: Record<string, string>; echoed: string }
    )
    return { exit, printed, child, t }
  })

layer(Env, { timeout: 60_000, excludeTestServices: true })("-- COMMAND", (it) => {
  it.effect("a command that succeeds: ports in its environment and arguments, exit 0, forwards closed", () =>
    Effect.gen(function*() {
      const { child, exit, printed, t } = yield* run("0", "{port}", "http://{host}:{run.port.7000}/x", "{\"a\":1}")
      assert.deepStrictEqual(exit, { code: 0, signal: null }, child.text("stderr"))
      assert.strictEqual(printed.length, 1, "stdout is the command's own")
      const [{ args, echoed, env }] = printed
      const port = env.KUBE_FORWARD_PORT
      assert.match(port, /^\d+$/)
      assert.deepStrictEqual(args, [port, `http://127.0.0.1:${port}/x`, "{\"a\":1}"])
      assert.deepStrictEqual(env, {
        KUBE_FORWARD_HOST: "127.0.0.1",
        KUBE_FORWARD_PORT: port,
        KUBE_FORWARD_PORT_7000: port,
        KUBE_FORWARD_RUN_HOST: "127.0.0.1",
        KUBE_FORWARD_RUN_PORT: port,
        KUBE_FORWARD_RUN_PORT_7000: port
      })
      assert.strictEqual(echoed, "hello", "the forward was ready when the command ran")
      assert.match(child.text("stderr"), /run: Ready 127\.0\.0\.1:\d+ -> 7000/, "our own lines go to stderr")
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* allBindable([Number(port)]))
    }))

  it.effect("a command that fails: its exit code comes back", () =>
    Effect.gen(function*() {
      const { exit, printed, t } = yield* run("7")
      assert.deepStrictEqual(exit, { code: 7, signal: null })
      assert.strictEqual(printed[0].echoed, "hello")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("a command that is killed: 128 + the signal's number (137 for SIGKILL)", () =>
    Effect.gen(function*() {
      const { exit, printed, t } = yield* run("kill")
      assert.deepStrictEqual(exit, { code: 137, signal: null })
      assert.strictEqual(printed[0].echoed, "hello")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("a command that does not exist: 127 and a message naming it, after the forwards were closed again", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const child = yield* kubeForward(["pod/db", ":pg", "-n", "shop", "--", "/nonexistent/kf-command"], { env: t.env })
      assert.deepStrictEqual(yield* child.awaitExit, { code: 127, signal: null })
      const said = child.text("stderr")
      assert.include(said, "db: Ready")
      assert.include(said, "kube-forward: cannot run /nonexistent/kf-command: command not found (ENOENT)")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("a command that is not executable: 126 and a message naming it", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const file = Path.join(t.dir, "not-executable")
      Fs.writeFileSync(file, "#!/bin/sh\necho hi\n", { mode: 0o644 })
      const child = yield* kubeForward(["pod/db", ":pg", "-n", "shop", "--", file], { env: t.env })
      assert.deepStrictEqual(yield* child.awaitExit, { code: 126, signal: null })
      assert.include(child.text("stderr"), `kube-forward: cannot run ${file}: permission denied (EACCES)`)
      assert.deepStrictEqual(t.leftovers(), [])
    }))
})

layer(Env, { timeout: 60_000, excludeTestServices: true })(
  "-- COMMAND: stop signals reach the command and its children",
  (it) => {
    it.effect("SIGTERM reaches the command's own children too: nothing of it is left", () =>
      Effect.gen(function*() {
        const t = yield* Cluster
        const child = yield* kubeForward(["pod/run", ":7000", "--", "sh", "-c", "echo started; sleep 777; echo x"], {
          env: t.env
        })
        yield* child.awaitLine(/^started$/, "stdout")
        const sleeps = yield* awaitUnder(child.pid, "sleep 777")
        assert.strictEqual(sleeps.length, 1, "the command's child runs")
        yield* child.kill("SIGTERM")
        assert.deepStrictEqual(yield* child.awaitExit, { code: 143, signal: null }, child.text("stderr"))
        assert.deepStrictEqual(yield* Processes.awaitExit(sleeps), [], "no sleep 777 left")
        assert.deepStrictEqual(child.lines("stdout"), ["started"])
        assert.deepStrictEqual(t.leftovers(), [])
      }))

    it.effect("a second signal: SIGKILL for the command and its children at once, and --json still ends with exit", () =>
      Effect.gen(function*() {
        const t = yield* Cluster
        // a command, and a child of it, that ignore SIGTERM
        const command = ["sh", "-c", "trap '' TERM; echo started; sleep 779"]
        const child = yield* kubeForward(["pod/run", ":7000", "--json", "--", ...command], { env: t.env })
        yield* child.awaitLine(/^started$/, "stdout")
        const sleeps = yield* awaitUnder(child.pid, "sleep 779")
        assert.strictEqual(sleeps.length, 1)
        yield* child.kill("SIGTERM")
        yield* child.awaitLine(/^kube-forward: stopping…/, "stderr")
        yield* child.kill("SIGTERM")
        assert.deepStrictEqual(yield* child.awaitExit, { code: 143, signal: null })
        const last = JSON.parse(child.lines("stderr").at(-1)!) as Record<string, unknown>
        assert.deepInclude(last, { event: "exit", code: 143 })
        assert.deepStrictEqual(yield* Processes.awaitExit(sleeps), [], "no sleep 779 left")
        const kubectl = t.leftovers().map((p) => p.pid)
        assert.deepStrictEqual(
          yield* Processes.awaitExit(kubectl, { within: "5 seconds" }),
          [],
          "the watchdog ended kubectl"
        )
      }))

    it.effect("a command that exits by itself: what it left running in the background ends with the run", () =>
      Effect.gen(function*() {
        const t = yield* Cluster
        const child = yield* kubeForward(["pod/run", ":7000", "--", "sh", "-c", "sleep 785 & echo started"], {
          env: t.env
        })
        assert.deepStrictEqual(yield* child.awaitExit, { code: 0, signal: null }, child.text("stderr"))
        assert.deepStrictEqual(child.lines("stdout"), ["started"])
        assert.deepStrictEqual(Processes.live("sleep 785").filter((p) => p.pgid === child.pid), [], "no sleep 785 left")
        assert.deepStrictEqual(t.leftovers(), [])
      }))

    it.effect("a second signal while the command's leftovers are awaited: SIGKILL for them, nothing left", () =>
      Effect.gen(function*() {
        const t = yield* Cluster
        // the command exits on SIGTERM; the child it started in the background ignores it
        const command = ["sh", "-c", "(trap '' TERM; exec sleep 781) & echo started; wait"]
        const child = yield* kubeForward(["pod/run", ":7000", "--", ...command], { env: t.env })
        yield* child.awaitLine(/^started$/, "stdout")
        const sleeps = yield* awaitUnder(child.pid, "sleep 781")
        const shell = Processes.list().filter((p) => p.ppid === child.pid && p.args.startsWith("sh -c"))
        assert.strictEqual(shell.length, 1)
        yield* child.kill("SIGTERM")
        assert.deepStrictEqual(yield* Processes.awaitExit([shell[0].pid], { within: "4 seconds" }), [], "sh exited")
        yield* child.kill("SIGTERM")
        assert.deepStrictEqual(yield* child.awaitExit, { code: 143, signal: null }, child.text("stderr"))
        assert.deepStrictEqual(yield* Processes.awaitExit(sleeps), [], "no sleep 781 left")
        assert.deepStrictEqual(
          yield* Processes.awaitExit(t.leftovers().map((p) => p.pid), { within: "5 seconds" }),
          [],
          "the watchdog ended kubectl"
        )
      }))

    it.effect("a forward lost for good: SIGTERM, and what outlives the command gets SIGKILL after the grace", () =>
      Effect.gen(function*() {
        const t = yield* Cluster
        // the command exits on SIGTERM; the child it started in the background ignores it
        const command = ["sh", "-c", "(trap '' TERM; exec sleep 780) & echo started; wait"]
        const child = yield* kubeForward(["pod/lose", ":7000", "--no-reconnect", "--", ...command], { env: t.env })
        yield* child.awaitLine(/^started$/, "stdout")
        const sleeps = yield* awaitUnder(child.pid, "sleep 780")
        assert.strictEqual(sleeps.length, 1)
        yield* t.cluster.restartPod("default", "lose")
        assert.deepStrictEqual(yield* child.awaitExit, { code: 3, signal: null }, child.text("stderr"))
        assert.deepStrictEqual(yield* Processes.awaitExit(sleeps), [], "no sleep 780 left")
        assert.deepStrictEqual(t.leftovers(), [])
      }))
  }
)
