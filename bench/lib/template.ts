/**
 * RESULTS.md is hand-written; the bench only replaces what lies between its markers:
 *
 *   <!-- generated:NAME -->
 *   …replaced on every run…
 *   <!-- /generated:NAME -->
 *
 * so the narrative around the tables stays as its author wrote it.
 */

const open = (name: string) => `<!-- generated:${name} -->`
const close = (name: string) => `<!-- /generated:${name} -->`

/** The names of the marked regions of `template`, in order. */
export const regions = (template: string): Array<string> =>
  [...template.matchAll(/<!-- generated:([\w-]+) -->/g)].map((m) => m[1])

export interface Filled {
  readonly text: string
  /** Blocks that have no region in the template (not shown). */
  readonly unplaced: ReadonlyArray<string>
  /** Regions the blocks did not fill (left as they were). */
  readonly unfilled: ReadonlyArray<string>
}

/** Replaces the content of each region of `template` that `blocks` names. */
export const fill = (template: string, blocks: Readonly<Record<string, string>>): Filled => {
  let text = template
  const unplaced: Array<string> = []
  for (const [name, content] of Object.entries(blocks)) {
    const from = text.indexOf(open(name))
    const to = text.indexOf(close(name))
    if (from === -1 || to === -1 || to < from) {
      unplaced.push(name)
      continue
    }
    text = `${text.slice(0, from + open(name).length)}\n${content.trim()}\n${text.slice(to)}`
  }
  return { text, unplaced, unfilled: regions(template).filter((r) => !(r in blocks)) }
}
