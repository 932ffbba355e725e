/**
 * Label selectors as the API server parses them (`labelSelector=` query values): equality
 * (`a=b`, `a==b`, `a!=b`), existence (`a`, `!a`) and sets (`a in (x,y)`, `a notin (x)`).
 *
 * @internal
 */

/** A parsed selector; an empty selector matches everything. */
export type Selector = ReadonlyArray<Requirement>

/** One requirement of a selector. */
export type Requirement =
  | { readonly op: "in"; readonly key: string; readonly values: ReadonlyArray<string> }
  | { readonly op: "notin"; readonly key: string; readonly values: ReadonlyArray<string> }
  | { readonly op: "exists"; readonly key: string }
  | { readonly op: "doesnotexist"; readonly key: string }

/** A valid label value (empty, or alphanumerics with `-`, `_`, `.` inside, at most 63 chars). */
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/

/** Splits on commas that are not inside parentheses. */
const splitTopLevel = (input: string): Array<string> => {
  const parts: Array<string> = []
  let depth = 0
  let current = ""
  for (const ch of input) {
    if (ch === "(") depth++
    if (ch === ")") depth--
    if (ch === "," && depth === 0) {
      parts.push(current)
      current = ""
    } else {
      current += ch
    }
  }
  parts.push(current)
  return parts.map((p) => p.trim()).filter((p) => p.length > 0)
}

/** Parses a selector string; throws on syntax the API server would also reject. */
export const parseSelector = (input: string | null | undefined): Selector => {
  if (input === null || input === undefined || input.trim() === "") return []
  return splitTopLevel(input).map((term): Requirement => {
    let m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term)
    if (m) {
      const values = m[3]!.split(",").map((v) => v.trim()).filter((v) => v.length > 0)
      return { op: m[2] === "in" ? "in" : "notin", key: m[1]!, values }
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term)
    if (m) {
      if (!VALUE.test(m[3]!)) throw new Error(`invalid label value: "${m[3]}"`)
      return { op: m[2] === "!=" ? "notin" : "in", key: m[1]!, values: [m[3]!] }
    }
    m = /^!\s*(\S+)$/.exec(term)
    if (m) return { op: "doesnotexist", key: m[1]! }
    if (/^[^=!\s()]+$/.test(term)) return { op: "exists", key: term }
    throw new Error(`unable to parse requirement: ${term}`)
  })
}

/** Whether labels satisfy every requirement. */
export const matches = (selector: Selector, labels: Readonly<Record<string, string>>): boolean =>
  selector.every((req) => {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key)
    switch (req.op) {
      case "in":
        return has && req.values.includes(labels[req.key]!)
      case "notin":
        return !has || !req.values.includes(labels[req.key]!)
      case "exists":
        return has
      case "doesnotexist":
        return !has
    }
  })

/** A selector from `matchLabels`. */
export const fromMatchLabels = (labels: Readonly<Record<string, string>>): Selector =>
  Object.entries(labels).map(([key, value]) => ({ op: "in" as const, key, values: [value] }))
