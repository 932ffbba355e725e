/**
 * The JSON the fake API server returns: discovery documents, Status bodies and objects
 * (Pod, Service, Deployment, StatefulSet, Namespace), shaped like a real v1.27–v1.33 server's.
 *
 * @internal
 */

/** A JSON object. */
export type Json = { readonly [key: string]: unknown }

// -------------------------------------------------------------------------------------------------
// Status

const REASONS: Record<number, readonly [reason: string, message: string]> = {
  400: ["BadRequest", "the server rejected our request for an unknown reason"],
  401: ["Unauthorized", "Unauthorized"],
  403: ["Forbidden", "forbidden"],
  404: ["NotFound", "the server could not find the requested resource"],
  405: ["MethodNotAllowed", "the server does not allow this method on the requested resource"],
  409: ["Conflict", "the server reported a conflict"],
  410: ["Expired", "the resource has expired"],
  422: ["Invalid", "the server rejected our request due to an error in our request"],
  429: ["TooManyRequests", "the server has received too many requests and has asked us to try again later"],
  500: ["InternalError", "an error on the server has prevented the request from succeeding"],
  503: ["ServiceUnavailable", "the server is currently unable to handle the request"],
  504: [
    "Timeout",
    "the server was unable to return a response in the time allotted, but may still be processing the request"
  ]
}

/** The HTTP reason phrases used in raw status lines. */
export const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout"
}

/** A `Status` failure body (key order as the real server writes it). */
export const status = (
  code: number,
  options: { readonly message?: string; readonly reason?: string; readonly details?: Json } = {}
): Json => {
  const [reason, message] = REASONS[code] ??
    ["", `an error on the server (${code}) has prevented the request from succeeding`]
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: options.message ?? message,
    ...(options.reason ?? reason ? { reason: options.reason ?? reason } : {}),
    ...(options.details !== undefined ? { details: options.details } : {}),
    code
  }
}

/** What a resource is called in messages and `details`: plural name plus optional group. */
export interface ResourceName {
  readonly resource: string
  readonly group?: string
}

const qualified = (r: ResourceName) => r.group ? `${r.resource}.${r.group}` : r.resource

const details = (r: ResourceName, name: string): Json => ({
  name,
  ...(r.group ? { group: r.group } : {}),
  kind: r.resource
})

/** `404 NotFound` for a named object, e.g. `pods "x" not found`. */
export const notFound = (r: ResourceName, name: string): Json =>
  status(404, { message: `${qualified(r)} "${name}" not found`, reason: "NotFound", details: details(r, name) })

/** `403 Forbidden` as RBAC writes it for the anonymous user. */
export const forbidden = (
  r: ResourceName,
  name: string,
  verb: string,
  namespace: string,
  subresource?: string
): Json =>
  status(403, {
    message: `${qualified(r)} "${name}" is forbidden: User "system:anonymous" cannot ${verb} resource "${r.resource}${
      subresource ? `/${subresource}` : ""
    }" in API group "${r.group ?? ""}" in the namespace "${namespace}"`,
    reason: "Forbidden",
    details: details(r, name)
  })

// -------------------------------------------------------------------------------------------------
// discovery

/** `/version` for a `vMAJOR.MINOR.PATCH` string. */
export const version = (gitVersion: string): Json => {
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion)
  return {
    major: m?.[1] ?? "1",
    minor: m?.[2] ?? "33",
    gitVersion,
    gitCommit: "0000000000000000000000000000000000000000",
    gitTreeState: "clean",
    buildDate: "2025-01-01T00:00:00Z",
    goVersion: "go1.24.0",
    compiler: "gc",
    platform: "linux/amd64"
  }
}

/** `/api`. */
export const apiVersions = (serverAddress: string): Json => ({
  kind: "APIVersions",
  versions: ["v1"],
  serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }]
})

const APPS_GROUP: Json = {
  name: "apps",
  versions: [{ groupVersion: "apps/v1", version: "v1" }],
  preferredVersion: { groupVersion: "apps/v1", version: "v1" }
}

/** `/apis`. */
export const apiGroupList: Json = { kind: "APIGroupList", apiVersion: "v1", groups: [APPS_GROUP] }

/** `/apis/apps`. */
export const appsGroup: Json = { kind: "APIGroup", apiVersion: "v1", ...APPS_GROUP }

const RW_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

/** `/api/v1`. */
export const coreV1Resources: Json = {
  kind: "APIResourceList",
  groupVersion: "v1",
  resources: [
    {
      name: "namespaces",
      singularName: "namespace",
      namespaced: false,
      kind: "Namespace",
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      shortNames: ["ns"]
    },
    {
      name: "pods",
      singularName: "pod",
      namespaced: true,
      kind: "Pod",
      verbs: RW_VERBS,
      shortNames: ["po"],
      categories: ["all"]
    },
    {
      name: "pods/portforward",
      singularName: "",
      namespaced: true,
      kind: "PodPortForwardOptions",
      verbs: ["create", "get"]
    },
    { name: "pods/status", singularName: "", namespaced: true, kind: "Pod", verbs: ["get", "patch", "update"] },
    {
      name: "services",
      singularName: "service",
      namespaced: true,
      kind: "Service",
      verbs: RW_VERBS,
      shortNames: ["svc"],
      categories: ["all"]
    }
  ]
}

/** `/apis/apps/v1`. */
export const appsV1Resources: Json = {
  kind: "APIResourceList",
  apiVersion: "v1",
  groupVersion: "apps/v1",
  resources: [
    {
      name: "deployments",
      singularName: "deployment",
      namespaced: true,
      kind: "Deployment",
      verbs: RW_VERBS,
      shortNames: ["deploy"],
      categories: ["all"]
    },
    {
      name: "statefulsets",
      singularName: "statefulset",
      namespaced: true,
      kind: "StatefulSet",
      verbs: RW_VERBS,
      shortNames: ["sts"],
      categories: ["all"]
    }
  ]
}

// -------------------------------------------------------------------------------------------------
// objects

/** Common object metadata. */
export interface Meta {
  readonly name: string
  readonly namespace: string
  readonly uid: string
  readonly resourceVersion: number
  readonly creationTimestamp: string
  readonly labels?: Readonly<Record<string, string>>
}

const metadata = (meta: Meta, extra: Json = {}): Json => ({
  name: meta.name,
  namespace: meta.namespace,
  uid: meta.uid,
  resourceVersion: String(meta.resourceVersion),
  creationTimestamp: meta.creationTimestamp,
  ...(meta.labels && Object.keys(meta.labels).length > 0 ? { labels: meta.labels } : {}),
  ...extra
})

/** Everything needed to render a Pod. */
export interface PodView extends Meta {
  readonly phase: string
  readonly podIP: string
  readonly startTime: string
  readonly restartCount: number
  readonly containers: ReadonlyArray<{
    readonly name: string
    readonly ports: ReadonlyArray<{ readonly name?: string | undefined; readonly containerPort: number }>
  }>
}

/** A v1 Pod. */
export const pod = (p: PodView): Json => {
  const running = p.phase === "Running"
  const ready = running ? "True" : "False"
  const condition = (type: string, value: string) => ({
    type,
    status: value,
    lastProbeTime: null,
    lastTransitionTime: p.startTime
  })
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: metadata(p),
    spec: {
      containers: p.containers.map((c) => ({
        name: c.name,
        image: `fake.local/${c.name}:latest`,
        ...(c.ports.length > 0 ?
          {
            ports: c.ports.map((port) => ({
              ...(port.name !== undefined ? { name: port.name } : {}),
              containerPort: port.containerPort,
              protocol: "TCP"
            }))
          } :
          {}),
        resources: {},
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "File",
        imagePullPolicy: "IfNotPresent"
      })),
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      nodeName: "fake-node",
      serviceAccountName: "default",
      schedulerName: "default-scheduler"
    },
    status: {
      phase: p.phase,
      conditions: [
        condition("Initialized", "True"),
        condition("Ready", ready),
        condition("ContainersReady", ready),
        condition("PodScheduled", "True")
      ],
      hostIP: "10.0.0.10",
      ...(running ? { podIP: p.podIP, podIPs: [{ ip: p.podIP }] } : {}),
      startTime: p.startTime,
      containerStatuses: p.containers.map((c) => ({
        name: c.name,
        state: running ? { running: { startedAt: p.startTime } } : { waiting: { reason: "ContainerCreating" } },
        lastState: {},
        ready: running,
        restartCount: p.restartCount,
        image: `fake.local/${c.name}:latest`,
        imageID: "",
        started: running
      })),
      qosClass: "BestEffort"
    }
  }
}

/** Everything needed to render a Service. */
export interface ServiceView extends Meta {
  readonly selector: Readonly<Record<string, string>>
  readonly clusterIP: string
  readonly ports: ReadonlyArray<
    { readonly name?: string | undefined; readonly port: number; readonly targetPort: number | string }
  >
}

/** A v1 Service. */
export const service = (s: ServiceView): Json => ({
  kind: "Service",
  apiVersion: "v1",
  metadata: metadata(s),
  spec: {
    ports: s.ports.map((p) => ({
      ...(p.name !== undefined ? { name: p.name } : {}),
      protocol: "TCP",
      port: p.port,
      targetPort: p.targetPort
    })),
    selector: s.selector,
    clusterIP: s.clusterIP,
    clusterIPs: [s.clusterIP],
    type: "ClusterIP",
    sessionAffinity: "None",
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
    internalTrafficPolicy: "Cluster"
  },
  status: { loadBalancer: {} }
})

/** Everything needed to render a Deployment or StatefulSet. */
export interface WorkloadView extends Meta {
  readonly selector: Readonly<Record<string, string>>
  readonly replicas: number
  readonly ready: number
}

const template = (w: WorkloadView): Json => ({
  metadata: { labels: w.selector },
  spec: { containers: [{ name: "main", image: `fake.local/${w.name}:latest` }] }
})

/** An apps/v1 Deployment. */
export const deployment = (w: WorkloadView): Json => ({
  kind: "Deployment",
  apiVersion: "apps/v1",
  metadata: metadata(w, { generation: 1 }),
  spec: {
    replicas: w.replicas,
    selector: { matchLabels: w.selector },
    template: template(w),
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
    revisionHistoryLimit: 10,
    progressDeadlineSeconds: 600
  },
  status: {
    observedGeneration: 1,
    replicas: w.replicas,
    updatedReplicas: w.replicas,
    readyReplicas: w.ready,
    availableReplicas: w.ready,
    ...(w.replicas - w.ready > 0 ? { unavailableReplicas: w.replicas - w.ready } : {})
  }
})

/** An apps/v1 StatefulSet. */
export const statefulSet = (w: WorkloadView): Json => ({
  kind: "StatefulSet",
  apiVersion: "apps/v1",
  metadata: metadata(w, { generation: 1 }),
  spec: {
    replicas: w.replicas,
    selector: { matchLabels: w.selector },
    template: template(w),
    serviceName: w.name,
    podManagementPolicy: "OrderedReady",
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } }
  },
  status: {
    observedGeneration: 1,
    replicas: w.replicas,
    readyReplicas: w.ready,
    currentReplicas: w.replicas,
    updatedReplicas: w.replicas,
    availableReplicas: w.ready
  }
})

/** A v1 Namespace (every namespace exists in the fake cluster). */
export const namespace = (name: string, creationTimestamp: string): Json => ({
  kind: "Namespace",
  apiVersion: "v1",
  metadata: {
    name,
    uid: `ns-${name}`,
    resourceVersion: "1",
    creationTimestamp,
    labels: { "kubernetes.io/metadata.name": name }
  },
  spec: { finalizers: ["kubernetes"] },
  status: { phase: "Active" }
})

/** A list object; items drop their own kind/apiVersion as on the real server. */
export const list = (kind: string, apiVersion: string, resourceVersion: number, items: ReadonlyArray<Json>): Json => ({
  kind,
  apiVersion,
  metadata: { resourceVersion: String(resourceVersion) },
  items: items.map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest)
})
