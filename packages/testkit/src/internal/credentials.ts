/**
 * A cluster's TLS material and the kubeconfigs that use it: its CA and serving certificate, the
 * users' client certificates, and the kubeconfig files written for each way of authenticating
 * (token, token file, client certificate, exec plugin), with the right CA, a wrong one, or none.
 *
 * @internal
 */
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import type { KubeconfigOptions, Options, UserSpec } from "../FakeCluster.ts"
import { type Authority, authority, type KeyPair } from "./certificates.ts"
import { type ClusterEntry, execCredentialScript, kubeconfig, type UserEntry } from "./kubeconfig.ts"

/** The names in the serving certificate, as kubeadm issues them to kube-apiserver. */
export const SERVER_NAMES = [
  "localhost",
  "kubernetes",
  "kubernetes.default",
  "kubernetes.default.svc",
  "kubernetes.default.svc.cluster.local"
]

/** The IP addresses in the serving certificate. */
export const SERVER_IPS = ["127.0.0.1", "::1"]

/** The cluster's TLS material. */
export interface Tls {
  readonly ca: Authority
  readonly server: KeyPair
  /** Client certificates by user name. */
  readonly clients: ReadonlyMap<string, KeyPair>
}

/** Makes the CA and every certificate `options` asks for; undefined without `tls`. */
export const makeTls = async (options: Options): Promise<Tls | undefined> => {
  const users = options.auth?.users ?? []
  const wantsCerts = users.filter((u) => u.clientCertificate === true)
  if (options.tls === undefined || options.tls === false) {
    if (wantsCerts.length > 0) throw new Error(`user "${wantsCerts[0]!.name}" wants a client certificate: needs tls`)
    return undefined
  }
  const extra = options.tls === true ? [] : options.tls.serverNames ?? []
  const ca = await authority("fake-cluster-ca")
  const [server, ...certs] = await Promise.all([
    ca.issueServer([...SERVER_NAMES, ...extra], SERVER_IPS),
    ...wantsCerts.map((u) => ca.issueClient(u.name, u.groups ?? []))
  ])
  return { ca, server: server!, clients: new Map(wantsCerts.map((u, i) => [u.name, certs[i]!])) }
}

/** Writes kubeconfigs for one cluster into its directory. */
export class Kubeconfigs {
  private readonly dir: string
  private readonly url: string
  private readonly tls: Tls | undefined
  private readonly users: ReadonlyArray<UserSpec>
  private untrusted: Promise<Authority> | undefined = undefined
  private written = 0

  constructor(dir: string, url: string, tls: Tls | undefined, users: ReadonlyArray<UserSpec>) {
    this.dir = dir
    this.url = url
    this.tls = tls
    this.users = users
  }

  /** Writes a kubeconfig (at `path`, or a fresh name) and returns its path. */
  async write(options: KubeconfigOptions, path?: string): Promise<string> {
    const n = ++this.written
    const file = path ?? Path.join(this.dir, `kubeconfig-${n}`)
    const cluster = await this.clusterEntry(options)
    const user = await this.userEntry(options, n)
    await Fs.writeFile(file, kubeconfig(cluster, user), { mode: 0o600 })
    return file
  }

  private async clusterEntry(options: KubeconfigOptions): Promise<ClusterEntry> {
    const which = options.certificateAuthority ?? "cluster"
    const ca = this.tls === undefined || which === "none"
      ? undefined
      : which === "cluster"
      ? this.tls.ca.cert
      : (await (this.untrusted ??= authority("untrusted-ca"))).cert
    return {
      server: this.url,
      certificateAuthority: ca,
      insecureSkipTlsVerify: options.insecureSkipTlsVerify,
      tlsServerName: options.tlsServerName
    }
  }

  private async userEntry(options: KubeconfigOptions, n: number): Promise<UserEntry> {
    const spec = options.user === undefined ? this.users[0] : this.users.find((u) => u.name === options.user)
    if (options.user !== undefined && spec === undefined) throw new Error(`no user "${options.user}"`)
    const token = options.token ?? spec?.token
    const cert = spec === undefined ? undefined : this.tls?.clients.get(spec.name)
    const credential = options.credential ??
      (options.token !== undefined || token !== undefined ? "token" : cert !== undefined ? "clientCertificate" : "none")
    const needToken = () => {
      if (token === undefined) throw new Error(`user "${spec?.name}" has no token`)
      return token
    }
    switch (credential) {
      case "none":
        return { _tag: "None" }
      case "token":
        return { _tag: "Token", token: needToken() }
      case "tokenFile": {
        const path = Path.join(this.dir, `token-${n}`)
        await Fs.writeFile(path, `${needToken()}\n`, { mode: 0o600 })
        return { _tag: "TokenFile", path }
      }
      case "exec": {
        const command = Path.join(this.dir, `exec-credential-${n}.sh`)
        await Fs.writeFile(command, execCredentialScript(needToken()), { mode: 0o700 })
        return { _tag: "Exec", command }
      }
      case "clientCertificate":
        if (cert === undefined) {
          throw new Error(`user "${spec?.name}" has no client certificate (clientCertificate, tls)`)
        }
        return { _tag: "ClientCertificate", cert: cert.cert, key: cert.key }
    }
  }
}
