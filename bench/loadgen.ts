/**
 * The bench's load generator: the "application" at the local end of a forward, in a process of
 * its own (so neither the forwarder under test nor the fake server shares its event loop). It
 * uploads to the sink pod and downloads from the source pod (lib/protocol.ts), counting every
 * byte and checking a CRC-32 of the whole stream on every run; `concurrent` runs many such
 * transfers through one local port at once.
 *
 * argv: `--bytes N` (the largest transfer).
 */
import { Backend } from "@kube-forward/testkit"
import * as Net from "node:net"
import { serve } from "./lib/ipc.ts"
import {
  CHUNK,
  crc32,
  crcOf,
  decodeHeader,
  DONE,
  DOWNLOAD,
  encodeHeader,
  HEADER_BYTES,
  UPLOAD
} from "./lib/protocol.ts"

const argValue = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const maxBytes = argValue("--bytes", 16 * 1024 * 1024)
const reference = Buffer.from(Backend.pattern(maxBytes))
const crcCache = new Map<string, number>()
const expectedCrc = (n: number, offset = 0): number => {
  const key = `${offset}:${n}`
  let c = crcCache.get(key)
  if (c === undefined) {
    c = crcOf(reference.subarray(offset, offset + n))
    crcCache.set(key, c)
  }
  return c
}

/** One transfer's outcome. `ok` only when the byte count and the CRC both match. */
export interface Transfer {
  readonly ok: boolean
  readonly bytes: number
  readonly ms: number
  readonly crcOk: boolean
  readonly error?: string
}

interface Target {
  readonly host: string
  readonly port: number
  readonly bytes: number
  /** Where in the reference stream the bytes start (default 0). */
  readonly offset?: number
  readonly timeoutMs?: number
}

const run = (t: Target, drive: (socket: Net.Socket, done: (r: Transfer) => void, start: () => void) => void) =>
  new Promise<Transfer>((resolve) => {
    const socket = Net.connect({ host: t.host, port: t.port })
    socket.setNoDelay(true)
    let settled = false
    let t0 = Number.NaN
    const done = (r: Transfer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(r)
    }
    const timer = setTimeout(
      () =>
        done({
          ok: false,
          bytes: 0,
          ms: Number.NaN,
          crcOk: false,
          error: `timed out after ${t.timeoutMs ?? 300_000} ms`
        }),
      t.timeoutMs ?? 300_000
    )
    socket.once(
      "error",
      (e) => done({ ok: false, bytes: 0, ms: performance.now() - t0, crcOk: false, error: e.message })
    )
    socket.once(
      "close",
      () => done({ ok: false, bytes: 0, ms: performance.now() - t0, crcOk: false, error: "connection closed early" })
    )
    drive(socket, (r) => done({ ...r, ms: performance.now() - t0 }), () => {
      t0 = performance.now()
    })
  })

const upload = (t: Target) =>
  run(t, (socket, done, start) => {
    let ack = Buffer.alloc(0)
    socket.once("connect", () => {
      start()
      socket.write(encodeHeader(UPLOAD, 0, t.bytes))
      const offset = t.offset ?? 0
      let sent = 0
      const pump = () => {
        while (sent < t.bytes) {
          const n = Math.min(CHUNK, t.bytes - sent)
          const ok = socket.write(reference.subarray(offset + sent, offset + sent + n))
          sent += n
          if (!ok) return void socket.once("drain", pump)
        }
      }
      pump()
    })
    socket.on("data", (chunk: Buffer) => {
      ack = Buffer.concat([ack, chunk])
      if (ack.length < HEADER_BYTES) return
      const h = decodeHeader(ack)
      const crcOk = h.value === expectedCrc(t.bytes, t.offset)
      done({
        ok: h.magic === DONE && h.length === t.bytes && crcOk,
        bytes: h.length,
        ms: 0,
        crcOk,
        ...(h.magic === DONE ? {} : { error: "the sink reported a failure (more bytes than announced)" })
      })
    })
  })

const download = (t: Target) =>
  run(t, (socket, done, start) => {
    let count = 0
    let crc = 0
    socket.once("connect", () => {
      start()
      socket.write(encodeHeader(DOWNLOAD, t.offset ?? 0, t.bytes))
    })
    socket.on("data", (chunk: Buffer) => {
      count += chunk.length
      crc = crc32(chunk, crc)
      if (count >= t.bytes) {
        const crcOk = count === t.bytes && crc >>> 0 === expectedCrc(t.bytes, t.offset)
        done({ ok: crcOk, bytes: count, ms: 0, crcOk, ...(count > t.bytes ? { error: `got ${count} bytes` } : {}) })
      }
    })
  })

/** Reads a testkit `Backend.source({ bytes })` stream to its end. */
const stream = (t: Target) =>
  run(t, (socket, done, start) => {
    let count = 0
    let crc = 0
    socket.once("connect", () => start())
    socket.on("data", (chunk: Buffer) => {
      count += chunk.length
      crc = crc32(chunk, crc)
      if (count >= t.bytes) {
        const crcOk = count === t.bytes && crc >>> 0 === expectedCrc(t.bytes)
        done({ ok: crcOk, bytes: count, ms: 0, crcOk })
      }
    })
  })

/** What {@link concurrent} found: every connection's own outcome, and the wall time of them all. */
export interface Concurrent {
  readonly connections: number
  readonly bytesPerConnection: number
  readonly ok: number
  readonly ms: number
  /** The first few failures, in words. */
  readonly failures: ReadonlyArray<string>
}

/**
 * `connections` transfers through one local port at once, half uploads and half downloads, each
 * with bytes from its own offset of the reference stream, so that bytes delivered to the wrong
 * connection (or in the wrong order) fail that connection's CRC.
 */
const concurrent = async (
  t: { readonly host: string; readonly port: number; readonly connections: number; readonly bytes: number }
): Promise<Concurrent> => {
  const span = Math.max(1, maxBytes - t.bytes)
  const offsets = Array.from({ length: t.connections }, (_, i) => (i * 104_729) % span)
  // the expected checksums before the clock starts: the check must not compete with the transfers
  for (const offset of offsets) expectedCrc(t.bytes, offset)
  const t0 = performance.now()
  const results = await Promise.all(offsets.map((offset, i) => {
    const target = { host: t.host, port: t.port, bytes: t.bytes, offset, timeoutMs: 120_000 }
    return (i % 2 === 0 ? upload(target) : download(target)).then((r) => ({ i, r }))
  }))
  const failed = results.filter(({ r }) => !r.ok)
  return {
    connections: t.connections,
    bytesPerConnection: t.bytes,
    ok: results.length - failed.length,
    ms: performance.now() - t0,
    failures: failed.slice(0, 5).map(({ i, r }) =>
      `connection ${i} (${i % 2 === 0 ? "upload" : "download"}): ${r.error ?? (r.crcOk ? "count" : "CRC mismatch")}`
    )
  }
}

serve({ maxBytes }, { upload, download, stream, concurrent, memory: () => process.memoryUsage() }, async () => {})
