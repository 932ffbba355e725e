/**
 * Prepares the "before" side of the A/B of issue 8: an older revision of the library in a
 * directory of its own (not a git worktree: nothing is added to the repository's metadata),
 * with its own `npm ci`, and an entry file the bench loads it through (lib/contenders/ab.ts).
 *
 *   node bench/ab.ts [--commit 034d034] [--dir /tmp/kube-forward-ab-034d034]
 *
 * then `npm run bench -- --ab /tmp/kube-forward-ab-034d034`. Idempotent: a directory that already
 * holds the commit is kept.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { ENTRY, preparedCommit } from "./lib/abCheckout.ts"

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
/** The parent of the core reshape (6da6ed7, "one forward engine over a carrier service"). */
export const DEFAULT_COMMIT = "034d034"
const repo = Path.resolve(import.meta.dirname, "..")
const commit = execFileSync("git", ["rev-parse", "--verify", `${flag("--commit") ?? DEFAULT_COMMIT}^{commit}`], {
  cwd: repo,
  encoding: "utf8"
}).trim()
const dir = flag("--dir") ?? Path.join(Os.tmpdir(), `kube-forward-ab-${commit.slice(0, 7)}`)

if (preparedCommit(dir) === commit) {
  console.log(`${dir} already holds ${commit.slice(0, 7)}`)
} else {
  Fs.rmSync(dir, { recursive: true, force: true })
  Fs.mkdirSync(dir, { recursive: true })
  const archive = spawnSync("sh", ["-c", "git archive \"$1\" | tar -x -C \"$2\"", "sh", commit, dir], {
    cwd: repo,
    stdio: "inherit"
  })
  if (archive.status !== 0) throw new Error(`git archive ${commit} failed`)
  // no install scripts: the old checkout runs on this Node, it needs its packages only
  const ci = spawnSync("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" })
  if (ci.status !== 0) throw new Error(`npm ci in ${dir} failed`)
  Fs.writeFileSync(
    Path.join(dir, ENTRY),
    [
      "// written by kube-forward's bench/ab.ts: what the bench needs from this revision, on its own effect",
      "export { PortForward } from \"./packages/core/src/index.ts\"",
      "export { Effect, Exit, ManagedRuntime, Scope } from \"effect\"",
      ""
    ].join("\n")
  )
  Fs.writeFileSync(Path.join(dir, ".ab-commit"), commit + "\n")
  console.log(`prepared ${commit.slice(0, 7)} in ${dir}`)
}
console.log(`run: npm run bench -- --ab ${dir}`)
