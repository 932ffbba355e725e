/**
 * The fake API server itself: state (pods, services, workloads), the HTTP server with its REST
 * routes and watches, the port-forward upgrade dispatcher, sessions, faults and counters. The
 * public `FakeCluster` module wraps this in Effect.
 *
 * @internal
 */
import { PortForwardProtocol, WebSocket } from "@kube-forward/protocol"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Stream from "node:stream"
import type { Backend } from "../Backend.ts"
import type {
  Counters,
  Options,
  PodPhase,
  PodSpec,
  ServiceSpec,
  TransportMode,
  UpgradeFault,
  WorkloadSpec
} from "../FakeCluster.ts"
import { BackendPool } from "./backends.ts"
import { ChannelSession } from "./channelSession.ts"
import { CounterBoard } from "./counters.ts"
import { invalidPortCause, parsePort } from "./dialer.ts"
import type { Address, ForwardHost } from "./host.ts"
import { fromMatchLabels, matches, parseSelector, type Selector } from "./labels.ts"
import * as Obj from "./objects.ts"
import { SpdySession } from "./spdySession.ts"
import { socketTransport, type Transport, tunnelTransport } from "./transport.ts"

/** kubectl's tunnel subprotocol (kubectl ≥ 1.31, or 1.30 with KUBECTL_PORT_FORWARD_WEBSOCKETS=true). */
const TUNNEL_PROTOCOL = PortForwardProtocol.ProtocolName.Tunnel

/** The channel subprotocol this server picks (never v5). */
const CHANNEL_PROTOCOL = PortForwardProtocol.ProtocolName.ChannelV4

/** The exact SPDY upgrade response; nothing else may share its write. */
const SPDY_101 = "HTTP/1.1 101 Switching Protocols\r\n" +
  "Connection: Upgrade\r\n" +
  "Upgrade: SPDY/3.1\r\n" +
  "X-Stream-Protocol-Version: portforward.k8s.io\r\n" +
  "\r\n"

const PORTFORWARD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward\/?$/

interface PodRecord {
  readonly namespace: string
  readonly name: string
  readonly uid: string
  readonly spec: PodSpec
  readonly labels: Readonly<Record<string, string>>
  readonly created: string
  readonly podIP: string
  phase: PodPhase
  resourceVersion: number
  restartCount: number
  /** Bumped by every restart, so that a stale "back up" timer does nothing. */
  generation: number
}

interface ServiceRecord {
  readonly spec: ServiceSpec
  readonly namespace: string
  readonly uid: string
  readonly created: string
  readonly clusterIP: string
  readonly resourceVersion: number
}

interface WorkloadRecord {
  readonly spec: WorkloadSpec
  readonly namespace: string
  readonly uid: string
  readonly created: string
  readonly resourceVersion: number
}

interface LiveSession {
  readonly podKey: string
  readonly drop: () => void
}

interface Watcher {
  readonly namespace: string | undefined
  readonly selector: Selector
  readonly res: Http.ServerResponse
}

const key = (namespace: string, name: string) => `${namespace}/${name}`

const debugEnabled = /^(1|true|yes)$/i.test(process.env["KUBE_FORWARD_TESTKIT_DEBUG"] ?? "")

/** The cluster behind a `FakeCluster`. */
export class Cluster {
  readonly url: string
  readonly dir: string
  readonly kubeconfigPath: string
  readonly cacheDir: string

  private readonly server: Http.Server
  private readonly board = new CounterBoard()
  private readonly pods = new Map<string, PodRecord>()
  private readonly services = new Map<string, ServiceRecord>()
  private readonly deployments = new Map<string, WorkloadRecord>()
  private readonly statefulsets = new Map<string, WorkloadRecord>()
  private readonly sessions = new Set<LiveSession>()
  private readonly heldSockets = new Set<Stream.Duplex>()
  private readonly watchers = new Set<Watcher>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private readonly backends = new BackendPool()
  private readonly version: string
  private readonly created = new Date().toISOString().replace(/\.\d+Z$/, "Z")
  private transport: TransportMode
  private fault: UpgradeFault | undefined = undefined
  private restDelayMs = 0
  private resourceVersion = 1
  private nextIp = 10
  private closing = false

  private constructor(server: Http.Server, port: number, dir: string, options: Options) {
    this.server = server
    this.url = `http://127.0.0.1:${port}`
    this.dir = dir
    this.kubeconfigPath = Path.join(dir, "kubeconfig")
    this.cacheDir = Path.join(dir, "cache")
    this.version = options.version ?? "v1.33.1"
    this.transport = options.transport ?? "tunnel"
    for (const pod of options.pods ?? []) this.addPod(pod)
    for (const service of options.services ?? []) this.addService(service)
    for (const d of options.deployments ?? []) this.addWorkload(this.deployments, d)
    for (const s of options.statefulsets ?? []) this.addWorkload(this.statefulsets, s)
    server.on("request", (req, res) => this.onRequest(req, res))
    server.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head))
  }

  /** Listens on 127.0.0.1:0 and writes the kubeconfig. */
  static async start(options: Options): Promise<Cluster> {
    const dir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "kube-forward-testkit-"))
    const server = Http.createServer({ keepAliveTimeout: 5000 })
    try {
      const port = await new Promise<number>((resolve, reject) => {
        server.once("error", reject)
        server.listen({ host: "127.0.0.1", port: 0 }, () => {
          server.off("error", reject)
          resolve((server.address() as { port: number }).port)
        })
      })
      const cluster = new Cluster(server, port, dir, options)
      await Fs.mkdir(cluster.cacheDir, { recursive: true })
      await Fs.writeFile(cluster.kubeconfigPath, kubeconfig(cluster.url), { mode: 0o600 })
      return cluster
    } catch (error) {
      server.close()
      await Fs.rm(dir, { recursive: true, force: true })
      throw error
    }
  }

  /** Stops everything and removes the temp files. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    for (const watcher of this.watchers) watcher.res.end()
    this.watchers.clear()
    this.watchesChanged()
    this.dropSessions()
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    await closed
    await this.backends.close()
    await Fs.rm(this.dir, { recursive: true, force: true })
  }

  private debug(message: string): void {
    if (debugEnabled) process.stderr.write(`[fake-cluster ${this.url}] ${message}\n`)
  }

  // -----------------------------------------------------------------------------------------------
  // state

  private bump(): number {
    return ++this.resourceVersion
  }

  /** Adds or replaces a pod. */
  addPod(spec: PodSpec): void {
    const namespace = spec.namespace ?? "default"
    const k = key(namespace, spec.name)
    const previous = this.pods.get(k)
    if (previous) this.dropSessionsFor(k)
    const record: PodRecord = {
      namespace,
      name: spec.name,
      uid: Crypto.randomUUID(),
      spec,
      labels: { ...spec.labels },
      created: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      podIP: `10.244.0.${this.nextIp++ % 250 + 2}`,
      phase: spec.phase ?? "Running",
      resourceVersion: this.bump(),
      restartCount: 0,
      generation: 0
    }
    this.pods.set(k, record)
    this.notify(record, previous ? "MODIFIED" : "ADDED")
  }

  /** Deletes a pod and drops its sessions. */
  deletePod(namespace: string, name: string): void {
    const k = key(namespace, name)
    const record = this.pods.get(k)
    if (!record) return
    this.pods.delete(k)
    this.dropSessionsFor(k)
    record.resourceVersion = this.bump()
    this.notify(record, "DELETED")
  }

  /** Sets a pod's phase. */
  setPodPhase(namespace: string, name: string, phase: PodPhase): void {
    const record = this.pods.get(key(namespace, name))
    if (!record || record.phase === phase) return
    record.phase = phase
    record.resourceVersion = this.bump()
    this.notify(record, "MODIFIED")
  }

  /** Takes a pod down for a restart; returns the restart generation, or undefined if absent. */
  restartPod(namespace: string, name: string): number | undefined {
    const k = key(namespace, name)
    const record = this.pods.get(k)
    if (!record) return undefined
    this.dropSessionsFor(k)
    record.generation++
    record.restartCount++
    record.phase = "Pending"
    record.resourceVersion = this.bump()
    this.notify(record, "MODIFIED")
    return record.generation
  }

  /** Brings a restarted pod back, unless it was restarted again or replaced since. */
  finishRestart(namespace: string, name: string, generation: number): void {
    const record = this.pods.get(key(namespace, name))
    if (!record || record.generation !== generation) return
    this.setPodPhase(namespace, name, "Running")
  }

  /** Adds or replaces a service. */
  addService(spec: ServiceSpec): void {
    const namespace = spec.namespace ?? "default"
    this.services.set(key(namespace, spec.name), {
      spec,
      namespace,
      uid: Crypto.randomUUID(),
      created: this.created,
      clusterIP: spec.clusterIP ?? `10.96.${Math.floor(this.services.size / 250)}.${this.services.size % 250 + 10}`,
      resourceVersion: this.bump()
    })
  }

  /** Adds or replaces a deployment. */
  addDeployment(spec: WorkloadSpec): void {
    this.addWorkload(this.deployments, spec)
  }

  /** Adds or replaces a statefulset. */
  addStatefulSet(spec: WorkloadSpec): void {
    this.addWorkload(this.statefulsets, spec)
  }

  private addWorkload(into: Map<string, WorkloadRecord>, spec: WorkloadSpec): void {
    const namespace = spec.namespace ?? "default"
    into.set(key(namespace, spec.name), {
      spec,
      namespace,
      uid: Crypto.randomUUID(),
      created: this.created,
      resourceVersion: this.bump()
    })
  }

  /** Switches the transport mode. */
  setTransport(mode: TransportMode): void {
    this.transport = mode
  }

  /** Sets or clears the upgrade fault. */
  setUpgradeFault(fault: UpgradeFault | undefined): void {
    this.fault = fault
    if (fault === undefined || fault._tag !== "Hang") {
      for (const socket of this.heldSockets) socket.destroy()
      this.heldSockets.clear()
    }
  }

  /** Sets the REST delay in milliseconds. */
  setRestDelay(ms: number): void {
    this.restDelayMs = Math.max(0, ms)
  }

  /** Drops every live session (and every held upgrade). */
  dropSessions(): void {
    for (const session of [...this.sessions]) session.drop()
    for (const socket of this.heldSockets) socket.destroy()
    this.heldSockets.clear()
  }

  private dropSessionsFor(podKey: string): void {
    for (const session of [...this.sessions]) if (session.podKey === podKey) session.drop()
  }

  /** A copy of the counters. */
  snapshot(): Counters {
    return this.board.snapshot()
  }

  /** Zeroes the counters except the `active*` gauges. */
  resetCounters(): void {
    this.board.reset()
  }

  /**
   * Calls `listener` after counters changed (on a microtask, once per burst of synchronous
   * changes, so it sees a consistent state). Returns the function that removes it.
   */
  onCountersChange(listener: () => void): () => void {
    return this.board.onChange(listener)
  }

  /** The watch gauge follows the number of open watches. */
  private watchesChanged(): void {
    this.board.value.activeWatches = this.watchers.size
    this.board.changed()
  }

  // -----------------------------------------------------------------------------------------------
  // views

  private podView(p: PodRecord): Obj.Json {
    return Obj.pod({
      name: p.name,
      namespace: p.namespace,
      uid: p.uid,
      resourceVersion: p.resourceVersion,
      creationTimestamp: p.created,
      labels: p.labels,
      phase: p.phase,
      podIP: p.podIP,
      startTime: p.created,
      restartCount: p.restartCount,
      containers: (p.spec.containers ?? [{ name: "main", ports: [] }]).map((c) => ({
        name: c.name,
        ports: c.ports.map((port) => ({ name: port.name, containerPort: port.containerPort }))
      }))
    })
  }

  private serviceView(s: ServiceRecord): Obj.Json {
    return Obj.service({
      name: s.spec.name,
      namespace: s.namespace,
      uid: s.uid,
      resourceVersion: s.resourceVersion,
      creationTimestamp: s.created,
      selector: s.spec.selector,
      clusterIP: s.clusterIP,
      ports: s.spec.ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.targetPort === undefined || p.targetPort === 0 ? p.port : p.targetPort
      }))
    })
  }

  private workloadView(w: WorkloadRecord, render: (view: Obj.WorkloadView) => Obj.Json): Obj.Json {
    const selector = fromMatchLabels(w.spec.selector)
    const selected = [...this.pods.values()].filter((p) => p.namespace === w.namespace && matches(selector, p.labels))
    return render({
      name: w.spec.name,
      namespace: w.namespace,
      uid: w.uid,
      resourceVersion: w.resourceVersion,
      creationTimestamp: w.created,
      labels: w.spec.selector,
      selector: w.spec.selector,
      replicas: selected.length,
      ready: selected.filter((p) => p.phase === "Running").length
    })
  }

  // -----------------------------------------------------------------------------------------------
  // REST

  private onRequest(req: Http.IncomingMessage, res: Http.ServerResponse): void {
    this.board.value.restRequests++
    this.board.changed()
    req.resume()
    this.debug(`${req.method} ${req.url} (accept: ${req.headers.accept ?? ""})`)
    if (this.restDelayMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        this.route(req, res)
      }, this.restDelayMs)
      this.timers.add(timer)
    } else {
      this.route(req, res)
    }
  }

  private send(res: Http.ServerResponse, code: number, body: unknown): void {
    if (res.writableEnded || res.destroyed) return
    const text = JSON.stringify(body)
    res.writeHead(code, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(text),
      "Cache-Control": "no-cache, private"
    })
    res.end(text)
  }

  private route(req: Http.IncomingMessage, res: Http.ServerResponse): void {
    if (this.closing) {
      res.destroy()
      return
    }
    const url = new URL(req.url ?? "/", this.url)
    const path = url.pathname.replace(/\/+$/, "") || "/"
    const seg = path.split("/").slice(1).map(decodeURIComponent)
    const method = req.method ?? "GET"
    if (PORTFORWARD_PATH.test(path)) {
      return this.send(res, 400, Obj.status(400, { message: "Upgrade request required", reason: "BadRequest" }))
    }
    if (method !== "GET" && method !== "HEAD") return this.send(res, 405, Obj.status(405))
    const query = url.searchParams
    const ok = (body: unknown) => this.send(res, 200, body)
    const generic404 = () => this.send(res, 404, Obj.status(404, { details: {} }))

    switch (path) {
      case "/version":
        return ok(Obj.version(this.version))
      case "/api":
        return ok(Obj.apiVersions(this.url.replace("http://", "")))
      case "/apis":
        return ok(Obj.apiGroupList)
      case "/api/v1":
        return ok(Obj.coreV1Resources)
      case "/apis/apps":
        return ok(Obj.appsGroup)
      case "/apis/apps/v1":
        return ok(Obj.appsV1Resources)
      case "/healthz":
      case "/livez":
      case "/readyz": {
        res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" })
        res.end("ok")
        return
      }
    }

    // /api/v1/...
    if (seg[0] === "api" && seg[1] === "v1") {
      const rest = seg.slice(2)
      if (rest.length === 1 && rest[0] === "namespaces") {
        const names = new Set(["default", "kube-system"])
        for (const p of this.pods.values()) names.add(p.namespace)
        for (const s of this.services.values()) names.add(s.namespace)
        return ok(Obj.list("NamespaceList", "v1", this.resourceVersion, [...names].map((n) => Obj.namespace(n, this.created))))
      }
      if (rest.length === 2 && rest[0] === "namespaces") return ok(Obj.namespace(rest[1]!, this.created))
      if (rest.length === 1 && rest[0] === "pods") return this.listPods(res, undefined, query)
      if (rest.length === 1 && rest[0] === "services") return this.listServices(res, undefined, query)
      if (rest[0] === "namespaces" && rest.length >= 3) {
        const ns = rest[1]!
        const resource = rest[2]!
        const name = rest[3]
        if (resource === "pods") {
          if (name === undefined) return this.listPods(res, ns, query)
          if (rest.length === 4) {
            const pod = this.pods.get(key(ns, name))
            return pod ? ok(this.podView(pod)) : this.send(res, 404, Obj.notFound({ resource: "pods" }, name))
          }
          return generic404()
        }
        if (resource === "services") {
          if (name === undefined) return this.listServices(res, ns, query)
          if (rest.length === 4) {
            const svc = this.services.get(key(ns, name))
            return svc ? ok(this.serviceView(svc)) : this.send(res, 404, Obj.notFound({ resource: "services" }, name))
          }
        }
      }
      return generic404()
    }

    // /apis/apps/v1/...
    if (seg[0] === "apis" && seg[1] === "apps" && seg[2] === "v1") {
      const rest = seg.slice(3)
      const kinds = {
        deployments: { store: this.deployments, render: Obj.deployment, list: "DeploymentList" },
        statefulsets: { store: this.statefulsets, render: Obj.statefulSet, list: "StatefulSetList" }
      } as const
      const pick = (resource: string | undefined) =>
        resource === "deployments" || resource === "statefulsets" ? kinds[resource] : undefined
      if (rest.length === 1) {
        const kind = pick(rest[0])
        if (kind) {
          const items = [...kind.store.values()].map((w) => this.workloadView(w, kind.render))
          return ok(Obj.list(kind.list, "apps/v1", this.resourceVersion, items))
        }
      }
      if (rest[0] === "namespaces" && (rest.length === 3 || rest.length === 4)) {
        const ns = rest[1]!
        const kind = pick(rest[2])
        if (kind) {
          if (rest.length === 3) {
            const items = [...kind.store.values()].filter((w) => w.namespace === ns).map((w) =>
              this.workloadView(w, kind.render)
            )
            return ok(Obj.list(kind.list, "apps/v1", this.resourceVersion, items))
          }
          const name = rest[3]!
          const w = kind.store.get(key(ns, name))
          return w ?
            ok(this.workloadView(w, kind.render)) :
            this.send(res, 404, Obj.notFound({ resource: rest[2]!, group: "apps" }, name))
        }
      }
      return generic404()
    }
    return generic404()
  }

  private selectorFrom(res: Http.ServerResponse, query: URLSearchParams): Selector | undefined {
    try {
      return parseSelector(query.get("labelSelector"))
    } catch (error) {
      this.send(res, 400, Obj.status(400, { message: `unable to parse requirement: ${String(error)}`, reason: "BadRequest" }))
      return undefined
    }
  }

  private listServices(res: Http.ServerResponse, namespace: string | undefined, query: URLSearchParams): void {
    const selector = this.selectorFrom(res, query)
    if (!selector) return
    const items = [...this.services.values()]
      .filter((s) => (namespace === undefined || s.namespace === namespace) && matches(selector, s.spec.selector))
      .map((s) => this.serviceView(s))
    this.send(res, 200, Obj.list("ServiceList", "v1", this.resourceVersion, items))
  }

  private listPods(
    res: Http.ServerResponse,
    namespace: string | undefined,
    query: URLSearchParams
  ): void {
    const selector = this.selectorFrom(res, query)
    if (!selector) return
    const selected = [...this.pods.values()].filter((p) =>
      (namespace === undefined || p.namespace === namespace) && matches(selector, p.labels)
    )
    const watch = query.get("watch")
    if (watch !== "true" && watch !== "1") {
      return this.send(res, 200, Obj.list("PodList", "v1", this.resourceVersion, selected.map((p) => this.podView(p))))
    }
    // A watch: stream events as JSON objects, one per line, until the client or the cluster ends it.
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" })
    res.flushHeaders()
    const since = Number(query.get("resourceVersion") ?? "0") || 0
    const watcher: Watcher = { namespace, selector, res }
    this.watchers.add(watcher)
    this.watchesChanged()
    const stop = () => {
      if (this.watchers.delete(watcher)) this.watchesChanged()
      if (!res.writableEnded) res.end()
    }
    // Not req "close": that fires as soon as the (empty) request body has been read.
    res.on("close", stop)
    const timeout = Number(query.get("timeoutSeconds") ?? "0")
    if (timeout > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        stop()
      }, timeout * 1000)
      this.timers.add(timer)
    }
    for (const p of selected) if (since === 0 || p.resourceVersion > since) this.writeEvent(watcher, "ADDED", p)
  }

  private writeEvent(watcher: Watcher, type: string, pod: PodRecord): void {
    if (watcher.res.writableEnded) return
    watcher.res.write(JSON.stringify({ type, object: this.podView(pod) }) + "\n")
  }

  private notify(pod: PodRecord, type: "ADDED" | "MODIFIED" | "DELETED"): void {
    for (const watcher of this.watchers) {
      if (watcher.namespace !== undefined && watcher.namespace !== pod.namespace) continue
      if (!matches(watcher.selector, pod.labels)) continue
      this.writeEvent(watcher, type, pod)
    }
  }

  // -----------------------------------------------------------------------------------------------
  // port-forward upgrades

  private rawStatus(socket: Stream.Duplex, code: number, body: Obj.Json): void {
    const text = JSON.stringify(body)
    socket.end(
      `HTTP/1.1 ${code} ${Obj.STATUS_TEXT[code] ?? "Error"}\r\n` +
        "Content-Type: application/json\r\n" +
        "Cache-Control: no-cache, private\r\n" +
        `Content-Length: ${Buffer.byteLength(text)}\r\n` +
        "Connection: close\r\n\r\n" +
        text
    )
  }

  private faultStatus(code: number, namespace: string, name: string): Obj.Json {
    switch (code) {
      case 403:
        return Obj.forbidden({ resource: "pods" }, name, "create", namespace, "portforward")
      case 404:
        return Obj.notFound({ resource: "pods" }, name)
      default:
        return Obj.status(code)
    }
  }

  private onUpgrade(req: Http.IncomingMessage, socket: Stream.Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy())
    if (this.closing) {
      socket.destroy()
      return
    }
    const url = new URL(req.url ?? "/", this.url)
    const upgrade = (req.headers.upgrade ?? "").toLowerCase()
    const protocols = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim()).filter((p) =>
      p.length > 0
    )
    this.debug(`UPGRADE ${req.method} ${req.url} upgrade=${upgrade} protocols=${protocols.join("|")}`)
    const m = PORTFORWARD_PATH.exec(url.pathname)
    this.board.value.upgradeRequests++
    this.board.changed()
    if (!m) return this.rawStatus(socket, 404, Obj.status(404, { details: {} }))
    const namespace = decodeURIComponent(m[1]!)
    const name = decodeURIComponent(m[2]!)

    const fault = this.fault
    if (fault !== undefined) {
      switch (fault._tag) {
        case "Status":
          return this.rawStatus(socket, fault.code, this.faultStatus(fault.code, namespace, name))
        case "CloseWithoutStatus":
          socket.destroy()
          return
        case "Hang":
          this.heldSockets.add(socket)
          socket.on("close", () => this.heldSockets.delete(socket))
          socket.resume()
          return
      }
    }

    const podKey = key(namespace, name)
    const checkPod = (): PodRecord | undefined => {
      const pod = this.pods.get(podKey)
      if (!pod) {
        this.rawStatus(socket, 404, Obj.notFound({ resource: "pods" }, name))
        return undefined
      }
      if (pod.phase !== "Running") {
        this.rawStatus(
          socket,
          400,
          Obj.status(400, {
            message: `unable to upgrade connection: pod ${name} is not running (phase ${pod.phase})`,
            reason: "BadRequest"
          })
        )
        return undefined
      }
      return pod
    }

    if (upgrade === "websocket") {
      const wsKey = req.headers["sec-websocket-key"]
      if (typeof wsKey !== "string" || wsKey.length === 0) {
        return this.rawStatus(socket, 400, Obj.status(400, { message: "missing Sec-WebSocket-Key", reason: "BadRequest" }))
      }
      if (protocols.includes(TUNNEL_PROTOCOL)) {
        if (this.transport === "spdy-only") {
          return this.rawStatus(
            socket,
            400,
            Obj.status(400, {
              message: `unable to upgrade connection: subprotocol "${TUNNEL_PROTOCOL}" is not supported`,
              reason: "BadRequest"
            })
          )
        }
        const pod = checkPod()
        if (!pod) return
        socket.write(WebSocket.handshakeResponse(wsKey, TUNNEL_PROTOCOL))
        this.board.value.sessions.tunnel++
        this.board.changed()
        this.startSpdy(pod, socket, head, "tunnel")
        return
      }
      if (protocols.length === 0 || protocols.includes(CHANNEL_PROTOCOL)) {
        const ports = parsePorts(url.searchParams.getAll("ports"))
        if (typeof ports === "string") {
          return this.rawStatus(socket, 400, Obj.status(400, { message: ports, reason: "BadRequest" }))
        }
        const pod = checkPod()
        if (!pod) return
        socket.write(WebSocket.handshakeResponse(wsKey, protocols.length === 0 ? undefined : CHANNEL_PROTOCOL))
        this.board.value.sessions.websocket++
        this.board.changed()
        this.startChannel(pod, socket, head, ports)
        return
      }
      return this.rawStatus(
        socket,
        400,
        Obj.status(400, {
          message: `unable to upgrade connection: none of the requested subprotocols are supported: ${protocols.join(", ")}`,
          reason: "BadRequest"
        })
      )
    }
    if (upgrade.includes("spdy/3.1")) {
      const pod = checkPod()
      if (!pod) return
      socket.write(SPDY_101)
      this.board.value.sessions.spdy++
      this.board.changed()
      this.startSpdy(pod, socket, head, "spdy")
      return
    }
    return this.rawStatus(
      socket,
      400,
      Obj.status(400, { message: `unable to upgrade connection: unsupported upgrade "${upgrade}"`, reason: "BadRequest" })
    )
  }

  private hostFor(pod: PodRecord): ForwardHost {
    const podKey = key(pod.namespace, pod.name)
    const uid = pod.uid
    return {
      counters: this.board.value,
      countersChanged: this.board.changed,
      pod: { namespace: pod.namespace, name: pod.name, uid },
      resolve: (port) => this.resolvePort(podKey, uid, port),
      debug: debugEnabled ? (message) => this.debug(message) : undefined
    }
  }

  private resolvePort(podKey: string, uid: string, port: number): Promise<Address | undefined> {
    const pod = this.pods.get(podKey)
    if (!pod || pod.uid !== uid) return Promise.resolve(undefined)
    let backend: Backend | undefined
    for (const container of pod.spec.containers ?? []) {
      for (const p of container.ports) if (p.containerPort === port) backend ??= p.backend
    }
    return backend === undefined ? Promise.resolve(undefined) : this.backends.resolve(backend)
  }

  private register(pod: PodRecord, drop: () => void): () => void {
    const session: LiveSession = { podKey: key(pod.namespace, pod.name), drop }
    this.sessions.add(session)
    this.board.value.activeSessions++
    this.board.changed()
    let done = false
    return () => {
      if (done) return
      done = true
      this.sessions.delete(session)
      this.board.value.activeSessions--
      this.board.changed()
    }
  }

  private startSpdy(pod: PodRecord, socket: Stream.Duplex, head: Buffer, kind: "spdy" | "tunnel"): void {
    const host = this.hostFor(pod)
    let session: SpdySession | undefined = undefined
    let unregister = () => {}
    const events = {
      onData: (chunk: Buffer) => session?.feed(chunk),
      onDrain: () => session?.drained(),
      onClose: () => {
        session?.closedByTransport()
        unregister()
        this.debug(`${kind} session to ${host.pod.name} closed`)
      }
    }
    let transport: Transport
    if (kind === "spdy") {
      transport = socketTransport(socket, events)
      session = new SpdySession(transport, host)
      if (head.length > 0) session.feed(head)
    } else {
      const tunnel = tunnelTransport(socket, events)
      transport = tunnel.transport
      session = new SpdySession(transport, host)
      tunnel.connection.feed(head)
    }
    // The upgraded socket is a net.Socket; frames are small and latency matters more than batching.
    ;(socket as Net.Socket).setNoDelay?.(true)
    unregister = this.register(pod, () => transport.destroy())
  }

  private startChannel(pod: PodRecord, socket: Stream.Duplex, head: Buffer, ports: ReadonlyArray<number>): void {
    let unregister = () => {}
    const session = new ChannelSession(socket, ports, this.hostFor(pod), () => unregister())
    unregister = this.register(pod, () => session.ws.destroy())
    this.board.value.streams += 2 * ports.length
    this.board.changed()
    session.start()
    session.ws.feed(head)
  }
}

/** Parses `ports` query values (repeated and/or comma-separated), as kubelet does. */
const parsePorts = (values: ReadonlyArray<string>): Array<number> | string => {
  const ports: Array<number> = []
  for (const value of values) {
    for (const part of value.split(",")) {
      const text = part.trim()
      if (text === "") continue
      const port = parsePort(text)
      if (port === undefined) return invalidPortCause(text)
      ports.push(port)
    }
  }
  return ports.length === 0 ? "query parameter \"port\" is required" : ports
}

/** The kubeconfig for a server URL (YAML; `insecure-skip-tls-verify` keeps client-node happy with http). */
export const kubeconfig = (server: string): string =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: fake",
    "  cluster:",
    `    server: ${server}`,
    "    insecure-skip-tls-verify: true",
    "contexts:",
    "- name: fake",
    "  context:",
    "    cluster: fake",
    "    user: fake",
    "    namespace: default",
    "current-context: fake",
    "preferences: {}",
    "users:",
    "- name: fake",
    "  user: {}",
    ""
  ].join("\n")
