/**
 * The cluster's objects: pods, services, deployments and statefulsets, with the resource versions,
 * uids, pod IPs and timestamps the API server would give them. Every pod change is reported (for
 * watches) and every change that ends a pod's live sessions too.
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import type { PodPhase, PodSpec, ServiceSpec, WorkloadSpec } from "../FakeCluster.ts"
import { matches, type Selector } from "./labels.ts"

/** A pod as stored. */
export interface PodRecord {
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

/** A service as stored. */
export interface ServiceRecord {
  readonly spec: ServiceSpec
  readonly namespace: string
  readonly uid: string
  readonly created: string
  readonly clusterIP: string
  readonly resourceVersion: number
}

/** A deployment or statefulset as stored. */
export interface WorkloadRecord {
  readonly spec: WorkloadSpec
  readonly namespace: string
  readonly uid: string
  readonly created: string
  readonly resourceVersion: number
}

/** The workload kinds of `apps/v1`. */
export type WorkloadKind = "deployments" | "statefulsets"

/** A watch event type. */
export type PodEvent = "ADDED" | "MODIFIED" | "DELETED"

/** What the store reports. */
export interface StoreEvents {
  /** A pod changed (after the change). */
  readonly podChanged: (pod: PodRecord, type: PodEvent) => void
  /** The pod's live port-forward sessions must end (it is being replaced, deleted or restarted). */
  readonly endSessions: (podKey: string) => void
}

/** `namespace/name`. */
export const key = (namespace: string, name: string): string => `${namespace}/${name}`

/** An RFC 3339 timestamp without fractions, as the API server writes them. */
const timestamp = (): string => new Date().toISOString().replace(/\.\d+Z$/, "Z")

/** The objects of one cluster. */
export class Store {
  private readonly events: StoreEvents
  private readonly pods = new Map<string, PodRecord>()
  private readonly services = new Map<string, ServiceRecord>()
  private readonly workloads: Record<WorkloadKind, Map<string, WorkloadRecord>> = {
    deployments: new Map(),
    statefulsets: new Map()
  }
  /** When the cluster started (services, workloads and namespaces carry it). */
  readonly created = timestamp()
  private version = 1
  private nextIp = 10

  constructor(events: StoreEvents) {
    this.events = events
  }

  /** The latest resource version (of lists). */
  get resourceVersion(): number {
    return this.version
  }

  private bump(): number {
    return ++this.version
  }

  // ---------------------------------------------------------------------------------------------
  // reads

  /** A pod, or undefined. */
  pod(namespace: string, name: string): PodRecord | undefined {
    return this.pods.get(key(namespace, name))
  }

  /** The pods of a namespace (all when undefined) that match `selector`. */
  selectPods(namespace: string | undefined, selector: Selector): Array<PodRecord> {
    return [...this.pods.values()].filter((p) =>
      (namespace === undefined || p.namespace === namespace) && matches(selector, p.labels)
    )
  }

  /** A service, or undefined. */
  service(namespace: string, name: string): ServiceRecord | undefined {
    return this.services.get(key(namespace, name))
  }

  /** The services of a namespace (all when undefined) whose selector matches `selector`. */
  selectServices(namespace: string | undefined, selector: Selector): Array<ServiceRecord> {
    return [...this.services.values()].filter((s) =>
      (namespace === undefined || s.namespace === namespace) && matches(selector, s.spec.selector)
    )
  }

  /** A workload, or undefined. */
  workload(kind: WorkloadKind, namespace: string, name: string): WorkloadRecord | undefined {
    return this.workloads[kind].get(key(namespace, name))
  }

  /** The workloads of a kind in a namespace (all when undefined). */
  listWorkloads(kind: WorkloadKind, namespace: string | undefined): Array<WorkloadRecord> {
    return [...this.workloads[kind].values()].filter((w) => namespace === undefined || w.namespace === namespace)
  }

  /** `default`, `kube-system`, and every namespace a pod or service lives in. */
  namespaces(): Array<string> {
    const names = new Set(["default", "kube-system"])
    for (const p of this.pods.values()) names.add(p.namespace)
    for (const s of this.services.values()) names.add(s.namespace)
    return [...names]
  }

  // ---------------------------------------------------------------------------------------------
  // writes

  /** Adds or replaces a pod (a replaced pod's sessions end). */
  addPod(spec: PodSpec): void {
    const namespace = spec.namespace ?? "default"
    const k = key(namespace, spec.name)
    const previous = this.pods.get(k)
    if (previous) this.events.endSessions(k)
    const record: PodRecord = {
      namespace,
      name: spec.name,
      uid: Crypto.randomUUID(),
      spec,
      labels: { ...spec.labels },
      created: timestamp(),
      podIP: `10.244.0.${this.nextIp++ % 250 + 2}`,
      phase: spec.phase ?? "Running",
      resourceVersion: this.bump(),
      restartCount: 0,
      generation: 0
    }
    this.pods.set(k, record)
    this.events.podChanged(record, previous ? "MODIFIED" : "ADDED")
  }

  /** Deletes a pod and ends its sessions. */
  deletePod(namespace: string, name: string): void {
    const k = key(namespace, name)
    const record = this.pods.get(k)
    if (!record) return
    this.pods.delete(k)
    this.events.endSessions(k)
    record.resourceVersion = this.bump()
    this.events.podChanged(record, "DELETED")
  }

  /** Sets a pod's phase. */
  setPodPhase(namespace: string, name: string, phase: PodPhase): void {
    const record = this.pods.get(key(namespace, name))
    if (!record || record.phase === phase) return
    record.phase = phase
    record.resourceVersion = this.bump()
    this.events.podChanged(record, "MODIFIED")
  }

  /** Takes a pod down for a restart; returns the restart generation, or undefined if absent. */
  restartPod(namespace: string, name: string): number | undefined {
    const k = key(namespace, name)
    const record = this.pods.get(k)
    if (!record) return undefined
    this.events.endSessions(k)
    record.generation++
    record.restartCount++
    record.phase = "Pending"
    record.resourceVersion = this.bump()
    this.events.podChanged(record, "MODIFIED")
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
    const n = this.services.size
    this.services.set(key(namespace, spec.name), {
      spec,
      namespace,
      uid: Crypto.randomUUID(),
      created: this.created,
      clusterIP: spec.clusterIP ?? `10.96.${Math.floor(n / 250)}.${n % 250 + 10}`,
      resourceVersion: this.bump()
    })
  }

  /** Adds or replaces a deployment or statefulset. */
  addWorkload(kind: WorkloadKind, spec: WorkloadSpec): void {
    const namespace = spec.namespace ?? "default"
    this.workloads[kind].set(key(namespace, spec.name), {
      spec,
      namespace,
      uid: Crypto.randomUUID(),
      created: this.created,
      resourceVersion: this.bump()
    })
  }
}
