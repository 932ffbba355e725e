/**
 * The fake cluster's certificates: a CA of its own, the API server's serving certificate and the
 * users' client certificates, shaped as kube-apiserver's and kubeadm's are (what Go's `crypto/x509`
 * in kubectl and Node's TLS in client libraries verify: a CA with `basicConstraints` and
 * `keyCertSign`, subject alternative names, extended key usages, positive serials).
 *
 * Node can verify certificates but not issue them, and the `openssl` command is not part of a
 * minimal Debian, so certificates are built with `node-forge` (no dependencies of its own, loaded
 * only by a cluster that asks for TLS). Keys are RSA 2048, made by `node:crypto` (native, async).
 *
 * @internal
 */
import type * as Forge from "node-forge"
import * as Crypto from "node:crypto"

let forgeModule: Promise<typeof Forge> | undefined

const forge = (): Promise<typeof Forge> =>
  forgeModule ??= import("node-forge").then((m) => (m as { default?: typeof Forge }).default ?? m)

/** A certificate and its private key, PEM encoded. */
export interface KeyPair {
  readonly cert: string
  readonly key: string
}

/** A certificate authority that can issue certificates. */
export interface Authority extends KeyPair {
  /** Issues a serving certificate for these DNS names and IP addresses. */
  readonly issueServer: (names: ReadonlyArray<string>, ips: ReadonlyArray<string>) => Promise<KeyPair>
  /** Issues a client certificate: CN = user, O = groups (how kube-apiserver reads them). */
  readonly issueClient: (user: string, groups: ReadonlyArray<string>) => Promise<KeyPair>
}

const HOUR_MS = 60 * 60 * 1000

interface RsaKeys {
  readonly privateKey: string
  readonly publicKey: string
}

const keyCache = new Map<string, Promise<RsaKeys>>()

/**
 * An RSA key pair as PEM for a role (`"ca"`, `"server"`, `"client:alice"`, …). Generating one
 * takes up to a few hundred milliseconds, so a role's key is made once per process and reused by
 * every cluster; the certificates are new each time, and each CA has a name of its own, so no
 * cluster trusts another's certificates.
 */
const rsaKeys = (role: string): Promise<RsaKeys> => {
  let keys = keyCache.get(role)
  if (keys === undefined) {
    keys = new Promise((resolve, reject) =>
      Crypto.generateKeyPair("rsa", {
        modulusLength: 2048,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" }
      }, (error, publicKey, privateKey) => error ? reject(error) : resolve({ publicKey, privateKey }))
    )
    keyCache.set(role, keys)
  }
  return keys
}

/** A random positive serial number (Go rejects negative ones), as hex. */
const serial = (): string => {
  const bytes = Crypto.randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f | 0x01
  return bytes.toString("hex")
}

interface Draft {
  readonly subject: ReadonlyArray<Forge.pki.CertificateField>
  readonly extensions: ReadonlyArray<Record<string, unknown>>
}

/** The issuer of a certificate: its certificate and private key (PEM). */
interface Issuer {
  readonly cert: Forge.pki.Certificate
  readonly key: string
}

/**
 * Signs with SHA-256 and RSA through `node:crypto` (forge's own RSA is plain JavaScript and
 * about ten times slower); forge only lays out the `TBSCertificate`.
 */
const sign = (f: typeof Forge, cert: Forge.pki.Certificate, keyPem: string): void => {
  cert.signatureOid = cert.siginfo.algorithmOid = f.pki.oids["sha256WithRSAEncryption"]!
  // in forge since 0.6, missing from @types/node-forge
  const pki = f.pki as typeof f.pki & { getTBSCertificate: (c: Forge.pki.Certificate) => Forge.asn1.Asn1 }
  cert.tbsCertificate = pki.getTBSCertificate(cert)
  const tbs = Buffer.from(f.asn1.toDer(cert.tbsCertificate).getBytes(), "binary")
  cert.signature = Crypto.sign("sha256", tbs, keyPem).toString("binary")
}

/** Builds and signs a certificate for `keys`, valid from an hour ago for a day; self-signed without an issuer. */
const build = (f: typeof Forge, draft: Draft, keys: RsaKeys, issuer: Issuer | undefined): Forge.pki.Certificate => {
  const cert = f.pki.createCertificate()
  cert.publicKey = f.pki.publicKeyFromPem(keys.publicKey)
  cert.serialNumber = serial()
  const now = Date.now()
  cert.validity.notBefore = new Date(now - HOUR_MS)
  cert.validity.notAfter = new Date(now + 24 * HOUR_MS)
  cert.setSubject([...draft.subject])
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : [...draft.subject])
  cert.setExtensions([
    ...draft.extensions,
    { name: "subjectKeyIdentifier" },
    ...(issuer
      ? [{ name: "authorityKeyIdentifier", keyIdentifier: issuer.cert.generateSubjectKeyIdentifier().getBytes() }]
      : [])
  ])
  sign(f, cert, issuer?.key ?? keys.privateKey)
  return cert
}

/** A leaf certificate signed by the authority, with the key of `role`. */
const issue = async (f: typeof Forge, ca: Issuer, role: string, draft: Draft): Promise<KeyPair> => {
  const keys = await rsaKeys(role)
  return { cert: f.pki.certificateToPem(build(f, draft, keys, ca)), key: keys.privateKey }
}

/**
 * A new certificate authority. `role` picks its key (`"ca"` for a cluster's own, another role for
 * a CA that must not be the same key); its name is `role` plus random hex, unique to it.
 */
export const authority = async (role: string): Promise<Authority> => {
  const f = await forge()
  const keys = await rsaKeys(role)
  const name = `${role}-${Crypto.randomBytes(4).toString("hex")}`
  const cert = build(
    f,
    {
      subject: [{ name: "commonName", value: name }],
      extensions: [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      ]
    },
    keys,
    undefined
  )
  const ca: Issuer = { cert, key: keys.privateKey }
  const leafUsage = { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true }
  return {
    cert: f.pki.certificateToPem(cert),
    key: keys.privateKey,
    issueServer: (names, ips) =>
      issue(f, ca, "server", {
        subject: [{ name: "commonName", value: "kube-apiserver" }],
        extensions: [
          { name: "basicConstraints", cA: false },
          leafUsage,
          { name: "extKeyUsage", serverAuth: true },
          {
            name: "subjectAltName",
            altNames: [...names.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))]
          }
        ]
      }),
    issueClient: (user, groups) =>
      issue(f, ca, `client:${user}`, {
        subject: [
          ...groups.map((value) => ({ name: "organizationName", value })),
          { name: "commonName", value: user }
        ],
        extensions: [{ name: "basicConstraints", cA: false }, leafUsage, { name: "extKeyUsage", clientAuth: true }]
      })
  }
}
