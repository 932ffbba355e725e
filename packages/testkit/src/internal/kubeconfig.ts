/**
 * The kubeconfigs a fake cluster writes next to itself, and the exec-credential plugin script.
 *
 * @internal
 */

/** The cluster entry of a kubeconfig. */
export interface ClusterEntry {
  readonly server: string
  /** PEM of the CA to trust (`certificate-authority-data`). */
  readonly certificateAuthority?: string | undefined
  readonly insecureSkipTlsVerify?: boolean | undefined
  readonly tlsServerName?: string | undefined
}

/** The user entry of a kubeconfig: one kind of credential, or none. */
export type UserEntry =
  | { readonly _tag: "None" }
  | { readonly _tag: "Token"; readonly token: string }
  | { readonly _tag: "TokenFile"; readonly path: string }
  | { readonly _tag: "ClientCertificate"; readonly cert: string; readonly key: string }
  | { readonly _tag: "Exec"; readonly command: string }

/** A YAML scalar: JSON strings are YAML double-quoted scalars. */
const q = (value: string): string => JSON.stringify(value)

const b64 = (pem: string): string => Buffer.from(pem, "utf8").toString("base64")

const clusterLines = (c: ClusterEntry): Array<string> => [
  // our own URL: no character needs quoting
  `    server: ${c.server}`,
  ...(c.certificateAuthority !== undefined ? [`    certificate-authority-data: ${b64(c.certificateAuthority)}`] : []),
  // client-node refuses `http://` without it ("HTTP protocol is not allowed when skipTLSVerify is
  // not set or false"); kubectl does not mind
  ...(c.insecureSkipTlsVerify === true || c.server.startsWith("http:") ? ["    insecure-skip-tls-verify: true"] : []),
  ...(c.tlsServerName !== undefined ? [`    tls-server-name: ${q(c.tlsServerName)}`] : [])
]

const userLines = (u: UserEntry): Array<string> => {
  switch (u._tag) {
    case "None":
      return ["  user: {}"]
    case "Token":
      return ["  user:", `    token: ${q(u.token)}`]
    case "TokenFile":
      return ["  user:", `    tokenFile: ${q(u.path)}`]
    case "ClientCertificate":
      return ["  user:", `    client-certificate-data: ${b64(u.cert)}`, `    client-key-data: ${b64(u.key)}`]
    case "Exec":
      // client-go requires interactiveMode for the v1 API; the script needs no terminal
      return [
        "  user:",
        "    exec:",
        "      apiVersion: client.authentication.k8s.io/v1",
        `      command: ${q(u.command)}`,
        "      interactiveMode: Never",
        "      provideClusterInfo: false"
      ]
  }
}

/**
 * A kubeconfig whose context, cluster and user are all named `fake`, namespace `default`.
 * Without credentials kubectl sends none (to an `http://` server the protocol doc observed none).
 */
export const kubeconfig = (cluster: ClusterEntry, user: UserEntry = { _tag: "None" }): string =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: fake",
    "  cluster:",
    ...clusterLines(cluster),
    "contexts:",
    "- name: fake",
    "  context:",
    "    cluster: fake",
    "    user: fake",
    "    namespace: default",
    "current-context: fake",
    "preferences: {}",
    "users:",
    "- name: fake",
    ...userLines(user),
    ""
  ].join("\n")

/**
 * A POSIX `sh` script that prints an `ExecCredential` (client.authentication.k8s.io/v1) carrying
 * `token`, as an exec credential plugin does (K `staging/src/k8s.io/client-go/plugin/pkg/client/
 * auth/exec/exec.go`). The token sits in a quoted here-document, so no character of it is special.
 */
export const execCredentialScript = (token: string): string =>
  [
    "#!/bin/sh",
    "cat <<'KUBE_FORWARD_EOF'",
    JSON.stringify({
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: { token }
    }),
    "KUBE_FORWARD_EOF",
    ""
  ].join("\n")
