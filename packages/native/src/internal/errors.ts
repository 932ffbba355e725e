/**
 * What the API server's answers and the network's failures mean, as the library's typed errors —
 * the same tags the kubectl carrier reports for the same situations.
 *
 * @internal
 */
import {
  ApiServerError,
  ClusterUnreachable,
  Forbidden,
  type KubeconfigInvalid,
  PodNotFound,
  Unauthorized
} from "@kube-forward/core/PortForwardError"
import type * as Http from "node:http"

/**
 * What can go wrong before an answer arrives: the network, getting credentials, or a file the
 * kubeconfig names (a client certificate, a CA file) that cannot be read.
 */
export type RequestFailure = ClusterUnreachable | Unauthorized | KubeconfigInvalid

const UNTRUSTED = "is not trusted: no certificate authority of the kubeconfig signed it " +
  "(certificate-authority / certificate-authority-data; without one, the system's)"

/** TLS verification failures, in words a person can act on. */
const TLS_WORDS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED,
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED,
  DEPTH_ZERO_SELF_SIGNED_CERT: "is not trusted: it is self-signed and not the kubeconfig's certificate authority",
  CERT_HAS_EXPIRED: "has expired",
  CERT_NOT_YET_VALID: "is not valid yet"
}

/** A server name the certificate does not cover: which name was checked, and which it has. */
const wrongName = (server: URL, error: NodeJS.ErrnoException & { host?: unknown; cert?: unknown }): string => {
  const checked = typeof error.host === "string" ? error.host : server.hostname
  const names = (error.cert as { subjectaltname?: unknown } | undefined)?.subjectaltname
  return `the certificate of ${server.host} was not issued for ${checked}` +
    (typeof names === "string" ? ` (it names ${names})` : "") +
    "; the server URL or tls-server-name must be one of its names"
}

/** Maps a socket or TLS error of a request to `server` to `ClusterUnreachable`. */
export const requestFailure = (server: URL) => (e: unknown): ClusterUnreachable => {
  const error = e as NodeJS.ErrnoException
  const code = error.code ?? ""
  const words = TLS_WORDS[code]
  if (words !== undefined) {
    return new ClusterUnreachable({ detail: `the certificate of ${server.host} ${words} (${code})`, tls: true })
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return new ClusterUnreachable({ detail: wrongName(server, error), tls: true })
  }
  if (code.startsWith("ERR_SSL") || code === "EPROTO" || /alert|handshake/i.test(error.message ?? "")) {
    return new ClusterUnreachable({ detail: `TLS with ${server.host} failed: ${error.message}`, tls: true })
  }
  const what = code === "ECONNREFUSED"
    ? `connection to ${server.host} refused`
    : code === "ENOTFOUND" || code === "EAI_AGAIN"
    ? `${server.hostname} could not be resolved`
    : `${server.host}: ${error.message ?? String(e)}`
  return new ClusterUnreachable({ detail: what })
}

/** The `message` of a Kubernetes `Status` body, or the body itself (shortened). */
export const statusMessage = (body: string): string => {
  try {
    const status = JSON.parse(body) as { readonly message?: unknown }
    if (typeof status.message === "string" && status.message.length > 0) return status.message
  } catch {
    // not JSON: the text itself
  }
  const text = body.trim()
  return text.length === 0 ? "(no message)" : text.length > 300 ? `${text.slice(0, 300)}…` : text
}

/** What an error answer means. `notFound` builds the error of a 404 (the object asked for). */
export const answerError = (
  response: Pick<Http.IncomingMessage, "statusCode">,
  body: string,
  notFound: (detail: string) => PodNotFound
): Unauthorized | Forbidden | PodNotFound | ApiServerError => {
  const status = response.statusCode ?? 0
  const detail = statusMessage(body)
  switch (status) {
    case 401:
      return new Unauthorized({ detail })
    case 403:
      return new Forbidden({ detail })
    case 404:
      return notFound(detail)
    default:
      return new ApiServerError({ status, detail })
  }
}
