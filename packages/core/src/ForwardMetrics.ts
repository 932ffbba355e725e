/**
 * The metrics every forward reports, whatever carries it. Each series has a `backend`
 * attribute (`kubectl`, `native`, …); the failure counter also has an `error` attribute (the
 * error's tag). Export them with Effect's own exporters, e.g. `PrometheusMetrics` or
 * `OtlpMetrics` from `effect/observability` (see `examples/observability.ts`), or read them
 * with `Metric.value`.
 *
 * | metric | type | what |
 * |---|---|---|
 * | `kube_forward_open` | gauge | forwards that are `Ready` now |
 * | `kube_forward_time_to_ready_seconds` | histogram | one attempt, from its start to ready (verified) |
 * | `kube_forward_reconnects_total` | counter | forwards brought back after a loss |
 * | `kube_forward_failures_total` | counter | failed attempts and lost forwards, by `error` |
 * | `kube_forward_connection_failures_total` | counter | connections that failed while the forward stayed up |
 *
 * @since 0.2.0
 */
import { Metric } from "effect"

/**
 * Forwards that are `Ready` now.
 *
 * @category metrics
 * @since 0.2.0
 */
export const open: Metric.Gauge<number> = Metric.gauge("kube_forward_open", {
  description: "Port forwards that are ready now"
})

/**
 * How long one attempt took from its start to ready (verified, when the spec verifies), in
 * seconds. Retry delays are not part of it.
 *
 * @category metrics
 * @since 0.2.0
 */
export const timeToReady: Metric.Histogram<number> = Metric.histogram("kube_forward_time_to_ready_seconds", {
  description: "Time from the start of an attempt to a ready forward",
  boundaries: Metric.exponentialBoundaries({ start: 0.001, factor: 2, count: 16 })
})

/**
 * Forwards brought back on their local ports after a loss.
 *
 * @category metrics
 * @since 0.2.0
 */
export const reconnects: Metric.Counter<number> = Metric.counter("kube_forward_reconnects_total", {
  description: "Port forwards reconnected after a loss",
  incremental: true
})

/**
 * Failed attempts (each retry counts) and lost forwards (`error="ForwardLost"`), by the
 * error's tag.
 *
 * @category metrics
 * @since 0.2.0
 */
export const failures: Metric.Counter<number> = Metric.counter("kube_forward_failures_total", {
  description: "Failed port-forward attempts and lost forwards, by error",
  incremental: true
})

/**
 * Connections through a ready forward that failed on their own (the pod refused or reset
 * them) while the forward stayed up. Carriers that survive such a failure count it (the
 * native one); kubectl ends the whole forward instead, which counts as a lost forward.
 *
 * @category metrics
 * @since 0.2.0
 */
export const connectionFailures: Metric.Counter<number> = Metric.counter("kube_forward_connection_failures_total", {
  description: "Connections through a ready forward that failed while the forward stayed up",
  incremental: true
})
