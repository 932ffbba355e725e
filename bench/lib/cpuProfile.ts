/** The V8 CPU profiler around a piece of work, for the bench's hand-run profiling scripts. */
import { Session } from "node:inspector/promises"

/** A V8 CPU profile's frame. */
export interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

/** A node of a V8 CPU profile. */
export interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

/** A V8 CPU profile (`Profiler.stop`'s). */
export interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/**
 * Runs `work` under the CPU profiler (a sample every 100 µs): its result, the profile, and the
 * process CPU time it took (`process.cpuUsage`, all threads).
 */
export const profiled = async <A>(
  work: () => Promise<A>
): Promise<{ readonly result: A; readonly profile: Profile; readonly cpu: NodeJS.CpuUsage }> => {
  const session = new Session()
  session.connect()
  try {
    await session.post("Profiler.enable")
    await session.post("Profiler.setSamplingInterval", { interval: 100 })
    await session.post("Profiler.start")
    const cpu0 = process.cpuUsage()
    const result = await work()
    const cpu = process.cpuUsage(cpu0)
    const { profile } = (await session.post("Profiler.stop")) as unknown as { readonly profile: Profile }
    return { result, profile, cpu }
  } finally {
    session.disconnect()
  }
}
