/** The contender ids the report knows by name, and the chart colours. */
export const NT = "native-tunnel"
export const NS = "native-spdy"
export const KF = "kube-forward"
export const KFI = "kube-forward-instrumented"
export const RAW = "kubectl"
export const XEC = "xec"
export const CN = "client-node"
export const DIRECT = "direct"

export const COLORS = { up: "#4c78a8", down: "#f58518", one: "#4c78a8", goal: "#e45756", limit: "#555555" }
