/**
 * Stored objects as the API server shows them (the JSON shapes themselves are in `objects.ts`).
 *
 * @internal
 */
import { fromMatchLabels } from "./labels.ts"
import * as Obj from "./objects.ts"
import type { PodRecord, ServiceRecord, Store, WorkloadKind, WorkloadRecord } from "./store.ts"

/** A pod object. */
export const podView = (p: PodRecord): Obj.Json =>
  Obj.pod({
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

/** A service object (`targetPort` defaults to `port`). */
export const serviceView = (s: ServiceRecord): Obj.Json =>
  Obj.service({
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

/** How each workload kind renders, and the kind of its list. */
export const workloadKinds: Record<
  WorkloadKind,
  { readonly render: (view: Obj.WorkloadView) => Obj.Json; readonly list: string }
> = {
  deployments: { render: Obj.deployment, list: "DeploymentList" },
  statefulsets: { render: Obj.statefulSet, list: "StatefulSetList" }
}

/** A deployment or statefulset object, its replica counts from the pods it selects. */
export const workloadView = (store: Store, kind: WorkloadKind, w: WorkloadRecord): Obj.Json => {
  const selected = store.selectPods(w.namespace, fromMatchLabels(w.spec.selector))
  return workloadKinds[kind].render({
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
