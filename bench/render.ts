/**
 * Re-renders a RESULTS.md from its results.json without measuring again (after a change to the
 * report's wording): `npx node bench/render.ts [bench/results.json [bench/RESULTS.md]]`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { render } from "./lib/report.ts"
import type { Results } from "./lib/results.ts"

const here = Path.dirname(fileURLToPath(import.meta.url))
const json = process.argv[2] ?? Path.join(here, "results.json")
const md = process.argv[3] ??
  Path.join(Path.dirname(json), Path.basename(json) === "results.json" ? "RESULTS.md" : "RESULTS.quick.md")
const results = JSON.parse(Fs.readFileSync(json, "utf8")) as Results
Fs.writeFileSync(md, render(results))
console.log(`rendered ${md} from ${json}`)
