/**
 * Targets, resolved as kubectl resolves them (kubectl's `portforward.go` and
 * `polymorphichelpers`), pure: which pod a service or workload stands for, and which container
 * port each requested port reaches. The REST calls around it are in `resolve.ts`.
 *
 * - `svc/`, `deployment/`, `statefulset/`: the pods their selector matches, ordered as
 *   kubectl orders them (`sort.Reverse(podutils.ActivePods)`): scheduled before unscheduled,
 *   Running before Unknown before Pending, ready before not ready, ready longer before ready
 *   shorter, fewer container restarts before more, older before newer. kubectl takes the first.
 * - a service port (by number or name) maps to its `targetPort`: a number as is (0 or absent:
 *   the service port), a name looked up in the pod's container ports, then its init
 *   containers'; a headless service (`clusterIP: None`) is not mapped.
 * - other targets: a named port is looked up in the pod's container ports.
 *
 * @internal
 */

/** The parts of a pod that resolution reads. */
export interface Pod {
  readonly metadata: { readonly name: string; readonly uid?: string; readonly creationTimestamp?: string }
  readonly spec?: {
    readonly nodeName?: string
    readonly containers?: ReadonlyArray<Container>
    readonly initContainers?: ReadonlyArray<Container>
  }
  readonly status?: {
    readonly phase?: string
    readonly conditions?: ReadonlyArray<
      { readonly type: string; readonly status: string; readonly lastTransitionTime?: string }
    >
    readonly containerStatuses?: ReadonlyArray<{ readonly restartCount?: number }>
  }
}

interface Container {
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly containerPort: number }>
}

/** The parts of a service that resolution reads. */
export interface Service {
  readonly metadata: { readonly name: string }
  readonly spec?: {
    readonly selector?: Readonly<Record<string, string>>
    readonly clusterIP?: string
    readonly ports?: ReadonlyArray<
      { readonly name?: string; readonly port: number; readonly targetPort?: number | string }
    >
  }
}

/** A label selector as a workload writes it. */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>
  readonly matchExpressions?: ReadonlyArray<
    { readonly key: string; readonly operator: string; readonly values?: ReadonlyArray<string> }
  >
}

/** A selector in the form of the `labelSelector` query parameter, or why there is none. */
export const selectorQuery = (selector: LabelSelector | undefined): string | undefined => {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const e of selector?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(",")
    if (e.operator === "In") parts.push(`${e.key} in (${values})`)
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`)
    else if (e.operator === "Exists") parts.push(e.key)
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`)
  }
  return parts.length === 0 ? undefined : parts.join(",")
}

const phaseRank = (pod: Pod): number =>
  ({ Pending: 0, Unknown: 1, Running: 2 } as Record<string, number>)[pod.status?.phase ?? ""] ?? 0

const readyCondition = (pod: Pod) => pod.status?.conditions?.find((c) => c.type === "Ready")

/** Whether the pod's Ready condition is True. */
export const isReady = (pod: Pod): boolean => readyCondition(pod)?.status === "True"

const time = (text: string | undefined): number => text === undefined ? 0 : Date.parse(text) || 0

const restarts = (pod: Pod): number =>
  Math.max(0, ...(pod.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0))

/** kubectl's `ActivePods` "less active than", reversed: negative when `a` comes first. */
export const compareForForwarding = (a: Pod, b: Pod): number => {
  const scheduled = (p: Pod) => (p.spec?.nodeName ?? "").length > 0
  if (scheduled(a) !== scheduled(b)) return scheduled(a) ? -1 : 1
  if (phaseRank(a) !== phaseRank(b)) return phaseRank(b) - phaseRank(a)
  if (isReady(a) !== isReady(b)) return isReady(a) ? -1 : 1
  if (isReady(a)) {
    const readySince = time(readyCondition(a)?.lastTransitionTime) - time(readyCondition(b)?.lastTransitionTime)
    if (readySince !== 0) return readySince // ready longer (earlier) first
  }
  if (restarts(a) !== restarts(b)) return restarts(a) - restarts(b)
  return time(a.metadata.creationTimestamp) - time(b.metadata.creationTimestamp) // older first
}

/** The pod kubectl would pick among `pods`, if any. */
export const pickPod = (pods: ReadonlyArray<Pod>): Pod | undefined => [...pods].sort(compareForForwarding)[0]

/** Why a port could not be mapped, in kubectl's words. */
export interface PortProblem {
  readonly remote: number | string
  readonly detail: string
}

const namedPort = (pod: Pod, name: string): number | undefined => {
  for (const list of [pod.spec?.containers, pod.spec?.initContainers]) {
    for (const c of list ?? []) {
      const port = c.ports?.find((p) => p.name === name)
      if (port !== undefined) return port.containerPort
    }
  }
  return undefined
}

/** The container port a pod target's `remote` reaches. */
export const podPort = (pod: Pod, remote: number | string): number | PortProblem => {
  if (typeof remote === "number") return remote
  return namedPort(pod, remote) ??
    { remote, detail: `Pod '${pod.metadata.name}' does not have a named port '${remote}'` }
}

/**
 * The container port a service target's `remote` reaches on `pod`. The problems in kubectl's
 * words (`util.LookupServicePortNumberByName`, `LookupContainerPortNumberByServicePort`), and
 * with the port kubectl's error names: a target port name the pod lacks is that name.
 */
export const servicePort = (service: Service, pod: Pod, remote: number | string): number | PortProblem => {
  if (service.spec?.clusterIP === "None") return podPort(pod, remote)
  const entry = service.spec?.ports?.find((p) => typeof remote === "number" ? p.port === remote : p.name === remote)
  if (entry === undefined) {
    const detail = typeof remote === "number"
      ? `Service ${service.metadata.name} does not have a service port ${remote}`
      : `Service '${service.metadata.name}' does not have a named port '${remote}'`
    return { remote, detail }
  }
  const target = entry.targetPort
  if (target === undefined || target === 0) return entry.port
  if (typeof target === "number") return target
  return namedPort(pod, target) ??
    { remote: target, detail: `Pod '${pod.metadata.name}' does not have a named port '${target}'` }
}
