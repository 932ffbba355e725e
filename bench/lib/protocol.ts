/**
 * The tiny wire protocol of the bench's data pods (sink and source), spoken on one TCP
 * connection through whatever forwarder is being measured. No half-close is needed (client-node's
 * forwarder closes its WebSocket when the local socket ends), and the sink acknowledges, so an
 * upload is timed until the pod really has every byte, not until the local socket buffer took it.
 *
 * Request (client → pod), 16 bytes: magic (u32 BE) | value (u32 BE) | length N (u64 BE)
 * - `UPLD` to the sink: N payload bytes follow; the sink answers with a 16-byte ack once it has
 *   counted N: `DONE` | crc32 of the payload (u32 BE) | count (u64 BE).
 * - `DNLD` to the source: the source sends N bytes of the reference stream from offset `value`
 *   (the u32 after the magic), so that concurrent downloads each get bytes of their own.
 */
import { crc32 } from "node:zlib"

export const HEADER_BYTES = 16
export const UPLOAD = 0x55504c44 // "UPLD"
export const DOWNLOAD = 0x444e4c44 // "DNLD"
export const DONE = 0x444f4e45 // "DONE"
export const FAIL = 0x4641494c // "FAIL"

/** How many bytes a data server or client hands to `socket.write` at once. */
export const CHUNK = 256 * 1024

export const encodeHeader = (magic: number, value: number, length: number): Buffer => {
  const b = Buffer.alloc(HEADER_BYTES)
  b.writeUInt32BE(magic, 0)
  b.writeUInt32BE(value >>> 0, 4)
  b.writeBigUInt64BE(BigInt(length), 8)
  return b
}

export interface Header {
  readonly magic: number
  readonly value: number
  readonly length: number
}

export const decodeHeader = (b: Buffer): Header => ({
  magic: b.readUInt32BE(0),
  value: b.readUInt32BE(4),
  length: Number(b.readBigUInt64BE(8))
})

/** CRC-32 of `data` in CHUNK steps (the same function both ends use). */
export const crcOf = (data: Uint8Array): number => {
  let c = 0
  for (let o = 0; o < data.length; o += CHUNK) c = crc32(data.subarray(o, Math.min(o + CHUNK, data.length)), c)
  return c >>> 0
}

export { crc32 }
