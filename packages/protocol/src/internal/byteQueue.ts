/**
 * A FIFO of byte chunks that only copies when a read spans chunks, so that decoders fed tiny
 * chunks (a WebSocket tunnel can deliver a frame 1 byte at a time) stay linear.
 *
 * @internal
 */
export class ByteQueue {
  private chunks: Array<Buffer> = []
  /** Index of the first live chunk (shifting an array is O(n), so compaction is amortised). */
  private first = 0
  /** Offset of the first live byte in the first live chunk. */
  private head = 0
  private total = 0

  /** Bytes queued. */
  get length(): number {
    return this.total
  }

  /** Appends a chunk (kept by reference). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.total += chunk.length
  }

  /** The first `n` bytes without consuming them (`n` ≤ length). */
  peek(n: number): Buffer {
    const first = this.chunks[this.first]!
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n)
    const out = Buffer.allocUnsafe(n)
    let copied = 0
    let offset = this.head
    for (let i = this.first; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!
      const take = Math.min(n - copied, chunk.length - offset)
      chunk.copy(out, copied, offset, offset + take)
      copied += take
      offset = 0
      if (copied === n) break
    }
    return out
  }

  /** Removes and returns the first `n` bytes (`n` ≤ length). */
  take(n: number): Buffer {
    const out = this.peek(n)
    this.skip(n)
    return out
  }

  /** Removes and returns up to `n` bytes from the front, as far as the first chunk goes: never a copy. */
  takeContiguous(n: number): Buffer {
    const first = this.chunks[this.first]!
    const out = first.subarray(this.head, this.head + Math.min(n, first.length - this.head))
    this.skip(out.length)
    return out
  }

  /** Removes the first `target.length` bytes (≤ length) and copies them into `target`. */
  takeInto(target: Uint8Array): void {
    const n = target.length
    let copied = 0
    let offset = this.head
    for (let i = this.first; copied < n; i++) {
      const chunk = this.chunks[i]!
      const take = Math.min(n - copied, chunk.length - offset)
      target.set(take === chunk.length ? chunk : chunk.subarray(offset, offset + take), copied)
      copied += take
      offset = 0
    }
    this.skip(n)
  }

  private skip(n: number): void {
    this.total -= n
    while (n > 0) {
      const first = this.chunks[this.first]!
      const available = first.length - this.head
      if (available > n) {
        this.head += n
        break
      }
      n -= available
      this.first++
      this.head = 0
    }
    if (this.first === this.chunks.length) {
      this.chunks = []
      this.first = 0
    } else if (this.first > 64 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first)
      this.first = 0
    }
  }
}
