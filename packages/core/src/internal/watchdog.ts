/**
 * A guard against leaks when the owning Node process dies without running its finalizers
 * (SIGKILL, a crash in native code, an OOM kill).
 *
 * One small watchdog process per owner (a `/bin/sh` loop), started with the Kubectl layer:
 * the owner keeps a pipe to its stdin and writes `+PGID` / `-PGID` lines as it starts and
 * reaps kubectl process groups. The watchdog never reads anything else and ignores the usual
 * termination signals; when the pipe closes (the owner is gone, however it died) it sends
 * SIGTERM to every group still registered, SIGKILL a second later, and exits.
 *
 * @internal
 */
import { type ChildProcess, spawn } from "node:child_process"

/**
 * The watchdog program, for `/bin/sh` (about 1 MiB of memory where a Node process takes ~48).
 *
 * It is a constant: no value from outside is ever part of it. The only input is what this
 * module writes to its stdin, `+PGID` / `-PGID` lines, and any line that is not a sign followed
 * by a process-group number above 1 is ignored. It ignores the usual termination signals so
 * that a Ctrl-C in the owner's terminal cannot take it down before the owner has cleaned up.
 */
const WATCHDOG_SCRIPT = `
trap '' INT TERM HUP PIPE
groups=' '
while IFS= read -r line; do
  case $line in
    [+-]*[!0-9]* | [+-] | [+-]0* | [+-]1) ;;
    +*) groups="$groups\${line#+} " ;;
    -*) gone=\${line#-}; kept=' '
        for g in $groups; do [ "$g" = "$gone" ] || kept="$kept$g "; done
        groups=$kept ;;
  esac
done
[ "$groups" = ' ' ] && exit 0
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null; done
sleep 1
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
exit 0
`

let current: ChildProcess | undefined
/** The groups guarded now, so a watchdog started again (the old one was killed) learns them all. */
const guarded = new Set<number>()

const ensure = (): ChildProcess | undefined => {
  if (current !== undefined && current.exitCode === null && current.signalCode === null && current.stdin?.writable) {
    return current
  }
  try {
    const child = spawn("/bin/sh", ["-c", WATCHDOG_SCRIPT], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env: { PATH: "/usr/bin:/bin" }
    })
    child.on("error", () => {
      if (current === child) current = undefined
    })
    child.stdin?.on("error", () => {})
    // Neither the process nor the pipe may keep the owner's event loop alive.
    child.unref()
    ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.()
    current = child
    for (const pgid of guarded) child.stdin?.write(`+${pgid}\n`)
    return child
  } catch {
    return undefined
  }
}

/**
 * Starts the watchdog now (if it does not run yet), so that the first forward does not pay
 * for starting it on its way to ready.
 */
export const prepare = (): void => {
  ensure()
}

/** Tells the watchdog to kill process group `pgid` if this process dies before `release`. */
export const guard = (pgid: number): void => {
  const child = ensure()
  guarded.add(pgid)
  child?.stdin?.write(`+${pgid}\n`)
}

/** Tells the watchdog that process group `pgid` has ended. */
export const release = (pgid: number): void => {
  guarded.delete(pgid)
  if (current !== undefined && current.stdin?.writable) current.stdin.write(`-${pgid}\n`)
}

/** The watchdog's pid, if one runs (for tests and diagnostics). */
export const pid = (): number | undefined => current?.pid
