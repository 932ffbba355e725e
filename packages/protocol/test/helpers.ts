/**
 * Small helpers of the protocol tests: a seeded PRNG (reproducible random cases) and digests.
 */
import * as Crypto from "node:crypto"

/** A seeded PRNG (mulberry32) returning floats in [0, 1). */
export const seeded = (seed: number) => (): number => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** The sha256 of some bytes, in hex. */
export const sha256 = (data: Uint8Array): string => Crypto.createHash("sha256").update(data).digest("hex")
