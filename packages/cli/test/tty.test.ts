/**
 * The live table as a person sees it: `kube-forward up` runs in a real terminal (tmux, 100×30),
 * the screen is read with `capture-pane`, a pod restarts, and Ctrl-C is typed with `send-keys`.
 * Every wait polls the screen for the text it expects, within a bound.
 */
import { assert, describe, it } from "@effect/vitest"
import { FakeCluster, Processes } from "@kube-forward/testkit"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { bin } from "./support/cluster.ts"
import { allBindable, echoPod, tempDir } from "./support/cluster.ts"

const WIDTH = 100

/** A tmux server of our own (its own socket), killed at the end of the scope. */
const tmux = (dir: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = `kf-cli-${process.pid}-${Math.random().toString(36).slice(2)}`
      const conf = Path.join(dir, "tmux.conf")
      // keep the pane after the command exits, to read its exit status and its last screen
      Fs.writeFileSync(conf, "set -g remain-on-exit on\n")
      const run = (...args: Array<string>) =>
        execFileSync("tmux", ["-L", socket, "-f", conf, ...args], { encoding: "utf8" })
      return { run, socket }
    }),
    ({ run }) => Effect.sync(() => run("kill-server"))
  )

type Tmux = Effect.Success<ReturnType<typeof tmux>>

const screen = (t: Tmux, colours = false) => t.run("capture-pane", "-p", ...(colours ? ["-e"] : []), "-t", "kf")

/** Polls the screen (every 50 ms) until `check` holds, at most `within` ms. */
const awaitScreen = (t: Tmux, what: string, check: (text: string) => boolean, within = 30_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + within
    let text = screen(t)
    while (!check(text)) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`screen never showed ${what}:\n${text}`))
      yield* Effect.sleep("50 millis")
      text = screen(t)
    }
    return text
  })

/**
 * Runs `command` in a new 100×30 pane of `t` (session "kf") in `dir`, with `env`; its exit
 * status is written to the returned file by a shell around it (which leaves Ctrl-C to it, as a
 * person's shell does: tmux does not always reap a pane's process in time to report it).
 * `stdin` redirects the command's stdin (`/dev/null`: not a terminal).
 */
const runInPane = (
  t: Tmux,
  options: { readonly dir: string; readonly env: Record<string, string>; readonly stdin?: string },
  ...command: ReadonlyArray<string>
) => {
  const exitFile = Path.join(options.dir, "exit-status")
  const redirect = options.stdin === undefined ? "" : ` < '${options.stdin}'`
  const shell = `trap '' INT; "$@"${redirect}; echo $? > '${exitFile}'`
  const env = Object.entries(options.env).flatMap(([k, v]) => ["-e", `${k}=${v}`])
  t.run(
    "new-session",
    "-d",
    "-s",
    "kf",
    "-x",
    String(WIDTH),
    "-y",
    "30",
    ...env,
    "-c",
    options.dir,
    "/bin/sh",
    "-c",
    shell,
    "sh",
    ...command
  )
  return exitFile
}

/** The live processes under the pane's shell (this test's own, whatever else runs). */
const inPane = (t: Tmux) => {
  const under = new Set(Processes.descendants(Number(t.run("display-message", "-p", "-t", "kf", "#{pane_pid}"))))
  return Processes.list().filter((p) => under.has(p.pid))
}

/** kube-forward in the pane (the one process there that runs our binary with Node). */
const kubeForwardIn = (t: Tmux) => {
  const [self] = inPane(t).filter((p) => p.args.startsWith(`${process.execPath} ${bin}`))
  assert.isDefined(self, "kube-forward runs in the pane")
  return self
}

/**
 * The pids of the processes in the pane whose command line is `args`, once there is one (a
 * shell prints before it forks the next command: polled every 20 ms, within 10 s).
 */
const awaitInPane = (t: Tmux, args: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    let found = inPane(t).filter((p) => p.args === args).map((p) => p.pid)
    while (found.length === 0) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`no ${args} in the pane`))
      yield* Effect.sleep("20 millis")
      found = inPane(t).filter((p) => p.args === args).map((p) => p.pid)
    }
    return found
  })

/** The exit status written by {@link runInPane}'s shell, once it is there. */
const awaitExitStatus = (t: Tmux, exitFile: string) =>
  awaitScreen(
    t,
    "the command's exit",
    () => Fs.existsSync(exitFile) && Fs.readFileSync(exitFile, "utf8").endsWith("\n")
  )
    .pipe(Effect.map(() => Fs.readFileSync(exitFile, "utf8")))

/** Nothing on the screen wrapped: `-J` joins a wrapped row into one line, wider than the pane. */
const assertNoWrap = (t: Tmux) => {
  for (const line of t.run("capture-pane", "-p", "-J", "-t", "kf").split("\n")) {
    assert.isAtMost([...line.trimEnd()].length, WIDTH, line)
  }
}

const rowOf = (text: string, name: string) => text.split("\n").find((l) => l.startsWith(`${name} `)) ?? ""

describe("the live table in a terminal", () => {
  it.live("rows redraw in place through a reconnect; Ctrl-C closes everything, exit 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const cluster = yield* FakeCluster.make({
        pods: [echoPod("web"), echoPod("db", { namespace: "shop", port: 5432 })]
      })
      Fs.writeFileSync(
        Path.join(dir, "kube-forward.yaml"),
        "forwards:\n  web: { target: pod/web, ports: [\":7000\"] }\n  db: { target: pod/db, namespace: shop, ports: [\":5432\"] }\n"
      )
      const t = yield* tmux(dir)
      const exitFile = runInPane(t, { dir, env: cluster.env }, process.execPath, bin, "up")

      const first = yield* awaitScreen(t, "both rows Ready", (s) =>
        /Ready/.test(rowOf(s, "web")) && /Ready/.test(rowOf(s, "db")) && s.includes("Ctrl-C to stop"))
      assert.match(first.split("\n")[0], /^NAME +TARGET +LOCAL → REMOTE +STATE +RECONNECTS +SINCE/)
      assert.match(rowOf(first, "db"), /^db +pod\/db -n shop +\d+→5432 +Ready +0 /)
      const port = Number(/(\d+)→7000/.exec(rowOf(first, "web"))![1])
      assertNoWrap(t)
      assert.include(screen(t, true), "\u001b[32m", "colour on a terminal (NO_COLOR is not set)")

      yield* cluster.restartPod("default", "web", { downFor: "1500 millis" })
      yield* awaitScreen(t, "web reconnecting", (s) =>
        /Reconnecting/.test(rowOf(s, "web")))
      const back = yield* awaitScreen(t, "web ready again, one reconnect", (s) =>
        /Ready +1 /.test(rowOf(s, "web")))
      assert.match(
        rowOf(back, "web"),
        new RegExp(`^web +pod/web +${port}→7000 +Ready +1 +\\d+s +.*pod/web`),
        "the last error stays in view"
      )
      assertNoWrap(t) // the last error fills the row to the pane's width now
      assert.strictEqual(
        back.split("\n").filter((l) => l.startsWith("NAME")).length,
        1,
        "redrawn in place, not scrolled"
      )
      assert.strictEqual(Processes.portForwards(cluster.kubeconfigPath).length, 2)

      t.run("send-keys", "-t", "kf", "C-c")
      assert.strictEqual(yield* awaitExitStatus(t, exitFile), "0\n", "exit status 0")
      const last = screen(t)
      assert.match(rowOf(last, "web"), /Closed/)
      assert.match(rowOf(last, "db"), /Closed/)
      assert.deepStrictEqual(Processes.portForwards(cluster.kubeconfigPath), [])
      assert.isTrue(yield* allBindable([port]))
    }), 60_000)
})

/** A command that counts the SIGINTs it gets (as psql, it keeps running) and exits with 3 on the third. */
const COUNTER = `
let n = 0
process.on("SIGINT", () => {
  console.log("INT " + ++n)
  if (n === 3) process.exit(3)
})
console.log("counter " + process.pid)
setInterval(() => {}, 1 << 30)
`

/** `kube-forward pod/web :7000 -- COMMAND…` in a tmux pane, against a fresh cluster with an echo pod. */
const commandInPane = (...command: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const cluster = yield* FakeCluster.make({ pods: [echoPod("web")] })
    const t = yield* tmux(dir)
    const exitFile = runInPane(
      t,
      { dir, env: cluster.env },
      process.execPath,
      bin,
      "pod/web",
      ":7000",
      "--",
      ...command
    )
    return { cluster, t, exitFile }
  })

describe("-- mode under a terminal: a Ctrl-C is the command's, other stop signals are ours", () => {
  it.live(
    "three Ctrl-Cs reach the command once each, none is a stop: it exits by itself, with its code",
    () =>
      Effect.gen(function*() {
        const { cluster, t, exitFile } = yield* commandInPane(process.execPath, "-e", COUNTER)
        yield* awaitScreen(t, "the command", (s) => /counter \d+/.test(s))
        for (const n of [1, 2, 3]) {
          t.run("send-keys", "-t", "kf", "C-c")
          yield* awaitScreen(t, `SIGINT number ${n}`, (s) => s.includes(`INT ${n}`))
        }
        assert.strictEqual(yield* awaitExitStatus(t, exitFile), "3\n", `the command's code:\n${screen(t)}`)
        assert.notInclude(screen(t), "stopping…", "no Ctrl-C was taken as a stop")
        assert.notInclude(screen(t), "INT 4")
        assert.deepStrictEqual(inPane(t), [], "nothing left in the pane")
        assert.deepStrictEqual(
          yield* Processes.awaitExit(Processes.portForwards(cluster.kubeconfigPath).map((p) => p.pid)),
          []
        )
      }),
    60_000
  )

  it.live(
    "Ctrl-C: what the command started in the background and that ignores SIGINT is ended with the run",
    () =>
      Effect.gen(function*() {
        // SIGHUP ignored too: the pane's shell ends the session when it exits, which would end it
        const command = ["sh", "-c", "trap '' HUP; sleep 784 & echo started; wait"]
        const { cluster, t, exitFile } = yield* commandInPane(...command)
        yield* awaitScreen(t, "the command", (s) => s.includes("started"))
        const sleeps = yield* awaitInPane(t, "sleep 784")
        t.run("send-keys", "-t", "kf", "C-c")
        assert.strictEqual(yield* awaitExitStatus(t, exitFile), "130\n", screen(t))
        assert.deepStrictEqual(yield* Processes.awaitExit(sleeps), [], "no sleep 784 left")
        assert.deepStrictEqual(Processes.portForwards(cluster.kubeconfigPath), [])
      }),
    60_000
  )

  it.live(
    "SIGTERM from another shell, twice, to a command that ignores it: quits at once with 143, leaves nothing",
    () =>
      Effect.gen(function*() {
        const command = ["sh", "-c", "trap '' TERM; echo started; sleep 778"]
        const { cluster, t, exitFile } = yield* commandInPane(...command)
        yield* awaitScreen(t, "the command", (s) => s.includes("started"))
        const self = kubeForwardIn(t)
        const sleeps = yield* awaitInPane(t, "sleep 778")
        const kubectl = Processes.portForwards(cluster.kubeconfigPath).map((p) => p.pid)
        process.kill(self.pid, "SIGTERM")
        yield* awaitScreen(t, "the note", (s) => s.includes("stopping…"))
        process.kill(self.pid, "SIGTERM")
        assert.strictEqual(yield* awaitExitStatus(t, exitFile), "143\n", screen(t))
        assert.deepStrictEqual(yield* Processes.awaitExit(sleeps), [], "the command's child is gone")
        assert.deepStrictEqual(
          yield* Processes.awaitExit(kubectl, { within: "5 seconds" }),
          [],
          "the watchdog ended kubectl"
        )
      }),
    60_000
  )
})
