/**
 * A process and its descendants, as they are at the moment of asking: the `--` command stays in
 * our process group (an interactive program needs the terminal), so it cannot be signalled as a
 * group of its own; its children are found by their parent ids instead.
 *
 * @internal
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"

/** One process: its id, its parent's, its process group's. */
export interface Proc {
  readonly pid: number
  readonly ppid: number
  readonly pgid: number
}

/** `/proc/<pid>/stat`'s fields after `(comm)`: state, ppid, pgrp, session, tty_nr, tpgid, … */
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
    return [{ pid: Number(name), ppid: Number(fields[1]), pgid: Number(fields[2]) }]
  })

const fromPs = (): Array<Proc> =>
  execFileSync("ps", ["-A", "-o", "pid=,ppid=,pgid=,stat="], { encoding: "utf8" }).split("\n").flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)/.exec(line)
    return m === null || m[4].startsWith("Z") ? [] : [{ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]) }]
  })

/** Every live process: from `/proc` on Linux, else from `ps`; none when neither can be read. */
const processes = (): Array<Proc> => {
  try {
    return Fs.existsSync("/proc/self/stat") ? fromProc() : fromPs()
  } catch {
    return []
  }
}

/**
 * `roots` and all their live descendants (each with its process group, to tell it from a later
 * process that reuses its id).
 */
export const tree = (roots: ReadonlyArray<number>): Array<Proc> => {
  const all = processes()
  const byParent = new Map<number, Array<Proc>>()
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p])
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

/** Which of `known` are still alive, in the same process group as when they were seen. */
export const alive = (known: ReadonlyArray<Proc>): Array<Proc> => {
  const now = new Map(processes().map((p) => [p.pid, p.pgid]))
  return known.filter((p) => now.get(p.pid) === p.pgid)
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
