/**
 * A guard against leaks when the owning Node process dies without running its finalizers
 * (SIGKILL, a crash in native code, an OOM kill).
 *
 * One small watchdog process per owner, started on first use: the owner keeps a pipe to its
 * stdin and writes `+PGID` / `-PGID` lines as it starts and reaps kubectl process groups. The
 * watchdog never reads anything else and never exits on signals; when the pipe closes (the
 * owner is gone, however it died) it sends SIGTERM to every group still registered, SIGKILL a
 * second later, and exits.
 *
 * @internal
 */
import { type ChildProcess, spawn } from "node:child_process"

/** The watchdog program. A constant: no value from outside is ever part of it. */
const WATCHDOG_SOURCE = `
"use strict";
const groups = new Set();
let buffer = "";
let reaping = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE"]) process.on(signal, () => {});
const signalAll = (signal) => {
  for (const pgid of groups) {
    try { process.kill(-pgid, signal); } catch { groups.delete(pgid); }
  }
};
const reap = () => {
  if (reaping) return;
  reaping = true;
  signalAll("SIGTERM");
  if (groups.size === 0) process.exit(0);
  setTimeout(() => { signalAll("SIGKILL"); process.exit(0); }, 1000);
};
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffer += chunk;
  let i;
  while ((i = buffer.indexOf("\\n")) >= 0) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    const pgid = Number(line.slice(1));
    if (!Number.isInteger(pgid) || pgid <= 1) continue;
    if (line[0] === "+") groups.add(pgid);
    else if (line[0] === "-") groups.delete(pgid);
  }
});
process.stdin.on("end", reap);
process.stdin.on("error", reap);
process.stdin.on("close", reap);
`

let current: ChildProcess | undefined

const ensure = (): ChildProcess | undefined => {
  if (current !== undefined && current.exitCode === null && current.signalCode === null && current.stdin?.writable) {
    return current
  }
  try {
    const child = spawn(process.execPath, ["-e", WATCHDOG_SOURCE], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env: {}
    })
    child.on("error", () => {
      if (current === child) current = undefined
    })
    child.stdin?.on("error", () => {})
    // Neither the process nor the pipe may keep the owner's event loop alive.
    child.unref()
    ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.()
    current = child
    return child
  } catch {
    return undefined
  }
}

/**
 * Starts the watchdog now (if it does not run yet), so that the first forward does not pay
 * for starting a Node process on its way to ready.
 */
export const prepare = (): void => {
  ensure()
}

/** Tells the watchdog to kill process group `pgid` if this process dies before `release`. */
export const guard = (pgid: number): void => {
  ensure()?.stdin?.write(`+${pgid}\n`)
}

/** Tells the watchdog that process group `pgid` has ended. */
export const release = (pgid: number): void => {
  if (current !== undefined && current.stdin?.writable) current.stdin.write(`-${pgid}\n`)
}

/** The watchdog's pid, if one runs (for tests and diagnostics). */
export const pid = (): number | undefined => current?.pid
