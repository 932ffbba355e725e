/**
 * The `kube-forward` command, run as a child process against the fake cluster with real
 * kubectl: kubectl's syntax, a config file with several forwards and namespaces, JSON events
 * through a pod restart, forwards that fail for good, and what SIGINT, SIGTERM, SIGKILL and a
 * second signal leave behind (nothing: no kubectl, every port free).
 */
import { assert, layer } from "@effect/vitest"
import { Child, Processes, TcpClient } from "@kube-forward/testkit"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import {
  allBindable,
  bin,
  Cluster,
  clusterLayer,
  echoPod,
  freePort,
  kubeForward,
  readyPorts
} from "./support/cluster.ts"

const Env = clusterLayer({
  pods: [
    echoPod("one", { portName: "echo" }),
    echoPod("api"),
    echoPod("db", { namespace: "shop", port: 5432 }),
    echoPod("cache-0", { namespace: "shop", port: 6379 }),
    echoPod("restart-me"),
    echoPod("lose-me"),
    echoPod("sig-0"),
    echoPod("sig-1"),
    echoPod("pipe"),
    echoPod("full"),
    echoPod("quiet")
  ],
  services: [{ name: "cache", namespace: "shop", selector: { app: "cache-0" }, ports: [{ port: 6379 }] }]
})

layer(Env, { timeout: 60_000, excludeTestServices: true })("kube-forward", (it) => {
  it.effect("kubectl's syntax: fixed, free and named ports through one forward; SIGINT closes it, exit 0", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const fixed = yield* freePort
      const child = yield* kubeForward(["one", `${fixed}:7000`, ":7000", "echo"], { env: t.env })
      const ready = yield* child.awaitLine(/^one: Ready /, "stdout")
      yield* child.awaitLine(/^all 1 forward ready$/, "stdout")
      const ports = readyPorts(ready.input)
      assert.strictEqual(ports.length, 3, ready.input)
      assert.strictEqual(ports[0], fixed)
      assert.match(ready.input, / -> 7000, .* -> 7000, .* -> echo \(one\)$/)
      for (const port of ports) {
        assert.strictEqual(String(yield* TcpClient.roundTrip(port, `via ${port}`)), `via ${port}`)
      }
      assert.strictEqual(t.leftovers().length, 1, "one kubectl for the three ports")
      yield* child.kill("SIGINT")
      assert.deepStrictEqual(yield* child.awaitExit, { code: 0, signal: null })
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* allBindable(ports))
      assert.strictEqual(child.lines("stdout").at(-1), "one: Closed")
    }))

  it.effect("--backend native: the same forward without kubectl; SIGINT closes it, exit 0", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const child = yield* kubeForward(["--backend", "native", "one", ":7000", "echo"], { env: t.env })
      const ready = yield* child.awaitLine(/^one: Ready /, "stdout")
      yield* child.awaitLine(/^all 1 forward ready$/, "stdout")
      const ports = readyPorts(ready.input)
      assert.strictEqual(ports.length, 2, ready.input)
      for (const port of ports) {
        assert.strictEqual(String(yield* TcpClient.roundTrip(port, `native ${port}`)), `native ${port}`)
      }
      assert.deepStrictEqual(t.leftovers(), [], "no kubectl was started")
      yield* child.kill("SIGINT")
      assert.deepStrictEqual(yield* child.awaitExit, { code: 0, signal: null })
      assert.isTrue(yield* allBindable(ports))
    }))

  it.effect("up: three forwards in two namespaces, --ports-file, SIGTERM closes them all, exit 0", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const config = Path.join(t.dir, "three.yaml")
      const portsFile = Path.join(t.dir, "ports.json")
      Fs.writeFileSync(
        config,
        [
          "defaults:",
          "  namespace: shop",
          "forwards:",
          "  api:",
          "    target: pod/api",
          "    namespace: default",
          "    ports: [\":7000\"]",
          "  db:",
          "    target: pod/db",
          "    ports: [\":5432\"]",
          "  cache:",
          "    target: svc/cache",
          "    ports: [\":6379\"]",
          ""
        ].join("\n")
      )
      const child = yield* kubeForward(["up", "-f", config, "--ports-file", portsFile], { env: t.env })
      yield* child.awaitLine(/^all 3 forwards ready$/, "stdout")
      const written = JSON.parse(Fs.readFileSync(portsFile, "utf8")) as {
        forwards: Array<
          { name: string; target: string; namespace: string; ports: Array<{ local: number; remote: number }> }
        >
      }
      assert.deepStrictEqual(
        written.forwards.map((f) => [f.name, f.target, f.namespace, f.ports.map((p) => p.remote)]),
        [["api", "pod/api", "default", [7000]], ["db", "pod/db", "shop", [5432]], ["cache", "svc/cache", "shop", [
          6379
        ]]]
      )
      const ports = written.forwards.map((f) => f.ports[0].local)
      for (const [i, port] of ports.entries()) {
        assert.strictEqual(String(yield* TcpClient.roundTrip(port, `to ${i}`)), `to ${i}`)
      }
      assert.strictEqual(t.leftovers().length, 3)
      yield* child.kill("SIGTERM")
      assert.deepStrictEqual(yield* child.awaitExit, { code: 0, signal: null })
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* allBindable(ports))
      assert.isFalse(Fs.existsSync(portsFile), "the ports file is removed with the forwards")
    }))

  it.effect("--json: Ready → Reconnecting → Ready through a pod restart, on the same local port", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const child = yield* kubeForward(["pod/restart-me", ":7000", "--json"], { env: t.env })
      yield* child.awaitLine(/"event":"ready"/, "stdout")
      const events = () => child.lines("stdout").map((l) => JSON.parse(l) as Record<string, any>)
      const port = events().find((e) => e.event === "ready")!.forwards[0].ports[0].local as number
      yield* t.cluster.restartPod("default", "restart-me", { downFor: "300 millis" })
      yield* child.awaitLine(/"state":"Ready".*"reconnects":1/, "stdout")
      const states = events().filter((e) => e.event === "status").map((e) => e.state as string)
      assert.deepStrictEqual(states.filter((s, i) => s !== states[i - 1]), [
        "Starting",
        "Ready",
        "Reconnecting",
        "Ready"
      ])
      const reconnecting = events().find((e) => e.state === "Reconnecting")!
      assert.strictEqual(reconnecting.error.tag, "ForwardLost")
      const again = events().filter((e) => e.state === "Ready").at(-1)!
      assert.strictEqual(again.ports[0].local, port, "back on the same local port")
      assert.strictEqual(String(yield* TcpClient.roundTrip(port, "after restart")), "after restart")
      yield* child.kill("SIGINT")
      assert.strictEqual((yield* child.awaitExit).code, 0)
      assert.deepInclude(events().at(-1), { event: "exit", code: 0, reason: "stopped" })
      assert.strictEqual(events().at(-2)!.state, "Closed")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("a forward that cannot start fails the run with exit code 3, and so does one lost for good", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const missing = yield* kubeForward(["pod/missing", ":7000"], { env: t.env })
      assert.strictEqual((yield* missing.awaitExit).code, 3)
      assert.include(missing.text("stderr"), "kube-forward: forward \"missing\" failed: pod/missing not found")
      assert.include(missing.lines("stdout").join("\n"), "missing: Failed: pod/missing not found")
      const lost = yield* kubeForward(["pod/lose-me", ":7000", "--no-reconnect"], { env: t.env })
      yield* lost.awaitLine(/^all 1 forward ready$/, "stdout")
      yield* t.cluster.restartPod("default", "lose-me")
      assert.strictEqual((yield* lost.awaitExit).code, 3)
      assert.match(lost.text("stderr"), /forward "lose-me" failed: .*pod\/lose-me/)
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("SIGKILL: the command's kubectl processes end with it and the ports are free", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const baseline = (yield* t.cluster.counters).activeSessions
      const child = yield* kubeForward(["pod/sig-0", ":7000", ":7000"], { env: t.env })
      const ports = readyPorts((yield* child.awaitLine(/^sig-0: Ready /, "stdout")).input)
      yield* child.awaitLine(/^all 1 forward ready$/, "stdout")
      const pids = t.leftovers().map((p) => p.pid)
      assert.strictEqual(pids.length, 1)
      yield* child.kill("SIGKILL")
      assert.strictEqual((yield* child.awaitExit).signal, "SIGKILL")
      // the event: the API server sees kubectl's connection close as the watchdog ends it
      yield* t.cluster.awaitCounters((c) => c.activeSessions === baseline).pipe(Effect.timeout("10 seconds"))
      assert.deepStrictEqual(yield* Processes.awaitExit(pids), [])
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* allBindable(ports))
    }))

  it.effect("a second signal quits at once (128 + n), and the watchdog still leaves nothing behind", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      // a kubectl whose process group ignores SIGTERM, so the first close takes its kill grace
      const wrapper = Path.join(t.dir, "stubborn-kubectl")
      Fs.writeFileSync(wrapper, `#!/bin/sh\ntrap '' TERM\nkubectl "$@"\nsleep 30\n`, { mode: 0o755 })
      const child = yield* kubeForward(["pod/sig-1", ":7000"], {
        env: { ...t.env, KUBE_FORWARD_KUBECTL: wrapper, KUBE_FORWARD_KILL_GRACE: "20 seconds" }
      })
      const ports = readyPorts((yield* child.awaitLine(/^sig-1: Ready /, "stdout")).input)
      const group = Processes.live(wrapper)[0].pgid
      yield* child.kill("SIGTERM")
      yield* child.awaitLine(/^kube-forward: stopping…/, "stdout")
      yield* child.kill("SIGTERM")
      assert.deepStrictEqual(yield* child.awaitExit.pipe(Effect.timeout("5 seconds")), { code: 143, signal: null })
      const members = Processes.group(group).map((p) => p.pid)
      assert.deepStrictEqual(
        yield* Processes.awaitExit(members, { within: "5 seconds" }),
        [],
        "the watchdog ended the group"
      )
      assert.deepStrictEqual(t.leftovers(), [])
      assert.isTrue(yield* allBindable(ports))
    }))
})

layer(Env, { timeout: 60_000, excludeTestServices: true })("kube-forward: output that cannot be written", (it) => {
  it.effect("a ports file that cannot be written after all: a message naming it, exit 4, the forwards closed", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      // its directory is writable (so the check up front passes), but the path is a directory
      const portsFile = Path.join(t.dir, "taken")
      Fs.mkdirSync(Path.join(portsFile, "inside"), { recursive: true })
      const child = yield* kubeForward(["pod/api", ":7000", "--ports-file", portsFile], { env: t.env })
      assert.deepStrictEqual(yield* child.awaitExit, { code: 4, signal: null })
      const said = child.text("stderr")
      assert.match(said, new RegExp(`^kube-forward: cannot write the ports file ${portsFile}: `, "m"), said)
      assert.notInclude(said, "    at ", "no stack trace")
      assert.strictEqual(child.lines("stdout").at(-1), "api: Closed")
      assert.deepStrictEqual(Fs.readdirSync(t.dir).filter((f) => f.endsWith(".tmp")), [], "no temporary file left")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("a closed stdout (| head -1): no crash; taken as a stop, the forwards closed, exit 0", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      // kube-forward with its stdout a pipe whose reading end is closed once every forward is ready
      const reader = `
        const { spawn } = require("node:child_process")
        const kf = spawn(process.execPath, process.argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] })
        let seen = ""
        kf.stdout.on("data", (d) => {
          seen += d
          if (seen.includes("all 1 forward ready\\n") && !kf.stdout.destroyed) {
            kf.stdout.destroy()
            console.log("closed")
          }
        })
        kf.on("exit", (code, signal) => console.log("exit " + code + " " + signal))
      `
      const child = yield* Child.spawn(process.execPath, ["-e", reader, bin, "pod/pipe", ":7000"], { env: t.env })
      yield* child.awaitLine(/^closed$/, "stdout")
      // something to write: the pod restarts, the forward reconnects
      yield* t.cluster.restartPod("default", "pipe", { downFor: "300 millis" })
      const [line] = yield* child.awaitLine(/^exit .*$/, "stdout")
      assert.strictEqual(line, "exit 0 null", child.text("stderr"))
      assert.notInclude(child.text("stderr"), "EPIPE")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("stdout that fails otherwise (/dev/full, ENOSPC): said on stderr, the forwards closed, exit 1", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      const child = yield* Child.spawn(
        "sh",
        ["-c", "exec \"$@\" > /dev/full", "sh", process.execPath, bin, "pod/full", ":7000"],
        { env: t.env }
      )
      assert.deepStrictEqual(yield* child.awaitExit, { code: 1, signal: null }, child.text("stderr"))
      assert.match(child.text("stderr"), /^kube-forward: cannot write to stdout: .*\(ENOSPC\)$/m)
      assert.notInclude(child.text("stderr"), "    at ", "no stack trace")
      assert.deepStrictEqual(t.leftovers(), [])
    }))

  it.effect("--json with stderr closed: the notes are not written, no crash, the run ends with its exit event", () =>
    Effect.gen(function*() {
      const t = yield* Cluster
      // kube-forward with its stderr a pipe closed at once; on "ready" it gets SIGTERM (a note)
      const reader = `
        const { spawn } = require("node:child_process")
        const kf = spawn(process.execPath, process.argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] })
        kf.stderr.destroy()
        let seen = ""
        kf.stdout.on("data", (d) => {
          seen += d
          if (seen.includes('"event":"ready"') && !seen.includes("TERM")) {
            seen += "TERM"
            kf.kill("SIGTERM")
          }
        })
        kf.on("exit", (code, signal) => {
          console.log(seen.trim().split("\\n").filter((l) => l.startsWith("{")).at(-1))
          console.log("exit " + code + " " + signal)
        })
      `
      const child = yield* Child.spawn(process.execPath, ["-e", reader, bin, "pod/quiet", ":7000", "--json"], {
        env: t.env
      })
      const [line] = yield* child.awaitLine(/^exit .*$/, "stdout")
      assert.strictEqual(line, "exit 0 null", child.text("stdout"))
      assert.deepInclude(JSON.parse(child.lines("stdout").at(-2)!), { event: "exit", code: 0 })
      assert.deepStrictEqual(t.leftovers(), [])
    }))
})
