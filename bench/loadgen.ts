/**
 * The bench's load generator: the "application" at the local end of a forward, in a process of
 * its own (so neither the forwarder under test nor the fake server shares its event loop). It
 * uploads to the sink pod and downloads from the source pod (lib/protocol.ts), counting every
 * byte and checking a CRC-32 of the whole stream on every run.
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
const crcCache = new Map<number, number>()
const expectedCrc = (n: number): number => {
  let c = crcCache.get(n)
  if (c === undefined) {
    c = crcOf(reference.subarray(0, n))
    crcCache.set(n, c)
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
      let sent = 0
      const pump = () => {
        while (sent < t.bytes) {
          const n = Math.min(CHUNK, t.bytes - sent)
          const ok = socket.write(reference.subarray(sent, sent + n))
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
      const crcOk = h.value === expectedCrc(t.bytes)
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
      socket.write(encodeHeader(DOWNLOAD, 0, t.bytes))
    })
    socket.on("data", (chunk: Buffer) => {
      count += chunk.length
      crc = crc32(chunk, crc)
      if (count >= t.bytes) {
        const crcOk = count === t.bytes && crc >>> 0 === expectedCrc(t.bytes)
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

serve({ maxBytes }, { upload, download, stream, memory: () => process.memoryUsage() }, async () => {})
