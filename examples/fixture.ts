/**
 * The one fake cluster every example runs against in `test/examples.test.ts`.
 *
 * Each example documents, at its top, the objects it expects; this file is where they all
 * exist together. To run the examples against a real cluster instead, create objects with the
 * same names and ports (or point the examples' environment variables at your own).
 *
 * | object                          | namespace | ports                                                        | used by |
 * |---------------------------------|-----------|--------------------------------------------------------------|---------|
 * | pod `web-app` (app=web-app)     | default   | 80 `http` (HTTP: /health, /items, /whoami)                   | most examples |
 * | service `web-app`               | default   | 80 → pod port `http`                                         | api-testing |
 * | deployment `web-app`            | default   | selects app=web-app                                          | debugging-session |
 * | pod `web-app` (app=web-app)     | staging   | 80 `http` (HTTP, /whoami says "web-app (staging)")           | multiple-namespaces |
 * | pod `db`                        | default   | 5432 `db` (a tiny line protocol, see {@link tinyDb})         | database-maintenance, debugging-session |
 * | pod `multi-container`           | default   | `app`: 8080 `http`, 8081 `admin`; `metrics-sidecar`: 9090 `metrics` | multi-port-pod |
 * | pods `worker-1` … `worker-3`    | default   | 8080 `http` (HTTP, /whoami says the pod's name)              | concurrent-forwards, sequential-forwards |
 * | pod `warming-up`                | default   | 80 `http`; phase **Pending** until the test runner sets it Running | retry-with-schedule |
 *
 * @since 0.1.0
 */
import { Backend, type FakeCluster } from "@kube-forward/testkit"
import type * as Net from "node:net"

/**
 * A tiny line protocol standing in for a database's maintenance interface. One command per
 * line, one reply per line:
 *
 * - `PING` → `PONG`
 * - `VACUUM <table>` → `OK vacuumed <table>: <n> dead rows removed`
 * - `ANALYZE <table>` → `OK analyzed <table>`
 * - `QUIT` → `BYE`, then the server closes the connection
 * - anything else → `ERR unknown command`
 */
export const tinyDb: Backend.Backend = Backend.handler((socket: Net.Socket) => {
  let buffered = ""
  socket.setEncoding("utf8")
  socket.on("error", () => {})
  socket.on("data", (chunk: string) => {
    buffered += chunk
    let newline: number
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim()
      buffered = buffered.slice(newline + 1)
      const [command = "", table = ""] = line.split(/\s+/)
      switch (command.toUpperCase()) {
        case "PING":
          socket.write("PONG\n")
          break
        case "VACUUM":
          socket.write(`OK vacuumed ${table}: ${table.length * 7} dead rows removed\n`)
          break
        case "ANALYZE":
          socket.write(`OK analyzed ${table}\n`)
          break
        case "QUIT":
          socket.end("BYE\n")
          return
        default:
          socket.write("ERR unknown command\n")
      }
    }
  })
})

const httpPod = (name: string, namespace: string, whoami: string, port: number) => ({
  name,
  namespace,
  labels: { app: name.replace(/-\d+$/, "") },
  containers: [{ name: "app", ports: [{ name: "http", containerPort: port, backend: Backend.http({ name: whoami }) }] }]
})

/**
 * The fake cluster's contents: every pod, service and deployment the examples use.
 *
 * @since 0.1.0
 */
export const options: FakeCluster.Options = {
  pods: [
    httpPod("web-app", "default", "web-app (default)", 80),
    httpPod("web-app", "staging", "web-app (staging)", 80),
    { name: "db", containers: [{ name: "db", ports: [{ name: "db", containerPort: 5432, backend: tinyDb }] }] },
    {
      name: "multi-container",
      containers: [
        {
          name: "app",
          ports: [
            { name: "http", containerPort: 8080, backend: Backend.http({ name: "multi-container/app" }) },
            { name: "admin", containerPort: 8081, backend: Backend.http({ name: "multi-container/app (admin)" }) }
          ]
        },
        {
          name: "metrics-sidecar",
          ports: [{
            name: "metrics",
            containerPort: 9090,
            backend: Backend.http({ name: "multi-container/metrics-sidecar" })
          }]
        }
      ]
    },
    ...[1, 2, 3].map((n) => httpPod(`worker-${n}`, "default", `worker-${n}`, 8080)),
    { ...httpPod("warming-up", "default", "warming-up", 80), phase: "Pending" }
  ],
  services: [{
    name: "web-app",
    selector: { app: "web-app" },
    ports: [{ name: "http", port: 80, targetPort: "http" }]
  }],
  deployments: [{ name: "web-app", selector: { app: "web-app" } }]
}
