/** The shape of bench/results.json: every raw sample, so the tables can be recomputed. */

export interface MachineInfo {
  readonly cpuModel: string
  readonly cores: number
  readonly ramGiB: number
  readonly node: string
  readonly kernel: string
  readonly date: string
  /** The library revision measured: `git rev-parse --short HEAD`, plus what was uncommitted outside bench/. */
  readonly commit?: string
  readonly loadAvgStart: ReadonlyArray<number>
  readonly loadAvgEnd: ReadonlyArray<number>
  readonly ipv6Loopback: boolean
  /** How fast the testkit's `Backend.pattern` generates bytes here (its `Backend.source` does this per connection). */
  readonly patternMiBps: number
  /** How fast `zlib.crc32` checksums here (every transfer is checksummed on the receiving side). */
  readonly crcMiBps: number
}

export interface KubectlInfo {
  readonly path: string
  readonly gitVersion: string
}

export interface ReadyRun {
  readonly contender: string
  readonly round: number
  readonly ok: boolean
  readonly error?: string
  /** Call → the contender's own "open" (kube-forward: make returned, verified). */
  readonly openMs: number
  /** Call → a user-level echo round trip through the forward succeeded. */
  readonly firstReplyMs: number
  /** The contender's close call → it returned. */
  readonly closeReturnMs: number
  /** The contender's close call → the local port(s) bindable again. */
  readonly freeMs: number
  /** Phase times relative to the call (open phases) or to the close call (kill*). */
  readonly phases: Record<string, number>
  /** kube-forward's check connection, timed on its own after ready (instrumented variant). */
  readonly checkMs?: number
  /** kubectl's RSS (with children) after ready and one connection. */
  readonly kubectlRssKiB?: number
  /** CPU time of this (the application's) process from the call to open / to the first echo reply. */
  readonly appCpuOpenMs: number
  readonly appCpuReplyMs: number
  /** CPU time kubectl had used when the first echo reply arrived (start-up + API calls + the connections so far). */
  readonly kubectlCpuMs?: number
}

export interface ThroughputRow {
  readonly id: string
  readonly label: string
  readonly transport: "tunnel" | "spdy-only"
  /** Which session kind the fake server must count for this row (`null`: no forward, direct). */
  readonly expectSession: "tunnel" | "spdy" | "websocket" | null
  readonly kubectl: string | null
  readonly directions: ReadonlyArray<"upload" | "download">
}

export interface ThroughputRun {
  readonly row: string
  readonly rep: number
  readonly direction: "upload" | "download"
  readonly ok: boolean
  readonly bytes: number
  readonly ms: number
  readonly mibps: number
  readonly crcOk: boolean
  readonly error?: string
  /** The server's counters agreed: the expected session kind, and at least this many payload bytes. */
  readonly countersOk: boolean
  readonly sessions?: Record<string, number>
  readonly bytesToPod?: number
  readonly bytesFromPod?: number
  /** Peak RSS of the kubectl that carried it (VmHWM, with children). */
  readonly kubectlHwmKiB?: number
  /** Peak RSS of the bench process while it carried the bytes itself (client-node). */
  readonly hostRssPeakKiB?: number
}

export interface MemoryResult {
  readonly contender: string
  readonly n: number
  readonly heapPerForwardKiB: number
  readonly heapRetainedAfterCloseKiB: number
  readonly hostRssPerForwardKiB: number
  readonly kubectlRssKiB: ReadonlyArray<number>
  readonly error?: string
}

export interface ScaleResult {
  readonly contender: string
  readonly n: number
  readonly ok: boolean
  readonly error?: string
  readonly openAllMs: number
  readonly closeAllMs: number
  readonly leftoverProcessesAtClose: number
  readonly leftoverProcessesAfter1s: number
  readonly unbindablePortsAtClose: number
  readonly unbindablePortsAfter1s: number
}

export interface Results {
  readonly mode: "full" | "quick"
  readonly machine: MachineInfo
  readonly kubectl: KubectlInfo
  readonly kubectlSpdy: KubectlInfo | undefined
  readonly settings: {
    readonly readyRuns: number
    readonly warmups: number
    readonly bytes: number
    readonly reps: number
    readonly memoryN: number
    readonly scaleN: number
  }
  readonly argvCheck: {
    readonly kubeForward: ReadonlyArray<string>
    readonly raw: ReadonlyArray<string>
    readonly same: boolean
  }
  readonly contenders: ReadonlyArray<{ readonly id: string; readonly label: string; readonly verifies: boolean }>
  readonly ready: ReadonlyArray<ReadyRun>
  /** The first warm-up round: each contender's first forward in this process (one sample each). */
  readonly cold: ReadonlyArray<ReadyRun>
  readonly throughputRows: ReadonlyArray<ThroughputRow>
  readonly throughput: ReadonlyArray<ThroughputRun>
  readonly memory: ReadonlyArray<MemoryResult>
  /** CPU the watchdog used during the ready rounds, per kube-forward forward opened and closed there. */
  readonly watchdogCpuPerForwardMs: number | undefined
  /** kube-forward's one watchdog process per application process (a Node started with -e), if found. */
  readonly watchdog: { readonly pid: number; readonly rssKiB: number } | undefined
  readonly scale: ReadonlyArray<ScaleResult>
  readonly leaksAtEnd: ReadonlyArray<string>
  readonly errors: ReadonlyArray<string>
  readonly durationMs: number
  postExit?: { readonly ok: boolean; readonly detail: ReadonlyArray<string> }
}
