/**
 * `@kube-forward/testkit`: a fake Kubernetes API server that real kubectl binaries and WebSocket
 * clients port-forward through, as a Scope-managed Effect resource.
 *
 * @since 0.1.0
 */

/**
 * What answers behind a fake pod's ports (echo, HTTP, sink, source, an address, a handler).
 *
 * @since 0.1.0
 */
export * as Backend from "./Backend.ts"

/**
 * Child processes for tests: scoped spawn with an argument array, lines, waits for a line or
 * the exit, and the whole process group ended when the scope closes.
 *
 * @since 0.1.0
 */
export * as Child from "./Child.ts"

/**
 * The fake cluster: REST, SPDY/3.1, the SPDY-over-WebSocket tunnel and `v4.channel.k8s.io`.
 *
 * @since 0.1.0
 */
export * as FakeCluster from "./FakeCluster.ts"

/**
 * Finds the real kubectl binaries on the machine (one per minor version) for conformance matrices.
 *
 * @since 0.1.0
 */
export * as KubectlBinaries from "./KubectlBinaries.ts"

/**
 * Leak checks for tests: live processes (zombies excluded), leftover port-forwards, bindable ports.
 *
 * @since 0.1.0
 */
export * as Processes from "./Processes.ts"

/**
 * A small TCP client for tests: send, half-close, collect what comes back.
 *
 * @since 0.2.0
 */
export * as TcpClient from "./TcpClient.ts"
