import { assert, describe, it } from "@effect/vitest"
import { ForwardSpec, PortForwardError } from "@kube-forward/core"
import { Effect } from "effect"
import {
  classifyFailure,
  type FailureContext,
  KubectlOutput,
  lostReason,
  parseForwarding,
  parseListenFailure,
  parseStreamError
} from "../src/internal/kubectlOutput.ts"
import { LineSplitter } from "../src/internal/lines.ts"

const ctx: FailureContext = {
  target: "pod/web",
  namespace: "default",
  remoteOf: (local) => local === 28190 ? 81 : undefined,
  isDynamic: (local) => local === 40145
}
const exit1 = { exitCode: 1, signal: null }

describe("parseForwarding", () => {
  it("reads IPv4 and bracketed IPv6 lines", () => {
    assert.deepStrictEqual(parseForwarding("Forwarding from 127.0.0.1:8080 -> 80"), {
      address: "127.0.0.1",
      local: 8080,
      remote: 80
    })
    assert.deepStrictEqual(parseForwarding("Forwarding from [::1]:40145 -> 8080"), {
      address: "::1",
      local: 40145,
      remote: 8080
    })
    assert.deepStrictEqual(parseForwarding("Forwarding from 0.0.0.0:5 -> 6"), {
      address: "0.0.0.0",
      local: 5,
      remote: 6
    })
    assert.isUndefined(parseForwarding("Handling connection for 8080"))
    assert.isUndefined(parseForwarding("Forwarding from 127.0.0.1:8080"))
  })
})

describe("parseStreamError", () => {
  it("reads the klog format of 1.27-1.30", () => {
    const e = parseStreamError(
      "E1126 06:06:49.680024   10884 portforward.go:409] an error occurred forwarding 28190 -> 81: error forwarding port 81 to pod web, uid abc: dial tcp 127.0.0.1:81: connect: connection refused"
    )
    assert.deepStrictEqual(e, {
      local: 28190,
      remote: 81,
      cause: "error forwarding port 81 to pod web, uid abc: dial tcp 127.0.0.1:81: connect: connection refused"
    })
  })
  it("reads the structured format of 1.31+", () => {
    const e = parseStreamError(
      "E1126 06:06:49.680024   10884 portforward.go:413] \"Unhandled Error\" err=\"an error occurred forwarding 28190 -> 81: error forwarding port 81 to pod web, uid abc: dial \\\"x\\\" refused\""
    )
    assert.deepStrictEqual(e?.cause, "error forwarding port 81 to pod web, uid abc: dial \"x\" refused")
  })
})

describe("classifyFailure", () => {
  it("both listeners busy -> PortInUse with port and address", () => {
    const e = classifyFailure(ctx, [
      "Unable to listen on port 28400: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:28400: bind: address already in use unable to create listener: Error listen tcp6 [::1]:28400: bind: address already in use]",
      "error: unable to listen on any of the requested ports: [{28400 80}]"
    ], exit1)
    assert.strictEqual(e._tag, "PortInUse")
    if (e._tag === "PortInUse") {
      assert.strictEqual(e.port, 28400)
      assert.strictEqual(e.address, "127.0.0.1")
      assert.isFalse(e.dynamic)
      assert.isFalse(PortForwardError.isTransient(e))
    }
    assert.strictEqual(e.message, "local port 28400 on 127.0.0.1 is already in use")
  })

  it("a dynamic port taken is transient", () => {
    const e = classifyFailure(ctx, [
      "Unable to listen on port 40145: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:40145: bind: address already in use]"
    ], exit1)
    assert.isTrue(e._tag === "PortInUse" && e.dynamic && PortForwardError.isTransient(e))
  })

  it("404 -> PodNotFound, for pods, services and deployments", () => {
    for (const text of ["pods \"x\" not found", "services \"x\" not found", "deployments.apps \"x\" not found"]) {
      const e = classifyFailure(ctx, [`Error from server (NotFound): ${text}`], exit1)
      assert.strictEqual(e._tag, "PodNotFound")
      assert.include(e.message, text)
      assert.isFalse(PortForwardError.isTransient(e))
    }
  })

  it("no pod for a service selector -> PodNotFound", () => {
    const e = classifyFailure(ctx, ["error: timed out waiting for the condition"], exit1)
    assert.strictEqual(e._tag, "PodNotFound")
  })

  it("pod not running -> PodNotRunning with the phase, transient", () => {
    const e = classifyFailure(ctx, [
      "error: unable to forward port because pod is not running. Current status=Pending"
    ], exit1)
    assert.isTrue(e._tag === "PodNotRunning" && e.phase === "Pending")
    assert.isTrue(PortForwardError.isTransient(e))
  })

  it("unreachable API server -> ClusterUnreachable, despite the discovery noise before it", () => {
    const e = classifyFailure(ctx, [
      "E1126 06:36:26.716066    7175 memcache.go:265] couldn't get current server API group list: Get \"http://localhost:8080/api?timeout=32s\": dial tcp 127.0.0.1:8080: connect: connection refused",
      "The connection to the server 127.0.0.1:18999 was refused - did you specify the right host or port?"
    ], exit1)
    assert.strictEqual(e._tag, "ClusterUnreachable")
    assert.include(e.message, "127.0.0.1:18999")
    const dns = classifyFailure(ctx, ["Unable to connect to the server: dial tcp: lookup nope: no such host"], exit1)
    assert.strictEqual(dns._tag, "ClusterUnreachable")
  })

  it("forbidden and unauthorized", () => {
    const f = classifyFailure(ctx, [
      "Error from server (Forbidden): pods \"web\" is forbidden: User \"bob\" cannot get resource \"pods\""
    ], exit1)
    assert.strictEqual(f._tag, "Forbidden")
    const u = classifyFailure(ctx, ["error: You must be logged in to the server (Unauthorized)"], exit1)
    assert.strictEqual(u._tag, "Unauthorized")
    const up = classifyFailure(ctx, [
      "error: error upgrading connection: pods \"web\" is forbidden: User \"bob\" cannot create resource \"pods/portforward\""
    ], exit1)
    assert.strictEqual(up._tag, "Forbidden")
  })

  it("the pod refused the connection -> RemoteRefused naming the requested remote port", () => {
    const e = classifyFailure(ctx, [
      "E1126 06:06:49.680024   10884 portforward.go:409] an error occurred forwarding 28190 -> 81: error forwarding port 81 to pod web, uid abc: connection refused",
      "error: lost connection to pod"
    ], exit1)
    assert.isTrue(e._tag === "RemoteRefused" && e.remotePort === 81)
  })

  it("anything else -> KubectlFailed keeping all of stderr and the exit code", () => {
    const lines = ["error: error upgrading connection: unexpected EOF", "second line"]
    const e = classifyFailure(ctx, lines, exit1)
    assert.strictEqual(e._tag, "KubectlFailed")
    if (e._tag === "KubectlFailed") {
      assert.strictEqual(e.stderr, lines.join("\n"))
      assert.strictEqual(e.exitCode, 1)
    }
    assert.include(e.message, "unexpected EOF")
  })

  it("a klog warning never decides the error (it used to turn a pod's refusal into Unauthorized)", () => {
    const e = classifyFailure(ctx, [
      "E1126 06:00:00.000000    1 memcache.go:287] couldn't get resource list for metrics.k8s.io/v1beta1: Unauthorized",
      "E1126 06:06:49.680024   10884 portforward.go:409] an error occurred forwarding 28190 -> 81: error forwarding port 81 to pod web, uid abc: connection refused",
      "error: lost connection to pod"
    ], exit1)
    assert.strictEqual(e._tag, "RemoteRefused")
  })

  it("the credentials texts of real kubectl are Unauthorized", () => {
    for (
      const line of [
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)",
        "error: You must be logged in to the server (Unauthorized)",
        "Error from server (Unauthorized): the server has asked for the client to provide credentials"
      ]
    ) {
      const e = classifyFailure(ctx, [line], exit1)
      assert.strictEqual(e._tag, "Unauthorized", line)
      assert.isFalse(PortForwardError.isTransient(e))
    }
  })

  it("TLS and credential-plugin failures are configuration: not retried", () => {
    const tls = classifyFailure(ctx, [
      "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority"
    ], exit1)
    assert.isTrue(tls._tag === "ClusterUnreachable" && tls.tls === true, tls.message)
    assert.include(tls.message, "certificate was not accepted")
    const credentials = classifyFailure(ctx, [
      "Unable to connect to the server: getting credentials: exec: executable aws not found"
    ], exit1)
    assert.strictEqual(credentials._tag, "Unauthorized")
    for (const e of [tls, credentials]) {
      assert.isFalse(PortForwardError.isTransient(e) || PortForwardError.isReconnectable(e), e.message)
    }
    const down = classifyFailure(ctx, ["Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout"], exit1)
    assert.strictEqual(down._tag, "ClusterUnreachable")
  })

  it("kubectl's last error line decides", () => {
    const e = classifyFailure(ctx, [
      "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?",
      "Error from server (NotFound): pods \"x\" not found"
    ], exit1)
    assert.strictEqual(e._tag, "PodNotFound")
  })

  it("non-fatal warnings do not decide the error", () => {
    const e = classifyFailure(ctx, [
      "W1126 06:00:00.000000    1 warnings.go:70] some deprecation warning",
      "error: unable to forward port because pod is not running. Current status=Failed"
    ], exit1)
    assert.strictEqual(e._tag, "PodNotRunning")
  })
})

describe("parseListenFailure and lostReason", () => {
  it("reads the port and address of a failed listener", () => {
    const f = parseListenFailure(
      "Unable to listen on port 9: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp6 [::1]:9: bind: permission denied]"
    )
    assert.deepStrictEqual([f?.port, f?.address, f?.inUse], [9, "::1", false])
  })
  it("prefers the kubelet's error, then kubectl's error line, then the exit", () => {
    assert.strictEqual(
      lostReason(["an error occurred forwarding 1 -> 2: boom", "error: lost connection to pod"], exit1),
      "boom"
    )
    assert.strictEqual(lostReason(["error: lost connection to pod"], exit1), "lost connection to pod")
    assert.strictEqual(lostReason([], { exitCode: null, signal: "SIGKILL" }), "kubectl was killed by SIGKILL")
  })
})

describe("LineSplitter", () => {
  it("joins lines split across chunks, including a split UTF-8 sequence and CRLF", () => {
    const s = new LineSplitter()
    const bytes = new TextEncoder().encode("Forwarding from 127.0.0.1:80 -> 80\r\nnaïve line\npartial")
    const out: Array<string> = []
    // feed one byte at a time: every chunk boundary falls mid-line, and once mid-character
    for (const b of bytes) out.push(...s.push(new Uint8Array([b])))
    assert.deepStrictEqual(out, ["Forwarding from 127.0.0.1:80 -> 80", "naïve line"])
    assert.deepStrictEqual(s.end(), ["partial"])
    assert.deepStrictEqual(s.end(), [])
  })
})

describe("KubectlOutput (one kubectl process, lines in, verdicts out)", () => {
  const reader = (input: ForwardSpec.Input, locals: ReadonlyArray<number>) =>
    new KubectlOutput(Effect.runSync(ForwardSpec.decode(input)), locals, { namespace: "shop", isDynamic: () => false })
  const out = (text: string) => ({ stream: "stdout" as const, text })
  const err = (text: string) => ({ stream: "stderr" as const, text })

  it("is Ready once, when every port has a line for every address, with the resolved target ports", () => {
    const r = reader({
      target: "svc/web",
      ports: [{ local: 8080, remote: "http" }, 9090],
      address: ["127.0.0.1", "::1"]
    }, [
      8080,
      0
    ])
    assert.isUndefined(r.push(out("Forwarding from 127.0.0.1:8080 -> 3000")))
    assert.isUndefined(r.push(out("Forwarding from [::1]:8080 -> 3000")))
    assert.isUndefined(r.push(out("Handling connection for 8080")))
    assert.isUndefined(r.push(out("Forwarding from 127.0.0.1:41000 -> 9090")))
    assert.deepStrictEqual(r.push(out("Forwarding from [::1]:41000 -> 9090")), {
      _tag: "Ready",
      ports: [
        { address: "127.0.0.1", local: 8080, remote: "http", targetPort: 3000 },
        { address: "127.0.0.1", local: 41000, remote: 9090, targetPort: 9090 }
      ]
    })
    assert.isUndefined(r.push(out("Forwarding from 127.0.0.1:41000 -> 9090")), "never a second verdict")
  })

  it("fails at once when a listener could not be opened", () => {
    const r = reader({ target: "pod/web", ports: [{ local: 8080, remote: 80 }] }, [8080])
    const verdict = r.push(err(
      "Unable to listen on port 8080: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:8080: bind: address already in use]"
    ))
    assert.isTrue(verdict?._tag === "Failed" && verdict.error._tag === "PortInUse" && verdict.error.port === 8080)
  })

  it("after the check connections: nothing said is a pass; a refusal logged is RemoteRefused; a bare socket error is VerifyFailed", () => {
    const r = reader({ target: "pod/web", ports: [81] }, [0])
    r.push(out("Forwarding from 127.0.0.1:28190 -> 81"))
    assert.isUndefined(r.afterCheck({ streamErrorsBefore: 0, exit: undefined, checkFailure: undefined }))
    const failed = r.afterCheck({
      streamErrorsBefore: 0,
      exit: undefined,
      checkFailure: { local: 28190, detail: "ECONNRESET: socket hang up" }
    })
    assert.isTrue(failed?._tag === "VerifyFailed" && failed.localPort === 28190 && failed.detail.includes("ECONNRESET"))
    const before = r.streamErrors
    r.push(err(
      "E1126 06:06:49.680024   10884 portforward.go:413] \"Unhandled Error\" err=\"an error occurred forwarding 28190 -> 81: error forwarding port 81 to pod web: connection refused\""
    ))
    assert.strictEqual(r.streamErrors, before + 1)
    const refused = r.afterCheck({ streamErrorsBefore: before, exit: undefined, checkFailure: undefined })
    assert.isTrue(refused?._tag === "RemoteRefused" && refused.remotePort === 81, refused?.message)
  })

  it("an exit before ready is read from kubectl's own last words; a loss names the kubelet's error", () => {
    const r = reader({ target: "pod/web", ports: [80] }, [0])
    r.push(err("error: unable to forward port because pod is not running. Current status=Pending"))
    const early = r.exitedEarly(exit1)
    assert.isTrue(early._tag === "PodNotRunning" && early.namespace === "shop" && early.phase === "Pending")
    assert.strictEqual(r.lostReason(exit1), "unable to forward port because pod is not running. Current status=Pending")
  })
})

describe("ports the target does not have", () => {
  it("a missing service port (numbered or named) or named container port is PortNotFound", () => {
    const svc = classifyFailure(ctx, ["error: Service web does not have a service port 9999"], exit1)
    assert.isTrue(svc._tag === "PortNotFound" && svc.remotePort === 9999, svc.message)
    const svcNamed = classifyFailure(ctx, ["error: Service 'web' does not have a named port 'admin'"], exit1)
    assert.isTrue(svcNamed._tag === "PortNotFound" && svcNamed.remotePort === "admin", svcNamed.message)
    const named = classifyFailure(ctx, ["error: Pod 'web' does not have a named port 'nohttp'"], exit1)
    assert.isTrue(named._tag === "PortNotFound" && named.remotePort === "nohttp", named.message)
  })
})

describe("kubeconfig problems", () => {
  it("a missing context, file or unparsable file is KubeconfigInvalid (kubectl 1.27-1.35 print the same lines)", () => {
    for (
      const line of [
        "Error in configuration: context was not found for specified context: nope",
        "error: stat /tmp/nonexist.yaml: no such file or directory",
        "error: error loading config file \"/tmp/bad.yaml\": yaml: line 1: did not find expected node content"
      ]
    ) {
      const e = classifyFailure(ctx, [line], exit1)
      assert.strictEqual(e._tag, "KubeconfigInvalid", line)
      assert.isFalse(PortForwardError.isTransient(e) || PortForwardError.isReconnectable(e))
    }
  })
})

describe("KubectlFailed's message", () => {
  it("says what kubectl printed and how it ended; a kubectl that never ran is told in the library's words alone", () => {
    const printed = new PortForwardError.KubectlFailed({ exitCode: 1, signal: null, stderr: "error: boom\n" })
    assert.strictEqual(printed.message, "kubectl exited with code 1: error: boom")
    const silent = new PortForwardError.KubectlFailed({ exitCode: null, signal: "SIGSEGV", stderr: "" })
    assert.strictEqual(silent.message, "kubectl was killed by SIGSEGV without printing an error")
    const never = new PortForwardError.KubectlFailed({
      exitCode: null,
      signal: null,
      stderr: "",
      detail: "could not start /usr/bin/kubectl: spawn E2BIG"
    })
    assert.strictEqual(never.message, "could not start /usr/bin/kubectl: spawn E2BIG")
  })
})

describe("each error carries its own retry rules", () => {
  it("the predicates read the getters", () => {
    const dynamic = new PortForwardError.PortInUse({ port: 1, address: "127.0.0.1", dynamic: true })
    const fixed = new PortForwardError.PortInUse({ port: 1, address: "127.0.0.1", dynamic: false })
    assert.isTrue(dynamic.isTransient && PortForwardError.isTransient(dynamic))
    assert.isFalse(fixed.isTransient || PortForwardError.isTransient(fixed))
    assert.isTrue(fixed.isReconnectable && PortForwardError.isReconnectable(fixed))
    const forbidden = new PortForwardError.Forbidden({ detail: "no" })
    assert.isFalse(forbidden.isTransient || forbidden.isReconnectable || PortForwardError.isReconnectable(forbidden))
    const verify = new PortForwardError.VerifyFailed({ target: "pod/web", localPort: 1, detail: "ECONNREFUSED" })
    assert.isFalse(PortForwardError.isTransient(verify))
    assert.isTrue(PortForwardError.isReconnectable(verify))
  })
})
