/**
 * Every public export of the packages carries JSDoc. Private code lives under src/internal/.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.join(import.meta.dirname, "..")
const sources = (pkg: string): Array<string> =>
  Fs.readdirSync(Path.join(root, "packages", pkg, "src"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.startsWith(`internal${Path.sep}`) && !f.startsWith("internal/"))
    .map((f) => Path.join(root, "packages", pkg, "src", f))

const EXPORT =
  /^export\s+(?:declare\s+)?(?:const|let|function|class|interface|type|namespace|\*\s+as)\s+([A-Za-z0-9_$]+)/

/** The exported names of `file` that have no JSDoc block right above them. */
const undocumented = (file: string): Array<string> => {
  const lines = Fs.readFileSync(file, "utf8").split("\n")
  const missing: Array<string> = []
  lines.forEach((line, i) => {
    const m = EXPORT.exec(line)
    if (m === null) return
    let j = i - 1
    while (j >= 0 && lines[j].trim() === "") j--
    if (j < 0 || !lines[j].trim().endsWith("*/")) missing.push(`${Path.relative(root, file)}:${i + 1} ${m[1]}`)
  })
  return missing
}

describe("documentation", () => {
  for (const pkg of ["core", "protocol", "testkit", "native", "cli"]) {
    it(`every export of @kube-forward/${pkg} has JSDoc`, () => {
      const files = sources(pkg)
      // the listing found the package's modules (native has two public ones: index and NativeForwarder)
      assert.isAtLeast(files.length, 2)
      assert.deepStrictEqual(files.flatMap(undocumented), [])
    })
  }
})
