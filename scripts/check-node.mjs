// Runs after `npm install` / `npm ci` (the root postinstall), on the Node that npm scripts use.
//
// npm itself may run on an older Node than the packages need (a machine's Node 20, say). It
// then prints an EBADENGINE warning for every package, about npm's Node, not about the Node the
// code runs on: every npm script here runs on the Node this repository pins (the `node` dev
// dependency, first on the scripts' PATH). Those warnings are silenced in .npmrc (loglevel);
// this check says so in one line, and fails loudly if the Node that scripts do run on is too
// old, which is the problem the warnings would be about.
import * as Fs from "node:fs"

const required = JSON.parse(Fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")).engines.node
const minimum = /^>=\s*(\d+)\.(\d+)/.exec(required)
const parse = (version) => version.replace(/^v/, "").split(".").map(Number)
const atLeast = ([major, minor], [wantMajor, wantMinor]) => major > wantMajor || (major === wantMajor && minor >= wantMinor)
const want = minimum === null ? [0, 0] : [Number(minimum[1]), Number(minimum[2])]

const scripts = process.version
const npmNode = /node\/(v[\d.]+)/.exec(process.env.npm_config_user_agent ?? "")?.[1] ?? scripts

if (!atLeast(parse(scripts), want)) {
  console.error(`npm scripts here run on Node ${scripts}, but the packages need Node ${required}: the pinned Node (npm package "node") did not install. Run npm install again.`)
  process.exit(1)
}
if (!atLeast(parse(npmNode), want)) {
  console.log(`npm ran on Node ${npmNode}; every npm script runs on the pinned Node ${scripts} (the packages need ${required}), so npm's engine warnings are silenced (.npmrc). For your own runs: npx node …`)
}
