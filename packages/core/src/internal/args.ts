/**
 * Builds kubectl's argument array for one forward. Never a shell string: each value is one
 * array element, values of flags are joined to the flag with `=` (so a value can never be read
 * as a flag of its own), and the target and ports come after `--`, where kubectl reads only
 * positional arguments.
 *
 * @internal
 */
import type { ForwardSpec } from "../ForwardSpec.ts"

/**
 * The kubectl arguments for `spec`, with `locals[i]` as the local port of `spec.ports[i]`
 * (`0` lets the OS choose when kubectl binds).
 */
export const portForwardArgs = (spec: ForwardSpec, locals: ReadonlyArray<number>): Array<string> => {
  const args = ["port-forward"]
  if (spec.kubeconfig !== undefined) args.push(`--kubeconfig=${spec.kubeconfig}`)
  if (spec.context !== undefined) args.push(`--context=${spec.context}`)
  if (spec.namespace !== undefined) args.push(`--namespace=${spec.namespace}`)
  args.push(`--address=${spec.addresses.join(",")}`)
  args.push("--")
  args.push(spec.resource)
  spec.ports.forEach((port, i) => {
    const local = locals[i] ?? 0
    args.push(local === 0 ? `:${port.remote}` : `${local}:${port.remote}`)
  })
  return args
}
