/** The shape of bench/results.json: every raw sample, so the tables and charts can be recomputed (bench/render.ts). */

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

/** A contender as the report names it. */
export interface ContenderInfo {
  readonly id: string
  readonly label: string
  readonly carrier: "kubectl" | "in-process" | "none"
  readonly verifies: boolean
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
  /** The contender's close call → the local port(s) bindable again (NaN: nothing to close). */
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
  /** CPU time kubectl (all its threads) had used when the first echo reply arrived. */
  readonly kubectlCpuMs?: number
}

export interface ThroughputRow {
  readonly id: string
  readonly label: string
  /** The contender behind the row (`direct`: none). */
  readonly contender: string
  readonly transport: "tunnel" | "spdy-only"
  /** Which session kind the fake server must count for this row (`null`: no forward, direct). */
  readonly expectSession: "tunnel" | "spdy" | "websocket" | null
  readonly kubectl: string | null
  readonly directions: ReadonlyArray<"upload" | "download">
  /** The row whose numbers this one is compared with ("vs raw kubectl, same transport"). */
  readonly baseline?: string
}

/** CPU time each process spent during one transfer, in ms (all threads). */
export interface TransferCpu {
  /** The bench process: the forwarder itself for in-process contenders, kube-forward's own share otherwise. */
  readonly benchMs: number
  /** The kubectl that carried the bytes (with children), when there was one. */
  readonly kubectlMs?: number
  readonly serverMs: number
  readonly loadgenMs: number
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
  readonly cpu?: TransferCpu
  /** Peak RSS of the kubectl that carried it (VmHWM, with children). */
  readonly kubectlHwmKiB?: number
  /** Peak RSS growth of the bench process while it carried the bytes itself (in-process contenders). */
  readonly hostRssPeakKiB?: number
}

/** Many connections through one forward at once, each checked on its own. */
export interface ConcurrentResult {
  readonly contender: string
  readonly transport: "tunnel" | "spdy-only"
  readonly ok: boolean
  readonly error?: string
  readonly connections: number
  readonly bytesPerConnection: number
  /** Connections whose byte count and CRC-32 matched. */
  readonly identical: number
  readonly ms: number
  readonly failures: ReadonlyArray<string>
  /** What the fake server counted: sessions by kind, and connections dialled to the pods. */
  readonly sessions?: Record<string, number>
  readonly serverConnections?: number
}

/** Memory of one process, after GC, in KiB. */
export interface HostMemory {
  readonly rssKiB: number
  readonly heapUsedKiB: number
  readonly externalKiB: number
}

/** N forwards held open one after another in a fresh application process (bench/host.ts). */
export interface MemoryResult {
  readonly contender: string
  readonly n: number
  readonly ok: boolean
  readonly error?: string
  /** The process before it loaded anything of the contender. */
  readonly bare?: HostMemory
  /** After loading the library and opening, using and closing one forward. */
  readonly loaded?: HostMemory
  readonly loadMs?: number
  /** With N forwards open (each carried one echo round trip). */
  readonly open?: HostMemory
  /** After they were closed. */
  readonly closed?: HostMemory
  /** RSS (with children) of each kubectl process while the N were open. */
  readonly kubectlRssKiB: ReadonlyArray<number>
  /** RSS of the application process's other helpers (kube-forward's watchdog), once. */
  readonly helperRssKiB: number
}

/** N forwards opened at once in a fresh application process, then closed. */
export interface ScaleResult {
  readonly contender: string
  readonly strategy?: "sequential" | "parallel"
  readonly n: number
  readonly ok: boolean
  readonly error?: string
  readonly openAllMs: number
  /** Forwards that failed to open. */
  readonly failedToOpen: number
  /** One echo round trip through each, afterwards. */
  readonly roundTripsOk: number
  readonly roundTripsMs: number
  readonly closeAllMs: number
  readonly rssLoadedKiB: number
  readonly rssOpenKiB: number
  /** RSS of all kubectl processes while the N were open (0 for in-process contenders). */
  readonly kubectlRssKiB: number
  readonly leftoverProcessesAtClose: number
  readonly leftoverProcessesAfter1s: number
  readonly unbindablePortsAtClose: number
  readonly unbindablePortsAfter1s: number
  /** Port-forward sessions the fake API server still had open. */
  readonly serverSessionsAtClose: number
  readonly serverSessionsAfter1s: number
}

export interface Settings {
  readonly readyRuns: number
  readonly warmups: number
  readonly bytes: number
  readonly reps: number
  readonly memoryN: number
  readonly memoryInProcessN: number
  readonly scaleN: number
  readonly scaleInProcessN: number
  readonly concurrentConnections: number
  readonly concurrentBytes: number
}

export interface Results {
  readonly mode: "full" | "quick"
  readonly machine: MachineInfo
  readonly kubectl: KubectlInfo
  readonly kubectlSpdy: KubectlInfo | undefined
  readonly settings: Settings
  readonly argvCheck: {
    readonly kubeForward: ReadonlyArray<string>
    readonly raw: ReadonlyArray<string>
    readonly same: boolean
  }
  /** The older revision of the A/B, when it ran: its commit and where it was loaded from. */
  readonly ab: { readonly commit: string; readonly dir: string } | undefined
  readonly contenders: ReadonlyArray<ContenderInfo>
  readonly ready: ReadonlyArray<ReadyRun>
  /** The first warm-up round: each contender's first forward in this process (one sample each). */
  readonly cold: ReadonlyArray<ReadyRun>
  readonly throughputRows: ReadonlyArray<ThroughputRow>
  readonly throughput: ReadonlyArray<ThroughputRun>
  readonly concurrent: ReadonlyArray<ConcurrentResult>
  readonly memory: ReadonlyArray<MemoryResult>
  readonly scale: ReadonlyArray<ScaleResult>
  /** CPU the watchdog used during the ready rounds, per kube-forward forward opened and closed there. */
  readonly watchdogCpuPerForwardMs: number | undefined
  readonly leaksAtEnd: ReadonlyArray<string>
  readonly errors: ReadonlyArray<string>
  readonly durationMs: number
  postExit?: { readonly ok: boolean; readonly detail: ReadonlyArray<string> }
}
