/**
 * The A/B of issue 8: kube-forward on kubectl at an older revision (before the core reshape),
 * loaded from a checkout of its own that `bench/ab.ts` prepares (`git archive` of the commit and
 * its own `npm ci`). That checkout has its own copy of `effect`, so the contender runs on the
 * modules the checkout's `ab-entry.mjs` re-exports: its `PortForward`, and its `effect`.
 */
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { ENTRY } from "../abCheckout.ts"
import type { Settings } from "./common.ts"
import { type EffectContender, effectContender, type ForwardLayer, type Modules } from "./effect.ts"
import { kubectlOptions } from "./kubeForward.ts"

interface OldModules extends Modules {
  readonly PortForward: Modules["PortForward"] & { readonly layer: (options: unknown) => ForwardLayer }
}

/** kube-forward on kubectl from the checkout in `dir`, with the same kubectl options as today's contender. */
export const abKubeForward = async (id: string, label: string, s: Settings, dir: string): Promise<EffectContender> => {
  const modules = (await import(pathToFileURL(Path.join(dir, ENTRY)).href)) as OldModules
  return effectContender({
    id,
    label,
    carrier: "kubectl",
    layer: modules.PortForward.layer(kubectlOptions(s)),
    modules
  })
}
