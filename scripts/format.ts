/**
 * The repository's formatter: dprint (Effect's formatter) with its TypeScript and JSON plugins,
 * configured by `dprint.json` (the settings of Effect's own repository), run in-process through
 * `@dprint/formatter`. The dprint CLI is not used: its npm package installs a native binary
 * per platform, and a registry that lacks some of them leaves `npm ci` unable to install from
 * the lockfile; the plugins are WebAssembly and run anywhere Node runs.
 *
 * `node scripts/format.ts` formats every tracked (and new, not ignored) `.ts` and `.json` file;
 * with `--check` it only lists the files that are not formatted, and fails if there are any.
 */
import { createContext } from "@dprint/formatter"
import * as Json from "@dprint/json"
import * as TypeScript from "@dprint/typescript"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

interface Config {
  readonly lineWidth: number
  readonly indentWidth: number
  readonly typescript: Record<string, unknown>
  readonly json: Record<string, unknown>
  readonly excludes: ReadonlyArray<string>
}

const root = Path.resolve(import.meta.dirname, "..")
const config = JSON.parse(Fs.readFileSync(Path.join(root, "dprint.json"), "utf8")) as Config
const check = process.argv.includes("--check")

const context = createContext({ lineWidth: config.lineWidth, indentWidth: config.indentWidth })
context.addPlugin(Fs.readFileSync(TypeScript.getPath()), config.typescript)
context.addPlugin(Fs.readFileSync(Json.getPath()), config.json)

/** `dprint.json`'s excludes, as path prefixes or file names. */
const excluded = (file: string): boolean =>
  config.excludes.some((pattern) => {
    const plain = pattern.replace(/^\*\*\//, "")
    return file === plain || file.startsWith(`${plain}/`) || file.split("/").includes(plain)
  })

const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
  cwd: root,
  encoding: "utf8"
})
  .split("\n")
  .filter((f) => /\.(ts|json)$/.test(f) && !excluded(f) && Fs.existsSync(Path.join(root, f)))

const different: Array<string> = []
for (const file of files) {
  const path = Path.join(root, file)
  const text = Fs.readFileSync(path, "utf8")
  const formatted = context.formatText({ filePath: path, fileText: text })
  if (formatted === text) continue
  different.push(file)
  if (!check) Fs.writeFileSync(path, formatted)
}

if (check && different.length > 0) {
  console.error(`not formatted (run npm run format):\n${different.map((f) => `  ${f}`).join("\n")}`)
  process.exit(1)
}
console.log(`${files.length} files ${check ? "checked" : "formatted"}${check ? "" : `, ${different.length} changed`}`)
