// The weight manifest (`<dir>/<version>/manifest.json`, the proto3 JSON form of WeightManifest
// written by the learner): strict validation with errors naming the field, and pure lookups
// the service and the sidecar share. No I/O here.
import { type FieldViolation, invalidFields } from "../errors.js";
import { l0 } from "../proto.js";

export interface Chunk {
  offset: number;
  sizeBytes: number;
  sha256: string;
}
export interface Shard {
  file: string;
  sizeBytes: number;
  sha256: string;
  chunks: Chunk[];
}
export interface Tensor {
  name: string;
  dtype: string;
  shape: number[];
  shard: string;
  offset: number;
  sizeBytes: number;
}
export interface Manifest {
  version: number;
  format: string;
  chunkBytes: number;
  shards: Shard[];
  tensors: Tensor[];
  createdUnixMs: number;
  model: string;
}

/** A shard file name: one path component, nothing that could climb out of the version dir. */
export const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** Pullers verify whole chunks in memory: this bounds what one chunk may cost. */
export const MAX_CHUNK_BYTES = 256 << 20;

/** Field readers that collect every violation (prefixed with the source) instead of stopping at one. */
class Fields {
  readonly bad: FieldViolation[] = [];
  constructor(private readonly source: string) {}

  fail(field: string, description: string): void {
    this.bad.push({ field: `${this.source}: ${field}`, description });
  }

  uint(v: unknown, field: string, opts: { min?: number; required?: boolean } = {}): number {
    const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
    if (n === undefined && !opts.required) return 0;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < (opts.min ?? 0)) {
      this.fail(field, `must be an integer >= ${opts.min ?? 0}, got ${JSON.stringify(v)}`);
      return 0;
    }
    return n;
  }

  str(v: unknown, field: string, required = true): string {
    if (v === undefined && !required) return "";
    if (typeof v !== "string" || (required && v === "")) {
      this.fail(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
      return "";
    }
    return v;
  }

  arr(v: unknown, field: string): unknown[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.fail(field, "must be an array");
      return [];
    }
    return v;
  }

  /** The element as a record, or a violation and undefined. */
  obj(v: unknown, field: string): Record<string, unknown> | undefined {
    if (v !== null && typeof v === "object") return v as Record<string, unknown>;
    this.fail(field, "must be an object");
    return undefined;
  }
}

function readChunks(
  r: Fields,
  raw: Record<string, unknown>,
  f: string,
  chunkBytes: number,
  sizeBytes: number,
): Chunk[] {
  const chunks: Chunk[] = [];
  let next = 0;
  r.arr(raw.chunks, `${f}.chunks`).forEach((c, j) => {
    const cf = `${f}.chunks[${j}]`;
    const cr = r.obj(c, cf);
    if (!cr) return;
    const offset = r.uint(cr.offset, `${cf}.offset`);
    const size = r.uint(cr.sizeBytes, `${cf}.sizeBytes`, { min: 1, required: true });
    const hash = r.str(cr.sha256, `${cf}.sha256`);
    if (hash && !HEX64.test(hash)) r.fail(`${cf}.sha256`, "must be 64 lowercase hex digits");
    if (offset !== next) r.fail(`${cf}.offset`, `must be ${next} (chunks are contiguous), got ${offset}`);
    if (size > chunkBytes)
      r.fail(`${cf}.sizeBytes`, `must be at most chunkBytes (${chunkBytes}), got ${size}`);
    next = offset + size;
    chunks.push({ offset, sizeBytes: size, sha256: hash });
  });
  if (next !== sizeBytes) r.fail(`${f}.chunks`, `must cover the shard's ${sizeBytes} bytes, cover ${next}`);
  return chunks;
}

function readShards(r: Fields, raw: unknown, chunkBytes: number): Shard[] {
  const shards: Shard[] = [];
  const seen = new Set<string>();
  const list = r.arr(raw, "shards");
  if (list.length === 0) r.fail("shards", "must list at least one shard");
  list.forEach((s, i) => {
    const f = `shards[${i}]`;
    const o = r.obj(s, f);
    if (!o) return;
    const file = r.str(o.file, `${f}.file`);
    if (file && !SAFE_FILE.test(file))
      r.fail(`${f}.file`, `must be a plain file name, got ${JSON.stringify(file)}`);
    if (seen.has(file)) r.fail(`${f}.file`, `duplicate shard ${JSON.stringify(file)}`);
    seen.add(file);
    const sizeBytes = r.uint(o.sizeBytes, `${f}.sizeBytes`, { required: true });
    const sha256 = r.str(o.sha256, `${f}.sha256`, false);
    if (sha256 && !HEX64.test(sha256)) r.fail(`${f}.sha256`, "must be 64 lowercase hex digits");
    shards.push({ file, sizeBytes, sha256, chunks: readChunks(r, o, f, chunkBytes, sizeBytes) });
  });
  return shards;
}

function readTensors(r: Fields, raw: unknown, shards: Shard[]): Tensor[] {
  const shardSizes = new Map(shards.map((s) => [s.file, s.sizeBytes]));
  const tensors: Tensor[] = [];
  r.arr(raw, "tensors").forEach((t, i) => {
    const f = `tensors[${i}]`;
    const o = r.obj(t, f);
    if (!o) return;
    const tensor: Tensor = {
      name: r.str(o.name, `${f}.name`),
      dtype: r.str(o.dtype, `${f}.dtype`),
      shape: r.arr(o.shape, `${f}.shape`).map((d, k) => r.uint(d, `${f}.shape[${k}]`)),
      shard: r.str(o.shard, `${f}.shard`),
      offset: r.uint(o.offset, `${f}.offset`),
      sizeBytes: r.uint(o.sizeBytes, `${f}.sizeBytes`),
    };
    const size = shardSizes.get(tensor.shard);
    if (tensor.shard && size === undefined) r.fail(`${f}.shard`, `names no shard of this manifest`);
    else if (size !== undefined && tensor.offset + tensor.sizeBytes > size)
      r.fail(
        `${f}`,
        `byte range ends at ${tensor.offset + tensor.sizeBytes}, past the shard's ${size} bytes`,
      );
    tensors.push(tensor);
  });
  return tensors;
}

/** Parses a manifest object (JSON form, numbers or decimal strings for 64-bit ints), naming every bad field. */
export function parseManifest(obj: unknown, source = "manifest"): Manifest {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw invalidFields([{ field: source, description: "must be a JSON object" }]);
  }
  const o = obj as Record<string, unknown>;
  const r = new Fields(source);
  const version = r.uint(o.version, "version", { min: 1, required: true });
  const format = r.str(o.format ?? "safetensors", "format");
  if (format && format !== "safetensors")
    r.fail("format", `must be "safetensors", got ${JSON.stringify(format)}`);
  const chunkBytes = r.uint(o.chunkBytes, "chunkBytes", { min: 1, required: true });
  if (chunkBytes > MAX_CHUNK_BYTES)
    r.fail("chunkBytes", `must be at most ${MAX_CHUNK_BYTES} (a puller holds whole chunks)`);
  const shards = readShards(r, o.shards, chunkBytes);
  const tensors = readTensors(r, o.tensors, shards);
  const createdUnixMs = r.uint(o.createdUnixMs, "createdUnixMs");
  const model = r.str(o.model, "model", false);
  if (r.bad.length > 0) throw invalidFields(r.bad);
  return { version, format, chunkBytes, shards, tensors, createdUnixMs, model };
}

/** Parses manifest.json text; a syntax error names the source. */
export function parseManifestText(text: string, source = "manifest.json"): Manifest {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw invalidFields([{ field: source, description: `not valid JSON: ${(err as Error).message}` }]);
  }
  return parseManifest(obj, source);
}

/** The wire form (proto message) of a manifest. */
export const toProto = (m: Manifest): l0.v1.IWeightManifest => m;

/** Manifest from the wire; validated like the file so a peer cannot hand us nonsense. */
export function fromProto(m: l0.v1.IWeightManifest | null | undefined, source = "manifest"): Manifest {
  if (!m) throw invalidFields([{ field: source, description: "is required" }]);
  return parseManifest(
    l0.v1.WeightManifest.toObject(l0.v1.WeightManifest.fromObject(m), { defaults: true }),
    source,
  );
}

export function shardOf(m: Manifest, file: string): Shard | undefined {
  return m.shards.find((s) => s.file === file);
}

export const totalBytes = (m: Manifest): number => m.shards.reduce((a, s) => a + s.sizeBytes, 0);

/** The chunks overlapping [offset, end): the unit a puller verifies. */
export function chunksIn(shard: Shard, offset: number, end: number): Chunk[] {
  return shard.chunks.filter((c) => c.offset < end && c.offset + c.sizeBytes > offset);
}

/**
 * The `model.safetensors.index.json` Hugging Face loaders expect beside several shards
 * (tensor name -> shard file).
 */
export function safetensorsIndex(m: Manifest): Record<string, unknown> {
  return {
    metadata: { total_size: totalBytes(m), l0_policy_version: m.version },
    weight_map: Object.fromEntries(m.tensors.map((t) => [t.name, t.shard])),
  };
}
