/**
 * One node:zlib stream used as a session-long compression context: blocks go in one at a time, each
 * followed by a sync flush, and come out in order. node:zlib has no synchronous streaming API, so
 * every block is a Promise; calls queue behind each other.
 *
 * @internal
 */
import * as Zlib from "node:zlib"

/** A zlib inflate or deflate stream with a preset dictionary, never reset. */
export class ZlibContext {
  private readonly zlib: Zlib.Inflate | Zlib.Deflate
  private chunks: Array<Buffer> = []
  private failure: Error | undefined = undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(kind: "inflate" | "deflate", dictionary: Buffer) {
    this.zlib = kind === "inflate" ? Zlib.createInflate({ dictionary }) : Zlib.createDeflate({ dictionary })
    this.zlib.on("data", (chunk: Buffer) => this.chunks.push(chunk))
    this.zlib.on("error", (error) => {
      this.failure = error
    })
  }

  /** Writes one block, sync-flushes, and resolves with everything the stream produced for it. */
  process(block: Uint8Array): Promise<Buffer> {
    const result = this.queue.then(() =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.failure) return reject(this.failure)
        const onError = (error: Error) => reject(error)
        this.zlib.once("error", onError)
        this.zlib.write(block)
        this.zlib.flush(Zlib.constants.Z_SYNC_FLUSH, () => {
          this.zlib.off("error", onError)
          if (this.failure) return reject(this.failure)
          const out = Buffer.concat(this.chunks)
          this.chunks = []
          resolve(out)
        })
      })
    )
    this.queue = result.catch(() => undefined)
    return result
  }

  /** Releases the zlib handle; later blocks fail. */
  close(): void {
    this.failure ??= new Error("zlib context closed")
    this.zlib.removeAllListeners("data")
    this.zlib.on("error", () => undefined)
    this.zlib.close()
  }
}
