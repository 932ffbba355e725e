/**
 * The pure input side: kubectl's port and duration syntax, the plan of a command line, the
 * config file (merging, paths, messages with lines), and the `--` placeholders and variables.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Result } from "effect"
import * as ChildCommand from "../src/ChildCommand.ts"
import * as ConfigFile from "../src/ConfigFile.ts"
import * as Plan from "../src/Plan.ts"
import * as Syntax from "../src/Syntax.ts"

describe("Syntax", () => {
  it("parses kubectl's port forms", () => {
    const cases: ReadonlyArray<readonly [string, unknown]> = [
      ["8080:80", { local: 8080, remote: 80 }],
      ["80", { local: 80, remote: 80 }],
      [":80", { remote: 80 }],
      ["0:80", { remote: 80 }],
      ["8080:http", { local: 8080, remote: "http" }],
      [":http", { remote: "http" }],
      ["http", { remote: "http" }]
    ]
    for (const [text, expected] of cases) {
      const parsed = Syntax.parsePort(text)
      assert.isTrue(Result.isSuccess(parsed), text)
      assert.deepStrictEqual(Result.getOrUndefined(parsed), expected, text)
    }
  })

  it("rejects what is not port syntax, saying why", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["", "is empty"],
      ["8080:", "has no remote port"],
      ["1:2:3", "more than one \":\""],
      ["x:80", "local port \"x\" that is not a number"],
      ["-1:80", "local port \"-1\" that is not a number"]
    ]
    for (const [text, why] of cases) {
      const parsed = Syntax.parsePort(text)
      assert.isTrue(Result.isFailure(parsed) && parsed.failure.includes(why), `${text}: ${JSON.stringify(parsed)}`)
    }
  })

  it("parses kubectl's durations and splits address lists", () => {
    const ms = (text: string) => Result.map(Syntax.parseDuration(text), Duration.toMillis)
    assert.deepStrictEqual(
      [ms("30s"), ms("1m30s"), ms("500ms"), ms("2h"), ms("1.5s")],
      [30_000, 90_000, 500, 7_200_000, 1500].map(Result.succeed)
    )
    for (const bad of ["", "5", "5 seconds", "s", "-1s", "1d"]) {
      assert.isTrue(Result.isFailure(Syntax.parseDuration(bad)), bad)
    }
    assert.deepStrictEqual(Syntax.splitAddresses(["localhost,10.0.0.1", "::1"]), ["localhost", "10.0.0.1", "::1"])
    assert.strictEqual(Syntax.targetName("svc/web"), "web")
    assert.strictEqual(Syntax.targetName("web-0"), "web-0")
  })
})

const args = (over: Partial<Plan.Arguments>): Plan.Arguments => ({
  target: "svc/web",
  ports: ["8080:80"],
  namespace: undefined,
  context: undefined,
  kubeconfig: undefined,
  address: [],
  readyTimeout: undefined,
  keepalive: undefined,
  reconnect: true,
  ...over
})

describe("Plan.fromArguments", () => {
  it.effect("one forward named after its target, with the flags in its spec", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.fromArguments(
        args({ namespace: "shop", address: ["localhost"], keepalive: "10s", readyTimeout: "5s", reconnect: false })
      )
      assert.strictEqual(plan.forwards.length, 1)
      const [f] = plan.forwards
      assert.strictEqual(f.name, "web")
      assert.isFalse(f.reconnect)
      assert.deepInclude(f.spec, {
        target: "svc/web",
        namespace: "shop",
        address: ["localhost"],
        ports: [{ local: 8080, remote: 80 }]
      })
      assert.strictEqual(Duration.toMillis(f.spec.keepalive!.interval as Duration.Duration), 10_000)
      assert.strictEqual(Duration.toMillis(f.spec.readyTimeout as Duration.Duration), 5000)
    }))

  it.effect("a PORT the spec rejects is named as written, even after one the syntax rejected", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Plan.fromArguments(args({ ports: ["8080:", "99999:80", ":http"] })))
      assert.deepStrictEqual(error.problems, [
        "PORT \"8080:\" has no remote port after \":\" (write LOCAL:REMOTE or :REMOTE)",
        "PORT \"99999:80\": 99999 is not a port number (an integer from 1 to 65535)"
      ])
    }))
})

const parse = (text: string, fallbacks: Partial<ConfigFile.Fallbacks> = {}) =>
  ConfigFile.parse(text, "/etc/kf/forwards.yaml", { reconnect: true, ...fallbacks })

describe("ConfigFile", () => {
  it.effect("a forward's own field wins over defaults, which win over the flags", () =>
    Effect.gen(function*() {
      const plan = yield* parse(
        [
          "defaults: { namespace: shop, readyTimeout: 20s, reconnect: false, kubeconfig: ./kube.yaml }",
          "forwards:",
          "  web: { target: svc/web, ports: [\"8080:80\", 9090, { remote: metrics }], namespace: front }",
          "  db: { target: pod/db-0, ports: [\":5432\"], reconnect: true, keepalive: { interval: 10s, timeout: 2s } }"
        ].join("\n"),
        { namespace: "flag-ns", context: "flag-ctx", keepalive: "30s" }
      )
      const [web, db] = plan.forwards
      assert.deepStrictEqual(plan.forwards.map((f) => f.name), ["web", "db"])
      assert.deepStrictEqual(web.spec.ports, [{ local: 8080, remote: 80 }, { local: 9090, remote: 9090 }, {
        remote: "metrics"
      }])
      assert.deepStrictEqual([web.spec.namespace, db.spec.namespace], ["front", "shop"])
      assert.deepStrictEqual([web.spec.context, web.spec.kubeconfig], ["flag-ctx", "/etc/kf/kube.yaml"])
      assert.deepStrictEqual([web.reconnect, db.reconnect], [false, true])
      assert.strictEqual(
        Duration.toMillis(web.spec.keepalive!.interval as Duration.Duration),
        30_000,
        "the flag fills in"
      )
      assert.strictEqual(Duration.toMillis(db.spec.keepalive!.timeout as Duration.Duration), 2000)
      assert.strictEqual(Duration.toMillis(db.spec.readyTimeout as Duration.Duration), 20_000)
    }))

  it.effect("JSON is read the same way", () =>
    Effect.gen(function*() {
      const plan = yield* parse(JSON.stringify({ forwards: { api: { target: "deploy/api", ports: [":8080"] } } }))
      assert.deepStrictEqual(plan.forwards.map((f) => [f.name, f.target, f.spec.ports]), [["api", "deploy/api", [{
        remote: 8080
      }]]])
    }))

  it.effect("errors name the file and line, the forward and the field", () =>
    Effect.gen(function*() {
      const problems = (text: string) => Effect.flip(parse(text)).pipe(Effect.map((e) => e.problems))
      assert.deepStrictEqual(yield* problems("forwards: {}"), [
        "/etc/kf/forwards.yaml:1: forwards: must list at least one forward"
      ])
      assert.deepStrictEqual(yield* problems("forwards:\n  web:\n    ports: [80]\n"), [
        "/etc/kf/forwards.yaml:3: forward \"web\": target: Missing key"
      ])
      assert.deepStrictEqual(yield* problems("forwards:\n  \"bad name\": { target: pod/x, ports: [80] }\n"), [
        "/etc/kf/forwards.yaml:2: forward \"bad name\": \"bad name\" is not a valid forward name (letters, digits, \"-\" and \"_\", starting and ending with a letter or digit, at most 63 characters)"
      ])
      assert.deepStrictEqual(
        yield* problems("forwards:\n  web:\n    target: pod/x\n    ports: [80]\n    reconnect: maybe\n"),
        [
          "/etc/kf/forwards.yaml:5: forward \"web\": reconnect: Expected boolean, got \"maybe\""
        ]
      )
      assert.deepStrictEqual(
        yield* problems("forwards:\n  a: { target: pod/x, ports: [1] }\n  a: { target: pod/y, ports: [2] }\n"),
        [
          "/etc/kf/forwards.yaml:3:3: Map keys must be unique"
        ]
      )
    }))
})

describe("ChildCommand", () => {
  const plan: Plan.Plan = {
    forwards: [
      {
        name: "web",
        target: "svc/web",
        spec: { target: "svc/web", ports: [{ local: 8080, remote: 80 }, { remote: "metrics" }] },
        reconnect: true,
        where: String
      },
      {
        name: "db-main",
        target: "pod/db",
        spec: { target: "pod/db", ports: [{ remote: 5432 }] },
        reconnect: true,
        where: String
      }
    ]
  }
  const ready: ReadonlyArray<ChildCommand.ReadyForward> = [
    {
      name: "web",
      ports: [{ address: "127.0.0.1", local: 8080, remote: 80, targetPort: 80 }, {
        address: "127.0.0.1",
        local: 41000,
        remote: "metrics",
        targetPort: 9090
      }]
    },
    { name: "db-main", ports: [{ address: "0.0.0.0", local: 42000, remote: 5432, targetPort: 5432 }] }
  ]

  it("replaces every placeholder, and leaves other braces alone", () => {
    const args = [
      "{port}",
      "http://{host}:{port.metrics}/m",
      "{db-main.host}:{db-main.port}",
      "{db-main.port.5432}",
      "{\"a\":{\"b\":1}}",
      "{ports}"
    ]
    assert.deepStrictEqual(ChildCommand.checkPlaceholders(args, plan), [])
    assert.deepStrictEqual(ChildCommand.substitute(args, ready), [
      "8080",
      "http://127.0.0.1:41000/m",
      "127.0.0.1:42000",
      "42000",
      "{\"a\":{\"b\":1}}",
      "{ports}"
    ])
  })

  it("a placeholder for an unknown forward or port is reported before anything runs", () => {
    assert.deepStrictEqual(ChildCommand.checkPlaceholders(["x{cache.port}", "{web.port.81}", "{host.80}"], plan), [
      "-- \"x{cache.port}\": {cache.port} names no forward (forwards: web, db-main)",
      "-- \"{web.port.81}\": {web.port.81}: forward \"web\" has no remote port 81 (it has 80, metrics)",
      "-- \"{host.80}\": {host.80}: a host has no port part (write {host})"
    ])
  })

  it("puts every port in the environment, the first forward's also without its name", () => {
    assert.deepStrictEqual(ChildCommand.environment(ready), {
      KUBE_FORWARD_HOST: "127.0.0.1",
      KUBE_FORWARD_PORT: "8080",
      KUBE_FORWARD_PORT_80: "8080",
      KUBE_FORWARD_PORT_METRICS: "41000",
      KUBE_FORWARD_WEB_HOST: "127.0.0.1",
      KUBE_FORWARD_WEB_PORT: "8080",
      KUBE_FORWARD_WEB_PORT_80: "8080",
      KUBE_FORWARD_WEB_PORT_METRICS: "41000",
      KUBE_FORWARD_DB_MAIN_HOST: "127.0.0.1",
      KUBE_FORWARD_DB_MAIN_PORT: "42000",
      KUBE_FORWARD_DB_MAIN_PORT_5432: "42000"
    })
  })
})
