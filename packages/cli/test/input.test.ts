/**
 * Bad input to the real command: each case gets a message that says what is wrong and where,
 * exit code 2, and nothing is spawned (kubectl is a wrapper here that leaves a mark when run,
 * and the suite checks that a good command does leave it).
 */
import { assert, describe, it } from "@effect/vitest"
import { FakeCluster } from "@kube-forward/testkit"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { echoPod, kubeForward, tempDir } from "./support/cluster.ts"

/** A file whose shape is wrong (line numbers on the right). */
const SHAPE = [
  "forwards:", //                         1
  "  web:", //                            2
  "    target: pod/web", //               3
  "    namspace: shop", //                4  (a typo)
  "    ports: [\"8080:80\"]", //          5
  "  db:", //                             6
  "    target: pod/db", //                7
  "    ports: [\":5432\"]", //            8
  "    readyTimeout: soon", //            9
  ""
].join("\n")

/** A file of the right shape with values the spec rejects. */
const VALUES = [
  "defaults:", //                         1
  "  namespace: Shop", //                 2
  "forwards:", //                         3
  "  db:", //                             4
  "    target: pod/DB", //                5
  "    ports:", //                        6
  "      - 70000", //                     7
  "      - \"5432:\"", //                 8
  "      - { local: 0, remote: http }", // 9
  ""
].join("\n")

/** [arguments, what stderr must include (each), environment variables added], in the config directory */
const cases: ReadonlyArray<
  readonly [ReadonlyArray<string>, ReadonlyArray<string>, Record<string, string>?]
> = [
  // every problem of a command line at once
  [["pod/Web", "99999:80", "8080:", "abc:80", "-n", "Bad_NS", "--ready-timeout", "soon", "--address", "example.com"], [
    "PORT \"99999:80\": 99999 is not a port number",
    "PORT \"8080:\" has no remote port",
    "PORT \"abc:80\" has a local port \"abc\" that is not a number",
    "TARGET \"pod/Web\": \"Web\" is not a valid Kubernetes name",
    "--namespace: \"Bad_NS\" is not a valid namespace",
    "--ready-timeout: \"soon\" is not a duration",
    "--address: \"example.com\" is not an IP address"
  ]],
  [["pod/web", "80", "--bogus"], ["kube-forward: Unrecognized flag: --bogus"]],
  [["pod/web"], ["Missing required argument: PORT"]],
  [["pod/web", "80", "--backend", "pigeon"], [
    "Invalid value for flag --backend: \"pigeon\". Expected: \"kubectl\" | \"native\""
  ]],
  [["pod/web", "80", "--", "curl", "{nope.port}", "{port.81}"], [
    "{nope.port} names no forward (forwards: web)",
    "{port.81}: forward \"web\" has no remote port 81 (it has 80)"
  ]],
  [["pod/web", "80", "--"], ["nothing after --"]],
  [["up", "-f", "shape.yaml"], [
    "shape.yaml:4: forward \"web\": namspace: unknown field (a typo? known here: target, ports, namespace",
    "shape.yaml:9: forward \"db\": readyTimeout: \"soon\" is not a duration"
  ]],
  [["up", "-f", "values.yaml"], [
    "values.yaml:5: forward \"db\": target: \"DB\" is not a valid Kubernetes name",
    "values.yaml:2: defaults.namespace (used by forward \"db\"): \"Shop\" is not a valid namespace",
    "values.yaml:7: forward \"db\": ports[0]: 70000 is not a port number",
    "values.yaml:8: forward \"db\": ports[1]: \"5432:\" has no remote port",
    "values.yaml:9: forward \"db\": ports[2]: 0 is not a port number"
  ]],
  [["up", "-f", "broken.yaml"], ["broken.yaml:3:1: Flow sequence in block collection must be sufficiently indented"]],
  [["up", "-f", "missing.yaml"], ["cannot read missing.yaml: ENOENT"]],
  [["up"], ["no config file: give one with -f FILE"]],
  // a ports file that could never be written: said before anything starts
  [["pod/web", "80", "--ports-file", "/nonexistent-kf-dir/ports.json"], [
    "--ports-file \"/nonexistent-kf-dir/ports.json\": the directory /nonexistent-kf-dir does not exist"
  ]],
  // two names, one set of variables
  [["up", "-f", "twins.yaml", "--", "env"], [
    "forwards \"db-main\" and \"db_main\" would both be KUBE_FORWARD_DB_MAIN_* in the command's environment"
  ]],
  // the command's own duration syntax in the hint, not the library's
  [["pod/web", "80", "--ready-timeout", "0s"], [
    "--ready-timeout: must be more than 0 (write e.g. 5s, 1m30s or 500ms)"
  ]],
  // environment variables: the variable, its value and what it may be
  [["pod/web", "80"], ["KUBE_FORWARD_BACKEND=\"pigeon\" is not a backend (choices: kubectl, native)"], {
    KUBE_FORWARD_BACKEND: "pigeon"
  }],
  [["pod/web", "80"], [
    "KUBE_FORWARD_KILL_GRACE=\"soon\" is not valid: expected a duration such as \"2 seconds\" or \"500 millis\""
  ], { KUBE_FORWARD_KILL_GRACE: "soon" }]
]

describe("bad input", () => {
  it.live(
    `${cases.length} cases: a message naming what and where, exit code 2, nothing spawned`,
    () =>
      Effect.gen(function*() {
        const cluster = yield* FakeCluster.make({ pods: [echoPod("web")] })
        const dir = yield* tempDir
        const marker = Path.join(dir, "kubectl-ran")
        const kubectl = Path.join(dir, "kubectl")
        Fs.writeFileSync(kubectl, `#!/bin/sh\ntouch '${marker}'\nexec kubectl "$@"\n`, { mode: 0o755 })
        Fs.writeFileSync(Path.join(dir, "shape.yaml"), SHAPE)
        Fs.writeFileSync(Path.join(dir, "values.yaml"), VALUES)
        Fs.writeFileSync(Path.join(dir, "broken.yaml"), "forwards:\n  web: [unclosed\n")
        Fs.writeFileSync(
          Path.join(dir, "twins.yaml"),
          "forwards:\n  db-main: { target: pod/web, ports: [\":7000\"] }\n  db_main: { target: pod/web, ports: [\":7000\"] }\n"
        )
        const env = { ...cluster.env, KUBE_FORWARD_KUBECTL: kubectl }
        yield* Effect.forEach(cases, ([args, expected, extra]) =>
          Effect.scoped(Effect.gen(function*() {
            const child = yield* kubeForward(args, { env: { ...env, ...extra }, cwd: dir })
            const exit = yield* child.awaitExit
            const said = child.text("stderr")
            assert.deepStrictEqual(exit, { code: 2, signal: null }, `${args.join(" ")}: ${said}`)
            for (const text of expected) assert.include(said, text, args.join(" "))
            assert.notInclude(said, "SchemaError", args.join(" "))
            assert.deepStrictEqual(child.lines("stdout"), [], `${args.join(" ")}: nothing on stdout`)
          })), { concurrency: 4, discard: true })
        assert.isFalse(Fs.existsSync(marker), "no kubectl was started for bad input")
        // the check above can fail: a good command does start the wrapper
        const good = yield* kubeForward(["pod/web", ":7000", "--", "true"], { env, cwd: dir })
        assert.strictEqual((yield* good.awaitExit).code, 0, good.text("stderr"))
        assert.isTrue(Fs.existsSync(marker))
      }),
    60_000
  )
})
