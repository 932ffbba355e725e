/**
 * Resolving a forward's target against the API server: the pod, and the container port of each
 * requested port (the rules are in `targets.ts`).
 *
 * @internal
 */
import type { ForwardSpec } from "@kube-forward/core/ForwardSpec"
import { PodNotFound, PodNotRunning, PortNotFound } from "@kube-forward/core/PortForwardError"
import { Effect } from "effect"
import type { KubeClient } from "./kubeClient.ts"
import { getJson, type RestError } from "./rest.ts"
import * as Targets from "./targets.ts"

/** Where the bytes of a forward go. */
export interface Resolved {
  readonly pod: string
  /** The pod as the API server described it. */
  readonly podObject: Targets.Pod
  /** The remote ports as the spec asked for them. */
  readonly remotes: ReadonlyArray<number | string>
  /** The container port of each of the spec's ports, in order. */
  readonly ports: ReadonlyArray<number>
  /**
   * For service targets: the service and the pods' label selector, so connections can be spread
   * over every ready pod behind it.
   */
  readonly service: { readonly object: Targets.Service; readonly selector: string } | undefined
}

/** Everything resolution can fail with. */
export type ResolveError = RestError | PodNotRunning | PortNotFound

const enc = encodeURIComponent

const pathOf = (kind: ForwardSpec["target"]["kind"], namespace: string, name: string): string => {
  switch (kind) {
    case "pod":
      return `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`
    case "service":
      return `/api/v1/namespaces/${enc(namespace)}/services/${enc(name)}`
    case "deployment":
      return `/apis/apps/v1/namespaces/${enc(namespace)}/deployments/${enc(name)}`
    case "statefulset":
      return `/apis/apps/v1/namespaces/${enc(namespace)}/statefulsets/${enc(name)}`
  }
}

/** The pods matching `selector` in `namespace`. */
export const listPods = (
  client: KubeClient,
  namespace: string,
  selector: string,
  notFound: (detail: string) => PodNotFound
): Effect.Effect<ReadonlyArray<Targets.Pod>, RestError> =>
  getJson(client, `/api/v1/namespaces/${enc(namespace)}/pods?labelSelector=${enc(selector)}`, notFound).pipe(
    Effect.map((list) => (list as { readonly items?: ReadonlyArray<Targets.Pod> }).items ?? [])
  )

/** The pod a service or workload stands for, as kubectl picks it. */
const podOf = (
  client: KubeClient,
  spec: ForwardSpec,
  namespace: string,
  object: { readonly spec?: { readonly selector?: unknown } }
) =>
  Effect.gen(function*() {
    const notFound = (detail: string) => new PodNotFound({ target: spec.resource, namespace, detail })
    const raw = object.spec?.selector as Targets.LabelSelector | Readonly<Record<string, string>> | undefined
    const selector = spec.target.kind === "service"
      ? Targets.selectorQuery({ matchLabels: raw as Readonly<Record<string, string>> | undefined })
      : Targets.selectorQuery(raw as Targets.LabelSelector | undefined)
    if (selector === undefined) return yield* notFound(`${spec.resource} has no selector`)
    const pod = Targets.pickPod(yield* listPods(client, namespace, selector, notFound))
    if (pod === undefined) return yield* notFound(`no pod matches the selector ${selector} of ${spec.resource}`)
    return { pod, selector }
  })

/** Resolves `spec`'s target in `namespace`: the pod (Running) and the container ports. */
export const resolve = (
  client: KubeClient,
  spec: ForwardSpec,
  namespace: string
): Effect.Effect<Resolved, ResolveError> =>
  Effect.gen(function*() {
    const notFound = (detail: string) => new PodNotFound({ target: spec.resource, namespace, detail })
    const object = yield* getJson(client, pathOf(spec.target.kind, namespace, spec.target.name), notFound)
    const picked = spec.target.kind === "pod"
      ? { pod: object as Targets.Pod, selector: undefined }
      : yield* podOf(client, spec, namespace, object as { readonly spec?: { readonly selector?: unknown } })
    const service = spec.target.kind === "service" ? object as Targets.Service : undefined
    const ports: Array<number> = []
    for (const { remote } of spec.ports) {
      const port = service === undefined
        ? Targets.podPort(picked.pod, remote)
        : Targets.servicePort(service, picked.pod, remote)
      if (typeof port !== "number") {
        return yield* new PortNotFound({ target: spec.resource, remotePort: port.remote, detail: port.detail })
      }
      ports.push(port)
    }
    const phase = picked.pod.status?.phase ?? "Unknown"
    if (phase !== "Running") return yield* new PodNotRunning({ target: spec.resource, namespace, phase })
    return {
      pod: picked.pod.metadata.name,
      podObject: picked.pod,
      remotes: spec.ports.map((p) => p.remote),
      ports,
      service: service !== undefined && picked.selector !== undefined
        ? { object: service, selector: picked.selector }
        : undefined
    }
  })
