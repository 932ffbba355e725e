/**
 * kube-forward: Kubernetes port forwards as `Scope`-managed Effect resources.
 *
 * @since 0.1.0
 */

/**
 * The spec of a forward: what may be asked for, decoded with Schema before anything starts.
 *
 * @since 0.1.0
 */
export * as ForwardSpec from "./ForwardSpec.ts"

/**
 * The metrics every forward reports (open forwards, time to ready, reconnects, failures).
 *
 * @since 0.2.0
 */
export * as ForwardMetrics from "./ForwardMetrics.ts"

/**
 * The carrier service: one running attempt of a forward (kubectl, or another backend).
 *
 * @since 0.2.0
 */
export * as Forwarder from "./Forwarder.ts"

/**
 * The original API's shape (`pod(name).portForward(local, remote)`) on top of `PortForward`.
 *
 * @since 0.1.0
 */
export * as K8s from "./K8s.ts"

/**
 * The kubectl runner service and its layers.
 *
 * @since 0.1.0
 */
export * as Kubectl from "./Kubectl.ts"

/**
 * The kubectl carrier: each attempt is one `kubectl port-forward` process.
 *
 * @since 0.2.0
 */
export * as KubectlForwarder from "./KubectlForwarder.ts"

/**
 * The local port allocator service and its layers.
 *
 * @since 0.1.0
 */
export * as PortAllocator from "./PortAllocator.ts"

/**
 * The port forward resource.
 *
 * @since 0.1.0
 */
export * as PortForward from "./PortForward.ts"

/**
 * The typed errors of a forward.
 *
 * @since 0.1.0
 */
export * as PortForwardError from "./PortForwardError.ts"

/**
 * Declarative retry schedules for forwards.
 *
 * @since 0.1.0
 */
export * as Retry from "./Retry.ts"
