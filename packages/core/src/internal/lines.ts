/**
 * Splits a byte or text stream into lines. A chunk can end in the middle of a line (or of a
 * UTF-8 sequence); the remainder is kept until the next chunk or `end`.
 *
 * @internal
 */
export class LineSplitter {
  private readonly decoder = new TextDecoder("utf-8")
  private rest = ""

  /** Feeds one chunk and returns the lines it completed, without their line endings. */
  push(chunk: Uint8Array | string): Array<string> {
    const text = this.rest + (typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true }))
    const parts = text.split("\n")
    this.rest = parts.pop() ?? ""
    return parts.map(stripCarriageReturn)
  }

  /** Returns the last, unterminated line (if any) once the stream has ended. */
  end(): Array<string> {
    const text = this.rest + this.decoder.decode()
    this.rest = ""
    return text.length > 0 ? [stripCarriageReturn(text)] : []
  }
}

const stripCarriageReturn = (line: string): string => line.endsWith("\r") ? line.slice(0, -1) : line
