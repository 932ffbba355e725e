import { assert, describe, it, vi } from "@effect/vitest"
import * as KubectlBinaries from "@kube-forward/testkit/KubectlBinaries"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"

const clientGitVersion = (bin: string) =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) =>
      execFile(
        bin,
        ["version", "--client", "-o", "json"],
        { timeout: 30_000 },
        (error, stdout) => error ? reject(error) : resolve(JSON.parse(stdout).clientVersion.gitVersion)
      )
    )
  )

const stat = (file: string) => Effect.promise(() => Fs.stat(file))

const expectedMinors = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"]

describe("KubectlBinaries", () => {
  it.effect("findAll returns one real kubectl per minor version, 1.27 through 1.35, sorted", () =>
    Effect.gen(function*() {
      const all = yield* KubectlBinaries.findAll
      assert.isAtLeast(all.length, 9)
      const versions = all.map((b) => b.version)
      for (const minor of expectedMinors) assert.include(versions, minor)
      assert.strictEqual(new Set(versions).size, versions.length, "deduplicated by minor version")
      const numeric = versions.map((v) => v.split(".").map(Number) as [number, number])
      for (let i = 1; i < numeric.length; i++) {
        const [a, b] = [numeric[i - 1]!, numeric[i]!]
        assert.isTrue(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `${versions[i - 1]} < ${versions[i]}`)
      }

      yield* Effect.forEach(all, (binary) =>
        Effect.gen(function*() {
          assert.isTrue(Path.isAbsolute(binary.path), binary.path)
          yield* Effect.promise(() => Fs.access(binary.path, Fs.constants.X_OK))
          assert.isTrue((yield* stat(binary.path)).isFile(), binary.path)
          const real = yield* clientGitVersion(binary.path)
          assert.strictEqual(binary.gitVersion, real, binary.path)
          assert.isTrue(real.startsWith(`v${binary.version}.`), `${real} is on the ${binary.version} line`)
          assert.notInclude(real, "dispatcher")
        }), { concurrency: 4 })

      const bySource = (source: KubectlBinaries.KubectlBinary["source"]) =>
        all.filter((b) => b.source === source).map((b) => b.version)
      assert.includeMembers(bySource("npm"), ["1.34", "1.35"])
    }))

  it.effect("findAll is cached in-module", () =>
    Effect.gen(function*() {
      const first = yield* KubectlBinaries.findAll
      const second = yield* KubectlBinaries.findAll
      assert.strictEqual(first, second)
    }))

  it.effect("find(\"1.34\") extracts once and reuses the cached binary", () =>
    Effect.gen(function*() {
      const first = yield* KubectlBinaries.find("1.34")
      assert.strictEqual(first.version, "1.34")
      assert.strictEqual(first.source, "npm")
      assert.include(first.path, `${Path.sep}node_modules${Path.sep}.cache${Path.sep}kube-forward${Path.sep}`)
      const before = yield* stat(first.path)

      const second = yield* KubectlBinaries.find("1.34")
      assert.deepStrictEqual(second, first)
      const after = yield* stat(second.path)
      assert.strictEqual(after.ino, before.ino)
      assert.strictEqual(after.mtimeMs, before.mtimeMs)

      // A fresh module instance (as in another test process) reuses the on-disk cache.
      vi.resetModules()
      const fresh: typeof KubectlBinaries = yield* Effect.promise(() => import("@kube-forward/testkit/KubectlBinaries"))
      assert.notStrictEqual(fresh.find, KubectlBinaries.find)
      const third = yield* fresh.find("1.34")
      assert.strictEqual(third.path, first.path)
      const again = yield* stat(third.path)
      assert.strictEqual(again.ino, before.ino)
      assert.strictEqual(again.mtimeMs, before.mtimeMs)
    }))

  it.effect("find accepts a leading v", () =>
    Effect.gen(function*() {
      const binary = yield* KubectlBinaries.find("v1.31")
      assert.strictEqual(binary.version, "1.31")
    }))

  it.effect("find(\"1.99\") fails with KubectlBinariesError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(KubectlBinaries.find("1.99"))
      assert.instanceOf(error, KubectlBinaries.KubectlBinariesError)
      assert.strictEqual(error._tag, "KubectlBinariesError")
      assert.include(error.message, "1.99")
    }))

  it.effect("dispatcher is the absolute path of the kubectl on PATH", () =>
    Effect.gen(function*() {
      const path = yield* KubectlBinaries.dispatcher
      assert.isTrue(Path.isAbsolute(path), path)
      assert.strictEqual(Path.basename(path), "kubectl")
      yield* Effect.promise(() => Fs.access(path, Fs.constants.X_OK))
      const all = yield* KubectlBinaries.findAll
      // A Google Cloud SDK dispatcher is not itself one of the real binaries.
      const real = yield* Effect.promise(() => Fs.realpath(path))
      if ((yield* clientGitVersion(path)).includes("dispatcher")) {
        assert.isFalse(all.some((b) => b.path === path || b.path === real))
      }
    }))
})
