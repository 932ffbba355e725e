/**
 * The generated part of bench/RESULTS.md: tables and charts only, each a named block that
 * lib/template.ts puts between its markers in the hand-written RESULTS.md (lib/blocks.ts renders
 * them). No prose is generated beyond what a table needs to be read, so nothing here goes stale.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Data from "./blocks/data.ts"
import * as Ready from "./blocks/ready.ts"
import type { Results } from "./results.ts"
import { fill } from "./template.ts"
import { View } from "./view.ts"

/** The region bench/run.ts fills after the bench process has exited. */
export const POST_EXIT = "post-exit"

export const postExitLine = (ok: boolean, detail: ReadonlyArray<string>): string =>
  `Post-exit check (bench/run.ts, after the bench process exited): ${ok ? "passed" : "**FAILED**"} — ${
    detail.join("; ")
  }.`

/** Every generated block by region name, and the charts by file name. */
export const renderAll = (
  r: Results
): { readonly blocks: Record<string, string>; readonly charts: Record<string, string> } => {
  const v = new View(r)
  const charts: Record<string, string> = {}
  const blocks: Record<string, string> = {
    run: Ready.run(v),
    goals: Ready.goals(v),
    ready: Ready.ready(v, charts),
    cold: Ready.cold(v),
    close: Ready.close(v),
    ab: Ready.ab(v),
    phases: Data.phases(v),
    "ready-cpu": Data.readyCpu(v),
    throughput: Data.throughput(v, charts),
    cpu: Data.cpu(v),
    concurrent: Data.concurrent(v),
    memory: Data.memory(v, charts),
    scale: Data.scale(v),
    argv: Data.argv(v),
    problems: Data.problems(v),
    [POST_EXIT]: r.postExit === undefined
      ? "Post-exit check (bench/run.ts, after the bench process exited): pending."
      : postExitLine(r.postExit.ok, r.postExit.detail)
  }
  return { blocks, charts }
}

export interface Written {
  readonly files: ReadonlyArray<string>
  readonly markdown: string
  readonly json: string
  readonly warnings: ReadonlyArray<string>
}

/**
 * Writes results(.quick).json, the charts (charts/*.svg next to the markdown) and the markdown:
 * bench/RESULTS.md with its generated regions filled (quick runs write out/RESULTS.quick.md from
 * the same template, leaving RESULTS.md alone).
 */
export const writeReport = (
  r: Results,
  where: { readonly benchDir: string; readonly outDir: string; readonly skipJson?: boolean }
): Written => {
  const quick = r.mode === "quick"
  const markdown = Path.join(where.outDir, quick ? "RESULTS.quick.md" : "RESULTS.md")
  const json = Path.join(where.outDir, quick ? "results.quick.json" : "results.json")
  const { blocks, charts } = renderAll(r)
  const chartDir = Path.join(where.outDir, "charts")
  Fs.mkdirSync(chartDir, { recursive: true })
  const files: Array<string> = []
  for (const [name, svg] of Object.entries(charts)) {
    const file = Path.join(chartDir, `${name}.svg`)
    Fs.writeFileSync(file, svg)
    files.push(file)
  }
  const template = Fs.readFileSync(Path.join(where.benchDir, "RESULTS.md"), "utf8")
  const filled = fill(template, blocks)
  Fs.writeFileSync(markdown, filled.text)
  files.push(markdown)
  if (where.skipJson !== true) {
    Fs.writeFileSync(json, JSON.stringify(r, null, 2) + "\n")
    files.push(json)
  }
  const warnings = [
    ...filled.unplaced.map((n) => `RESULTS.md has no region for the generated block "${n}"`),
    ...filled.unfilled.map((n) => `RESULTS.md region "${n}" was not generated`)
  ]
  return { files, markdown, json, warnings }
}
