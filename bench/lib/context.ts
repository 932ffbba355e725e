/** What every section of the bench shares: settings, the helper processes, the error list, the log. */
import type { Settings as ContenderSettings, Target } from "./contenders/common.ts"
import type { Helper } from "./ipc.ts"
import type { Settings } from "./results.ts"

/** What bench/server.ts says when it is ready. */
export interface ServerHello {
  readonly url: string
  readonly kubeconfigPath: string
  readonly cacheDir: string
  readonly sink: { readonly host: string; readonly port: number }
  readonly source: { readonly host: string; readonly port: number }
  readonly echo: { readonly host: string; readonly port: number }
  readonly patternMs: number
  readonly patternBytes: number
}

/** The fake server's counters (FakeCluster.Counters), as they come over IPC. */
export interface Counters {
  readonly sessions: Record<string, number>
  readonly activeSessions: number
  readonly connections: number
  readonly bytesToPod: number
  readonly bytesFromPod: number
}

export interface Bench {
  readonly quick: boolean
  readonly settings: Settings
  /** What the contenders are built with. */
  readonly s: ContenderSettings
  readonly server: Helper
  readonly hello: ServerHello
  readonly loadgen: Helper
  /** The bench directory (where main.ts, host.ts and the helpers live). */
  readonly here: string
  /** Node flags for helper processes. */
  readonly execArgv: ReadonlyArray<string>
  readonly errors: Array<string>
  readonly log: (...parts: ReadonlyArray<unknown>) => void
  /** Records a process the bench started, for the leak check after it exits (bench/run.ts). */
  readonly track: (pid: number) => void
}

/** The pods the bench forwards to. */
export const pods = {
  echo: { pod: "echo", port: 7, namespace: "default" },
  sink: { pod: "sink", port: 9001, namespace: "default" },
  source: { pod: "source", port: 9002, namespace: "default" },
  tkSource: { pod: "tk-source", port: 9003, namespace: "default" }
} satisfies Record<string, Target>

export const MiB = 1024 * 1024

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
