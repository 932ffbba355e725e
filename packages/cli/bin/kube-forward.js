#!/usr/bin/env node
// Entry point of the `kube-forward` binary.
//
// - Installed from npm (this file lives under node_modules): run the compiled ../dist/bin.js.
//   Node does not strip types under node_modules, and the published package ships dist/.
// - In a checkout of the repository (the workspace symlink resolves to packages/cli, outside
//   node_modules): run the TypeScript source ../src/bin.ts directly, so the command is never a
//   stale build. Node >= 22.18 strips the types, and a resolve hook adds the `source` export
//   condition for the workspace packages (@kube-forward/*), so their sources are used too. On an
//   older Node, or if the source is absent, it falls back to ../dist/bin.js (run `npm run build`
//   first).
import { existsSync } from "node:fs"
import * as Module from "node:module"
import { fileURLToPath } from "node:url"

// V8's code cache for the modules of every start after the first (Node >= 22.1): a command is
// started often, and most of its start-up is compiling Effect.
Module.enableCompileCache?.()

const source = new URL("../src/bin.ts", import.meta.url)
const compiled = new URL("../dist/bin.js", import.meta.url)
const installed = fileURLToPath(import.meta.url).split(/[\\/]/).includes("node_modules")

const canStripTypes = () => {
  const [major, minor] = process.versions.node.split(".").map(Number)
  return major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18)
}

const fromSource = !installed && existsSync(source) && canStripTypes() && typeof Module.registerHooks === "function"
if (fromSource) {
  Module.registerHooks({
    resolve: (specifier, context, nextResolve) =>
      specifier.startsWith("@kube-forward/")
        ? nextResolve(specifier, { ...context, conditions: ["source", ...context.conditions] })
        : nextResolve(specifier, context)
  })
}
await import(fromSource ? source.href : compiled.href)
