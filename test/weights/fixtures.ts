// Test helpers for weight sync: exported versions written the way the learner writes them
// (safetensors shards: 8-byte LE header length + JSON header + raw bytes, and a manifest with
// per-chunk sha256), a TCP proxy that cuts a connection mid-transfer, and an HTTP engine
// stand-in that records reload calls.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rename, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Manifest, type Tensor } from "../../lib/weights/manifest.js";

export const tempDir = (prefix = "l0-weights-"): Promise<string> => mkdtemp(join(tmpdir(), prefix));

export interface TensorSpec {
  name: string;
  dtype?: string;
  shape: number[];
}

/** One safetensors file: header + data; tensors get offsets relative to the whole file. */
export function safetensorsFile(specs: TensorSpec[], fill: (n: number) => Buffer = randomBytes) {
  const width: Record<string, number> = { F32: 4, BF16: 2, F16: 2, I64: 8 };
  const datas = specs.map((s) => fill(s.shape.reduce((a, b) => a * b, 1) * (width[s.dtype ?? "F32"] ?? 4)));
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let at = 0;
  specs.forEach((s, i) => {
    header[s.name] = { dtype: s.dtype ?? "F32", shape: s.shape, data_offsets: [at, at + datas[i]!.length] };
    at += datas[i]!.length;
  });
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]); // 8-byte alignment
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const base = 8 + json.length;
  const tensors = specs.map((s, i) => ({
    name: s.name,
    dtype: s.dtype ?? "F32",
    shape: s.shape,
    offset: base + (header[s.name] as { data_offsets: number[] }).data_offsets[0]!,
    sizeBytes: datas[i]!.length,
  }));
  return { bytes: Buffer.concat([len, json, ...datas]), tensors };
}

export function chunkHashes(bytes: Buffer, chunkBytes: number) {
  const chunks = [];
  for (let off = 0; off < bytes.length; off += chunkBytes) {
    const part = bytes.subarray(off, Math.min(bytes.length, off + chunkBytes));
    chunks.push({
      offset: off,
      sizeBytes: part.length,
      sha256: createHash("sha256").update(part).digest("hex"),
    });
  }
  return chunks;
}

export interface VersionSpec {
  shards?: number;
  /** Float32 elements per tensor; two tensors per shard. */
  elements?: number;
  chunkBytes?: number;
  model?: string;
}

/** Writes `<root>/<version>/{*.safetensors, manifest.json}` (manifest last, via rename). */
export async function writeVersion(root: string, version: number, spec: VersionSpec = {}): Promise<Manifest> {
  const nShards = spec.shards ?? 2;
  const elements = spec.elements ?? 64 * 1024;
  const chunkBytes = spec.chunkBytes ?? 64 * 1024;
  const dir = join(root, String(version));
  await mkdir(dir, { recursive: true });
  const shards = [];
  const tensors: Tensor[] = [];
  for (let i = 0; i < nShards; i++) {
    const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(nShards).padStart(5, "0")}.safetensors`;
    const { bytes, tensors: ts } = safetensorsFile([
      { name: `layers.${i}.w`, shape: [elements / 2, 2] },
      { name: `layers.${i}.b`, shape: [elements] },
    ]);
    await writeFile(join(dir, file), bytes);
    shards.push({
      file,
      sizeBytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      chunks: chunkHashes(bytes, chunkBytes),
    });
    tensors.push(...ts.map((t) => ({ ...t, shard: file })));
  }
  const manifest: Manifest = {
    version,
    format: "safetensors",
    chunkBytes,
    shards,
    tensors,
    createdUnixMs: Date.now(),
    model: spec.model ?? "tiny",
  };
  await writeFile(join(dir, "manifest.json.tmp"), JSON.stringify(manifest));
  await rename(join(dir, "manifest.json.tmp"), join(dir, "manifest.json"));
  return manifest;
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

/** A TCP proxy that destroys the first `cuts` connections after `afterBytes` bytes flow back to the client. */
export async function cuttingProxy(target: { host: string; port: number }, afterBytes: number, cuts = 1) {
  let left = cuts;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    let seen = 0;
    const cut = left > 0;
    if (cut) left--;
    upstream.on("data", (d: Buffer) => {
      seen += d.length;
      if (cut && seen > afterBytes) {
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    client.on("data", (d) => upstream.write(d));
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => (server.close(() => r()), server.unref())),
  };
}

export interface ReloadCall {
  path: string;
  body: Record<string, unknown>;
}

/**
 * An engine stand-in: every POST (SGLang's /update_weights_from_disk, vLLM's /collective_rpc)
 * is recorded and answered with success unless `fail(call, index)` says otherwise (then HTTP
 * 500 with an SGLang-shaped failure); GET /v1/models answers 200 with the `policy_version` the
 * last successful load named (as the local engine does; -1 before any, or after `restart()`).
 */
export async function engineStandIn(
  fail: (call: ReloadCall, index: number) => boolean = () => false,
  port = 0,
) {
  const calls: ReloadCall[] = [];
  let served = -1;
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (d) => (text += String(d)));
    req.on("end", () => {
      if (req.method === "GET" && req.url === "/v1/models") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ data: [{ id: "tiny", policy_version: served }] }));
      }
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const c = { path: req.url ?? "", body };
      calls.push(c);
      const failed = fail(c, calls.length - 1);
      if (!failed && typeof body.policy_version === "number") served = body.policy_version;
      res.writeHead(failed ? 500 : 200, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          failed
            ? { success: false, message: "out of memory while loading" }
            : { success: true, message: "ok" },
        ),
      );
    });
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  const bound = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    calls,
    /** The engine process restarted: it serves no loaded version. */
    restart: () => void (served = -1),
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

/** Polls until fn() is truthy or the deadline passes (then throws with the label). */
export async function until<T>(fn: () => T | Promise<T>, label: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
