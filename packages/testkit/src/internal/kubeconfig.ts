/**
 * The kubeconfig a fake cluster writes next to itself.
 *
 * @internal
 */

/**
 * The kubeconfig for a server URL: context, cluster and user all named `fake`, namespace `default`,
 * no credentials (kubectl sends none to an `http://` server). `insecure-skip-tls-verify` because
 * client-node refuses `http://` without it ("HTTP protocol is not allowed when skipTLSVerify is not
 * set or false").
 */
export const kubeconfig = (server: string): string =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: fake",
    "  cluster:",
    `    server: ${server}`,
    "    insecure-skip-tls-verify: true",
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
    "  user: {}",
    ""
  ].join("\n")
