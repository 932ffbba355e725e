/**
 * Re-renders the generated regions of a RESULTS.md and its charts from a results.json without
 * measuring again (after a change to the tables or to the hand-written template):
 * `npx node --conditions=source bench/render.ts [bench/results.json]` (results.quick.json renders
 * into bench/out/RESULTS.quick.md).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { writeReport } from "./lib/report.ts"
import type { Results } from "./lib/results.ts"

const here = Path.dirname(fileURLToPath(import.meta.url))
const json = Path.resolve(process.argv[2] ?? Path.join(here, "results.json"))
const results = JSON.parse(Fs.readFileSync(json, "utf8")) as Results
const written = writeReport(results, { benchDir: here, outDir: Path.dirname(json), skipJson: true })
for (const w of written.warnings) console.warn(w)
console.log(`rendered ${written.files.map((f) => Path.relative(process.cwd(), f)).join(", ")} from ${json}`)
