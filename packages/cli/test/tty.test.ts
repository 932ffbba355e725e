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
      const env = Object.entries(cluster.env).flatMap(([k, v]) => ["-e", `${k}=${v}`])
      // the exit status is kept by a shell around the command (which leaves Ctrl-C to it, as a
      // person's shell does): tmux does not always reap a pane's process in time to report it
      const exitFile = Path.join(dir, "exit-status")
      const shell = `trap '' INT; "$@"; echo $? > '${exitFile}'`
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
        dir,
        "/bin/sh",
        "-c",
        shell,
        "sh",
        process.execPath,
        bin,
        "up"
      )

      const first = yield* awaitScreen(t, "both rows Ready", (s) =>
        /Ready/.test(rowOf(s, "web")) && /Ready/.test(rowOf(s, "db")) && s.includes("Ctrl-C to stop"))
      assert.match(first.split("\n")[0], /^NAME +TARGET +LOCAL → REMOTE +STATE +RECONNECTS +SINCE/)
      assert.match(rowOf(first, "db"), /^db +pod\/db -n shop +\d+→5432 +Ready +0 /)
      const port = Number(/(\d+)→7000/.exec(rowOf(first, "web"))![1])
      for (const line of first.split("\n")) {
        assert.isAtMost([...line].length, WIDTH, line)
      }
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
      assert.strictEqual(
        back.split("\n").filter((l) => l.startsWith("NAME")).length,
        1,
        "redrawn in place, not scrolled"
      )
      assert.strictEqual(Processes.portForwards(cluster.kubeconfigPath).length, 2)

      t.run("send-keys", "-t", "kf", "C-c")
      const last = yield* awaitScreen(
        t,
        "the command's exit",
        () => Fs.existsSync(exitFile) && Fs.readFileSync(exitFile, "utf8").endsWith("\n")
      )
      assert.strictEqual(Fs.readFileSync(exitFile, "utf8"), "0\n", "exit status 0")
      assert.match(rowOf(last, "web"), /Closed/)
      assert.match(rowOf(last, "db"), /Closed/)
      assert.deepStrictEqual(Processes.portForwards(cluster.kubeconfigPath), [])
      assert.isTrue(yield* allBindable([port]))
    }), 60_000)
})
