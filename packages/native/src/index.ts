/**
 * kube-forward's in-process carrier: port forwards that speak the Kubernetes port-forward
 * protocol themselves, without a kubectl process.
 *
 * @since 0.1.0
 */

/**
 * The native carrier and its layers.
 *
 * @since 0.1.0
 */
export * as NativeForwarder from "./NativeForwarder.ts"
