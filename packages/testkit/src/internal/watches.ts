/**
 * Pod watches (`GET …/pods?watch=true`): a chunked JSON response per watcher, one event object per
 * line, until the client goes, `timeoutSeconds` runs out or the cluster closes. kubectl watches the
 * pods of a service or workload that selects none yet.
 *
 * @internal
 */
import type * as Http from "node:http"
import type { CounterBoard } from "./counters.ts"
import { matches, type Selector } from "./labels.ts"
import type { PodEvent, PodRecord } from "./store.ts"
import type { Timers } from "./timers.ts"
import { podView } from "./views.ts"

interface Watcher {
  readonly namespace: string | undefined
  readonly selector: Selector
  readonly res: Http.ServerResponse
}

/** What a watch asks for. */
export interface WatchRequest {
  readonly namespace: string | undefined
  readonly selector: Selector
  /** `resourceVersion`: only pods changed after it are sent first (0: all). */
  readonly since: number
  /** `timeoutSeconds` (0: none). */
  readonly timeoutSeconds: number
}

/** The open watches of a cluster; `activeWatches` in the counters follows their number. */
export class Watches {
  private readonly watchers = new Set<Watcher>()
  private readonly counters: CounterBoard
  private readonly timers: Timers

  constructor(counters: CounterBoard, timers: Timers) {
    this.counters = counters
    this.timers = timers
  }

  /** Starts a watch on `res`, sending the selected pods first as `ADDED`. */
  open(res: Http.ServerResponse, request: WatchRequest, selected: ReadonlyArray<PodRecord>): void {
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" })
    res.flushHeaders()
    const watcher: Watcher = { namespace: request.namespace, selector: request.selector, res }
    this.watchers.add(watcher)
    this.gaugeChanged()
    const stop = () => {
      if (this.watchers.delete(watcher)) this.gaugeChanged()
      if (!res.writableEnded) res.end()
    }
    // Not req "close": that fires as soon as the (empty) request body has been read.
    res.on("close", stop)
    if (request.timeoutSeconds > 0) this.timers.after(request.timeoutSeconds * 1000, stop)
    for (const p of selected) {
      if (request.since === 0 || p.resourceVersion > request.since) write(watcher, "ADDED", p)
    }
  }

  /** Sends a pod change to the watches that select it. */
  notify(pod: PodRecord, type: PodEvent): void {
    for (const watcher of this.watchers) {
      if (watcher.namespace !== undefined && watcher.namespace !== pod.namespace) continue
      if (!matches(watcher.selector, pod.labels)) continue
      write(watcher, type, pod)
    }
  }

  /** Ends every watch. */
  close(): void {
    for (const watcher of this.watchers) watcher.res.end()
    this.watchers.clear()
    this.gaugeChanged()
  }

  private gaugeChanged(): void {
    this.counters.value.activeWatches = this.watchers.size
    this.counters.changed()
  }
}

const write = (watcher: Watcher, type: PodEvent, pod: PodRecord): void => {
  if (watcher.res.writableEnded) return
  watcher.res.write(JSON.stringify({ type, object: podView(pod) }) + "\n")
}
