/**
 * A process and its descendants, as they are at the moment of asking: the `--` command stays in
 * our process group (an interactive program needs the terminal), so it cannot be signalled as a
 * group of its own; its children are found by their parent ids instead.
 *
 * @internal
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"

/** One process: its id, its parent's, its process group's, and when it started. */
export interface Proc {
  readonly pid: number
  readonly ppid: number
  readonly pgid: number
  /** Its start time (clock ticks after boot, field 22 of `/proc/<pid>/stat`); unknown without `/proc`. */
  readonly start: number | undefined
}

/**
 * `/proc/<pid>/stat`'s fields after `(comm)`: state, ppid, pgrp, session, tty_nr, tpgid, …
 * (field n of proc(5) at index n - 3).
 */
const statFields = (pid: number | "self"): Array<string> | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

const fromProc = (): Array<Proc> =>
  Fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    const fields = statFields(Number(name))
    // a zombie has exited: nothing to signal
    if (fields === undefined || fields[0] === "Z" || fields[0] === "X") return []
    return [{ pid: Number(name), ppid: Number(fields[1]), pgid: Number(fields[2]), start: Number(fields[19]) }]
  })

const fromPs = (): Array<Proc> =>
  execFileSync("ps", ["-A", "-o", "pid=,ppid=,pgid=,stat="], { encoding: "utf8" }).split("\n").flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)/.exec(line)
    return m === null || m[4].startsWith("Z")
      ? []
      : [{ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), start: undefined }]
  })

/**
 * Every live process now: from `/proc` on Linux, else from `ps`; none when neither can be read.
 * The functions below take one such snapshot (or read their own), so that one look at the
 * process table serves several questions.
 */
export const snapshot = (): Array<Proc> => {
  try {
    return Fs.existsSync("/proc/self/stat") ? fromProc() : fromPs()
  } catch {
    return []
  }
}

/**
 * `roots` and all their live descendants (each with its process group and start time, to tell
 * it from a later process that reuses its id, see {@link alive}).
 */
export const tree = (roots: ReadonlyArray<number>, all: ReadonlyArray<Proc> = snapshot()): Array<Proc> => {
  const byParent = new Map<number, Array<Proc>>()
  for (const p of all) {
    const siblings = byParent.get(p.ppid)
    if (siblings === undefined) byParent.set(p.ppid, [p])
    else siblings.push(p)
  }
  const out: Array<Proc> = all.filter((p) => roots.includes(p.pid))
  const seen = new Set(out.map((p) => p.pid))
  for (let i = 0; i < out.length; i++) {
    for (const child of byParent.get(out[i].pid) ?? []) {
      if (seen.has(child.pid)) continue
      seen.add(child.pid)
      out.push(child)
    }
  }
  return out
}

/**
 * Where a process came from: its process group and its start time, when `/proc` tells
 * (`undefined` elsewhere, or when it is gone).
 */
export const origin = (pid: number): { readonly pgid: number; readonly start: number } | undefined => {
  const fields = statFields(pid)
  return fields === undefined ? undefined : { pgid: Number(fields[2]), start: Number(fields[19]) }
}

/**
 * What a process (of `origin`) started and that outlived the process that started it: the live
 * members of its process group that started no earlier than it did, whose parent is outside the
 * group (they were reparented, so they are no longer found by parent id), and their
 * descendants. Those that were already running when it started (its parent, its siblings in a
 * pipeline) are not among them. Linux only (`/proc`): none elsewhere.
 */
export const outlived = (
  from: { readonly pgid: number; readonly start: number },
  all: ReadonlyArray<Proc> = snapshot()
): Array<Proc> => {
  const group = new Set(all.filter((p) => p.pgid === from.pgid).map((p) => p.pid))
  const roots = all.filter((p) =>
    p.pgid === from.pgid && p.start !== undefined && p.start >= from.start && !group.has(p.ppid) &&
    p.pid !== process.pid
  )
  return roots.length === 0 ? [] : tree(roots.map((p) => p.pid), all)
}

/**
 * Which of `known` are still alive: the same pid, in the same process group, with the same start
 * time as when they were seen (a later process that reuses the id is not one of them; without
 * `/proc` the start time is unknown, and the group alone tells).
 */
export const alive = (known: ReadonlyArray<Proc>, all: ReadonlyArray<Proc> = snapshot()): Array<Proc> => {
  const now = new Map(all.map((p) => [p.pid, p]))
  return known.filter((p) => {
    const current = now.get(p.pid)
    return current !== undefined && current.pgid === p.pgid && current.start === p.start
  })
}

/** Sends `signal` to each of `procs` (one that is gone already is skipped). */
export const signal = (procs: ReadonlyArray<Proc>, signal: NodeJS.Signals): void => {
  for (const p of procs) {
    try {
      process.kill(p.pid, signal)
    } catch {
      // gone already
    }
  }
}

/**
 * Whether `pid` is in the foreground process group of its controlling terminal: a Ctrl-C
 * typed there reaches it from the terminal itself. `undefined` when this cannot be told.
 */
export const inForeground = (pid: number): boolean | undefined => {
  const fields = statFields(pid)
  if (fields !== undefined) return Number(fields[4]) !== 0 && Number(fields[5]) === Number(fields[2])
  try {
    const [pgid, tpgid] = execFileSync("ps", ["-o", "pgid=,tpgid=", "-p", String(pid)], { encoding: "utf8" })
      .trim().split(/\s+/).map(Number)
    return tpgid > 0 && tpgid === pgid
  } catch {
    return undefined
  }
}
