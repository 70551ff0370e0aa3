// The weight bench's synthetic checkpoint: one exported version in safetensors shards with a
// manifest, written the way the learner exports (4 MiB chunks, sha256 each), and the same bytes
// published again under another version number (hard links, manifest last).
import { createHash, randomFillSync } from "node:crypto";
import { link, mkdir, open, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Manifest, type Shard } from "../../../lib/weights/manifest.js";

const MiB = 1024 ** 2;

/** Writes one exported version of `totalBytes` in `nShards` safetensors shards, hashing chunks as it goes. */
export async function exportCheckpoint(
  dir: string,
  version: number,
  totalBytes: number,
  nShards: number,
): Promise<Manifest> {
  const chunkBytes = 4 * MiB; // as the learner exports (images/trainer/learner/export.py)
  const vdir = join(dir, String(version));
  await mkdir(vdir, { recursive: true });
  const shards: Shard[] = [];
  const tensors: Manifest["tensors"] = [];
  const block = Buffer.allocUnsafe(chunkBytes);
  for (let i = 0; i < nShards; i++) {
    const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(nShards).padStart(5, "0")}.safetensors`;
    const dataBytes = Math.floor(totalBytes / nShards / 4) * 4;
    const name = `layers.${i}.weight`;
    let header = Buffer.from(
      JSON.stringify({ [name]: { dtype: "F32", shape: [dataBytes / 4], data_offsets: [0, dataBytes] } }),
    );
    header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const head = Buffer.concat([len, header]);
    const size = head.length + dataBytes;
    const fh = await open(join(vdir, file), "w");
    const whole = createHash("sha256");
    const chunks = [];
    for (let off = 0; off < size; off += chunkBytes) {
      const n = Math.min(chunkBytes, size - off);
      const part = block.subarray(0, n);
      randomFillSync(part);
      if (off === 0) head.copy(part);
      await fh.write(part, 0, n, off);
      whole.update(part);
      chunks.push({ offset: off, sizeBytes: n, sha256: createHash("sha256").update(part).digest("hex") });
    }
    await fh.close();
    shards.push({ file, sizeBytes: size, sha256: whole.digest("hex"), chunks });
    tensors.push({
      name,
      dtype: "F32",
      shape: [dataBytes / 4],
      shard: file,
      offset: head.length,
      sizeBytes: dataBytes,
    });
  }
  const m: Manifest = {
    version,
    format: "safetensors",
    chunkBytes,
    shards,
    tensors,
    createdUnixMs: Date.now(),
    model: "bench",
  };
  await writeFile(join(vdir, "manifest.json"), JSON.stringify(m));
  return m;
}

/** The same bytes as version `version` in another export dir: hard links, then the manifest (by rename). */
export async function republish(
  fromDir: string,
  from: Manifest,
  toDir: string,
  version: number,
): Promise<void> {
  const vdir = join(toDir, String(version));
  await mkdir(vdir, { recursive: true });
  for (const s of from.shards) await link(join(fromDir, String(from.version), s.file), join(vdir, s.file));
  await writeFile(join(vdir, "manifest.tmp"), JSON.stringify({ ...from, version }));
  await rename(join(vdir, "manifest.tmp"), join(vdir, "manifest.json"));
}
