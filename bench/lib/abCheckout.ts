/** Where the A/B's older revision lives once `bench/ab.ts` prepared it (no imports of the library here). */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** The file `bench/ab.ts` writes into a prepared checkout: the old revision's `PortForward` and its own `effect`. */
export const ENTRY = "ab-entry.mjs"

/** The commit a prepared checkout holds (written by `bench/ab.ts` once its `npm ci` succeeded). */
export const preparedCommit = (dir: string): string | undefined => {
  try {
    return Fs.readFileSync(Path.join(dir, ".ab-commit"), "utf8").trim()
  } catch {
    return undefined
  }
}
