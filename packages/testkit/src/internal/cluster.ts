/**
 * The fake API server, put together: the HTTP server on 127.0.0.1 and its temp files, the object
 * store, REST routes and watches, upgrade negotiation, faults, sessions and counters, each in a
 * module of its own. The public `FakeCluster` module wraps this in Effect.
 *
 * @internal
 */
import { Duration } from "effect"
import * as Fs from "node:fs/promises"
import * as Http from "node:http"
import * as Https from "node:https"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Stream from "node:stream"
import type * as Tls from "node:tls"
import type { Backend } from "../Backend.ts"
import type {
  Counters,
  KubeconfigOptions,
  Options,
  PodPhase,
  PodSpec,
  ServiceSpec,
  TransportMode,
  UpgradeFault,
  WorkloadSpec
} from "../FakeCluster.ts"
import * as Auth from "./auth.ts"
import { BackendPool } from "./backends.ts"
import { CounterBoard } from "./counters.ts"
import { Kubeconfigs, makeTls, type Tls as TlsMaterial } from "./credentials.ts"
import { Faults } from "./faults.ts"
import type { Address, ForwardHost } from "./host.ts"
import * as Rest from "./rest.ts"
import { Sessions } from "./sessions.ts"
import { key, type PodRecord, Store } from "./store.ts"
import { Timers } from "./timers.ts"
import * as Upgrade from "./upgrade.ts"
import { Watches } from "./watches.ts"

const debugEnabled = /^(1|true|yes)$/i.test(process.env["KUBE_FORWARD_TESTKIT_DEBUG"] ?? "")

/** The cluster behind a `FakeCluster`. */
export class Cluster {
  readonly url: string
  readonly dir: string
  readonly kubeconfigPath: string
  readonly cacheDir: string
  readonly certificateAuthority: string | undefined

  private readonly server: Http.Server
  private readonly auth: Options["auth"]
  private readonly kubeconfigs: Kubeconfigs
  private readonly board = new CounterBoard()
  private readonly timers = new Timers()
  private readonly watches = new Watches(this.board, this.timers)
  private readonly sessions = new Sessions(this.board)
  private readonly faults = new Faults()
  private readonly backends = new BackendPool()
  private readonly store = new Store({
    podChanged: (pod, type) => this.watches.notify(pod, type),
    endSessions: (podKey) => this.sessions.dropFor(podKey)
  })
  private readonly rest: Rest.RestContext
  private transport: TransportMode
  private readonly containerdGraceMs: number | undefined
  private closing = false

  private constructor(server: Http.Server, port: number, dir: string, options: Options, tls: TlsMaterial | undefined) {
    this.server = server
    this.url = `${tls ? "https" : "http"}://127.0.0.1:${port}`
    this.auth = options.auth
    this.certificateAuthority = tls?.ca.cert
    this.kubeconfigs = new Kubeconfigs(dir, this.url, tls, options.auth?.users ?? [])
    this.dir = dir
    this.kubeconfigPath = Path.join(dir, "kubeconfig")
    this.cacheDir = Path.join(dir, "cache")
    this.transport = options.transport ?? "tunnel"
    this.containerdGraceMs = options.streamEnd === undefined || options.streamEnd === "propagate"
      ? undefined
      : Duration.toMillis(Duration.fromInputUnsafe(options.streamEnd.grace ?? Duration.seconds(1)))
    this.rest = {
      store: this.store,
      watches: this.watches,
      version: options.version ?? "v1.33.1",
      serverAddress: `127.0.0.1:${port}`
    }
    for (const pod of options.pods ?? []) this.store.addPod(pod)
    for (const service of options.services ?? []) this.store.addService(service)
    for (const d of options.deployments ?? []) this.store.addWorkload("deployments", d)
    for (const s of options.statefulsets ?? []) this.store.addWorkload("statefulsets", s)
    server.on("request", (req, res) => this.onRequest(req, res))
    server.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head))
  }

  /** Listens on 127.0.0.1:0 (HTTP, or HTTPS with `tls`) and writes the kubeconfig. */
  static async start(options: Options): Promise<Cluster> {
    const tls = await makeTls(options)
    const dir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "kube-forward-testkit-"))
    const server = tls === undefined ?
      Http.createServer({ keepAliveTimeout: 5000 }) :
      Https.createServer({
        keepAliveTimeout: 5000,
        key: tls.server.key,
        cert: tls.server.cert,
        ca: [tls.ca.cert],
        // kube-apiserver asks for a client certificate and verifies it in its x509 authenticator,
        // so a missing or foreign one is a 401 there, not a failed handshake
        requestCert: true,
        rejectUnauthorized: false
      })
    try {
      const port = await new Promise<number>((resolve, reject) => {
        server.once("error", reject)
        server.listen({ host: "127.0.0.1", port: 0 }, () => {
          server.off("error", reject)
          resolve((server.address() as { port: number }).port)
        })
      })
      const cluster = new Cluster(server, port, dir, options, tls)
      await Fs.mkdir(cluster.cacheDir, { recursive: true })
      await cluster.kubeconfigs.write({}, cluster.kubeconfigPath)
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
    this.timers.clear()
    this.watches.close()
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
  // controls (see FakeCluster)

  /** Writes another kubeconfig and returns its path. */
  writeKubeconfig(options: KubeconfigOptions): Promise<string> {
    return this.kubeconfigs.write(options)
  }

  /** Adds or replaces a pod. */
  addPod(spec: PodSpec): void {
    this.store.addPod(spec)
  }

  /** Deletes a pod and drops its sessions. */
  deletePod(namespace: string, name: string): void {
    this.store.deletePod(namespace, name)
  }

  /** Sets a pod's phase. */
  setPodPhase(namespace: string, name: string, phase: PodPhase): void {
    this.store.setPodPhase(namespace, name, phase)
  }

  /** Takes a pod down for a restart; returns the restart generation, or undefined if absent. */
  restartPod(namespace: string, name: string): number | undefined {
    return this.store.restartPod(namespace, name)
  }

  /** Brings a restarted pod back, unless it was restarted again or replaced since. */
  finishRestart(namespace: string, name: string, generation: number): void {
    this.store.finishRestart(namespace, name, generation)
  }

  /** Adds or replaces a service. */
  addService(spec: ServiceSpec): void {
    this.store.addService(spec)
  }

  /** Adds or replaces a deployment. */
  addDeployment(spec: WorkloadSpec): void {
    this.store.addWorkload("deployments", spec)
  }

  /** Adds or replaces a statefulset. */
  addStatefulSet(spec: WorkloadSpec): void {
    this.store.addWorkload("statefulsets", spec)
  }

  /** Switches the transport mode. */
  setTransport(mode: TransportMode): void {
    this.transport = mode
  }

  /** Sets or clears the upgrade fault. */
  setUpgradeFault(fault: UpgradeFault | undefined): void {
    this.faults.setUpgrade(fault)
  }

  /** Sets the REST delay in milliseconds. */
  setRestDelay(ms: number): void {
    this.faults.setRestDelay(ms)
  }

  /** Drops every live session (and every held upgrade). */
  dropSessions(): void {
    this.sessions.dropAll()
    this.faults.releaseHeld()
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

  // -----------------------------------------------------------------------------------------------
  // HTTP

  private onRequest(req: Http.IncomingMessage, res: Http.ServerResponse): void {
    this.board.value.restRequests++
    this.board.changed()
    req.resume()
    this.debug(`${req.method} ${req.url} (accept: ${req.headers.accept ?? ""})`)
    const rejection = this.authCheck(req)
    if (rejection !== undefined) return Rest.send(res, rejection.code, rejection.body)
    const answer = () => (this.closing ? res.destroy() : Rest.handle(this.rest, req, res))
    const delay = this.faults.restDelayMs
    if (delay > 0) this.timers.after(delay, answer)
    else answer()
  }

  private onUpgrade(req: Http.IncomingMessage, socket: Stream.Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy())
    if (this.closing) {
      socket.destroy()
      return
    }
    this.debug(
      `UPGRADE ${req.method} ${req.url} upgrade=${req.headers.upgrade ?? ""} protocols=${
        req.headers["sec-websocket-protocol"] ?? ""
      }`
    )
    this.board.value.upgradeRequests++
    this.board.changed()
    const rejection = this.authCheck(req)
    if (rejection !== undefined) return void socket.end(Upgrade.statusResponse(rejection.code, rejection.body))
    const decision = Upgrade.negotiate(
      { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers },
      {
        mode: this.transport,
        fault: this.faults.upgrade,
        podPhase: (namespace, name) => this.store.pod(namespace, name)?.phase
      }
    )
    switch (decision._tag) {
      case "Reject":
        return void socket.end(Upgrade.statusResponse(decision.code, decision.body, decision.headers))
      case "Drop":
        return void socket.destroy()
      case "Hold":
        return this.faults.hold(socket)
      case "Accept":
        return this.accept(decision, socket, head)
    }
  }

  /**
   * Authentication and authorization (with `auth`), before any handler as in kube-apiserver's
   * filter chain; counts the rejections.
   */
  private authCheck(req: Http.IncomingMessage): Auth.Rejection | undefined {
    if (this.auth === undefined) return undefined
    const rejection = Auth.check(this.auth, {
      authorization: req.headers.authorization,
      peer: peerOf(req),
      attributes: Auth.attributes(req.method ?? "GET", new URL(req.url ?? "/", "http://fake"))
    })
    if (rejection !== undefined) {
      if (rejection.code === 401) this.board.value.unauthorized++
      else this.board.value.forbidden++
      this.board.changed()
      this.debug(`${req.method} ${req.url}: ${rejection.code}`)
    }
    return rejection
  }

  /** Writes the `101` (alone) and starts the session. */
  private accept(decision: Upgrade.Decision & { readonly _tag: "Accept" }, socket: Stream.Duplex, head: Buffer): void {
    const pod = this.store.pod(decision.namespace, decision.name)!
    socket.write(decision.response)
    const podKey = key(pod.namespace, pod.name)
    const host = this.hostFor(pod)
    if (decision.transport === "websocket") this.sessions.openChannel(podKey, host, socket, head, decision.ports)
    else this.sessions.openSpdy(podKey, host, socket, head, decision.transport)
  }

  // -----------------------------------------------------------------------------------------------
  // the pods' ports

  private hostFor(pod: PodRecord): ForwardHost {
    const { namespace, name, uid } = pod
    return {
      counters: this.board.value,
      countersChanged: this.board.changed,
      pod: { namespace, name, uid },
      resolve: (port) => this.resolvePort(namespace, name, uid, port),
      containerdGraceMs: this.containerdGraceMs,
      debug: debugEnabled ? (message) => this.debug(message) : undefined
    }
  }

  /** Where a pod's container port is served (undefined when no container declares it, or the pod was replaced). */
  private resolvePort(namespace: string, name: string, uid: string, port: number): Promise<Address | undefined> {
    const pod = this.store.pod(namespace, name)
    if (!pod || pod.uid !== uid) return Promise.resolve(undefined)
    let backend: Backend | undefined
    for (const container of pod.spec.containers ?? []) {
      for (const p of container.ports) if (p.containerPort === port) backend ??= p.backend
    }
    return backend === undefined ? Promise.resolve(undefined) : this.backends.resolve(backend)
  }
}

/** The TLS client certificate of a request, as the x509 authenticator sees it. */
const peerOf = (req: Http.IncomingMessage): Auth.Peer => {
  const socket = req.socket as Partial<Tls.TLSSocket>
  if (typeof socket.getPeerCertificate !== "function") {
    return { presented: false, verified: false, commonName: undefined }
  }
  const cert = socket.getPeerCertificate()
  const presented = cert !== null && Object.keys(cert).length > 0
  const cn = presented ? cert.subject?.CN : undefined
  return {
    presented,
    verified: presented && socket.authorized === true,
    commonName: Array.isArray(cn) ? cn[0] : cn
  }
}
