// Pulls one version's shards into a staging directory: hashes each piece as it arrives and writes
// it in place, compares each chunk's hash with the manifest once its last piece is in, and on a
// bad chunk, a cut or a stalled stream pulls again from the first byte not yet verified (resume),
// moving from a failing peer to the weight service. Memory: the pieces whose writes are still
// running (at most ~16 MiB per shard being pulled).
import { type Hash, createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { L0Error } from "../../lib/errors.js";
import { channelOptions, fromServiceError, tokenMetadata } from "../../lib/grpc.js";
import { type Logger, errorFields } from "../../lib/log.js";
import { type l0, WeightsClient } from "../../lib/proto.js";
import { type Chunk, type Manifest, type Shard } from "../../lib/weights/manifest.js";
import { type WeightsMetrics } from "../../lib/weights/metrics.js";

/** Client for the weight service or a peer, with a receive window large enough for bulk data. */
export function weightsClient(address: string): WeightsClient {
  return new WeightsClient(address, grpc.credentials.createInsecure(), {
    ...channelOptions(),
    // grpc-js defaults to HTTP/2's 64 KiB window, which caps a stream far below the link.
    "grpc-node.flow_control_window": 16 << 20,
  });
}

export interface PullSource {
  client: WeightsClient;
  /** "service" or the peer's engine id, for logs. */
  label: string;
}

export interface PullVersionOptions {
  manifest: Manifest;
  /** Staging directory; shard files are created in it. */
  dir: string;
  primary: PullSource;
  /** Where to go when the primary (a peer) fails; usually the service. */
  fallback?: PullSource;
  token: string;
  pullerId: string;
  metrics: WeightsMetrics;
  logger: Logger;
  signal?: AbortSignal;
  pieceBytes?: number;
  /** Attempts per shard (cuts, bad chunks, stalls) before the version fails. */
  maxAttempts?: number;
  /** A stream that delivers nothing for this long is cut and pulled again. */
  idleTimeoutMs?: number;
  /** Called as the verified prefix of a shard grows (peers relay up to it). */
  onVerified?: (shard: string, end: number) => void;
  /**
   * Keep what an earlier, interrupted pull of this version left in `dir`: the chunks that still
   * match the manifest are not pulled again (resume across a sidecar restart).
   */
  resume?: boolean;
}

class ChunkMismatch extends Error {}

/** End of the leading chunks of an existing file that match the manifest. */
async function verifiedPrefix(fh: FileHandle, shard: Shard): Promise<number> {
  const size = (await fh.stat()).size;
  let end = 0;
  for (const c of shard.chunks) {
    if (c.offset + c.sizeBytes > size) break;
    const buf = Buffer.allocUnsafe(c.sizeBytes);
    const { bytesRead } = await fh.read(buf, 0, c.sizeBytes, c.offset);
    if (bytesRead !== c.sizeBytes) break;
    if (createHash("sha256").update(buf).digest("hex") !== c.sha256) break;
    end = c.offset + c.sizeBytes;
  }
  return end;
}

/** Writes all of `buf` at `offset` (a positional write may be short). */
async function writeAll(fh: FileHandle, buf: Uint8Array, offset: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, offset + done);
    done += bytesWritten;
  }
}

/** Bytes of received pieces whose writes may be running at once, per shard. */
const WRITE_WINDOW = 16 << 20;
const FATAL = new Set(["NotFound", "InvalidArgument", "Unauthenticated"]);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

export async function pullVersion(opts: PullVersionOptions): Promise<void> {
  // Once the peer fails, the rest of the version comes from the service.
  const from = { source: opts.primary };
  for (const shard of opts.manifest.shards) {
    if (opts.signal?.aborted) throw new L0Error("Unavailable", "pull aborted");
    await pullShard(opts, shard, from);
  }
}

async function pullShard(
  opts: PullVersionOptions,
  shard: Shard,
  from: { source: PullSource },
): Promise<void> {
  const maxAttempts = opts.maxAttempts ?? 8;
  const path = join(opts.dir, shard.file);
  let fh: FileHandle | null = null;
  const st = { verified: 0 };
  if (opts.resume) {
    fh = await open(path, "r+").catch(() => null);
    if (fh) st.verified = await verifiedPrefix(fh, shard);
    if (st.verified > 0) {
      opts.logger.info("weights pull resumes from disk", { shard: shard.file, offset: st.verified });
      opts.onVerified?.(shard.file, st.verified);
    }
  }
  fh ??= await open(path, "w");
  let source = from.source;
  let attempt = 0;
  try {
    if (shard.sizeBytes === 0) opts.onVerified?.(shard.file, 0);
    while (st.verified < shard.sizeBytes) {
      try {
        await pullRange(opts, source, fh, shard, st);
      } catch (err) {
        if (opts.signal?.aborted) throw new L0Error("Unavailable", "pull aborted");
        // The service saying the version or shard is gone, or the token is wrong, will not change.
        const last = source === (opts.fallback ?? opts.primary);
        if (last && err instanceof L0Error && FATAL.has(err.kind)) throw err;
        attempt++;
        opts.metrics.chunkRetries.inc();
        const fields = {
          version: opts.manifest.version,
          shard: shard.file,
          offset: st.verified,
          source: source.label,
        };
        if (attempt >= maxAttempts)
          throw new L0Error(
            "Unavailable",
            `shard ${shard.file} of v${opts.manifest.version}: gave up after ${attempt} attempts at offset ${st.verified}: ${(err as Error).message}`,
          );
        opts.logger.warn("weights pull retry", { ...fields, attempt, ...errorFields(err) });
        if (opts.fallback && source !== opts.fallback && !(err instanceof ChunkMismatch && attempt < 2)) {
          opts.logger.warn("weights peer failed, pulling from the service", fields);
          source = from.source = opts.fallback;
        }
        await sleep(Math.min(2000, 25 * 2 ** attempt), opts.signal);
      }
    }
  } finally {
    await fh.close();
  }
}

/** One Pull stream from st.verified to the end of the shard; advances st.verified chunk by chunk. */
async function pullRange(
  opts: PullVersionOptions,
  source: PullSource,
  fh: FileHandle,
  shard: Shard,
  st: { verified: number },
): Promise<void> {
  const req: l0.v1.IPullRequest = {
    version: opts.manifest.version,
    shard: shard.file,
    offset: st.verified,
    pullerId: opts.pullerId,
    pieceBytes: opts.pieceBytes ?? 0,
  };
  const stream = source.client.pull(req, tokenMetadata(opts.token));
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  let stalled = false;
  const idle = setTimeout(() => ((stalled = true), stream.cancel()), idleMs);
  const onAbort = () => stream.cancel();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  let ci = shard.chunks.findIndex((c) => c.offset === st.verified);
  let pos = st.verified;
  // Each piece is hashed here as it arrives (sha256 at ~2 GB/s per core costs less than copying it
  // to the thread pool, which is what WebCrypto does) and written in place, straight from the
  // buffer gRPC received it in. A chunk counts as verified once its hash matches the manifest and
  // every write of it has landed; chunks are checked in order.
  let cur: { hash: Hash; filled: number; writes: Promise<void>[] } | null = null;
  const done: { chunk: Chunk; sha256: string; writes: Promise<void> }[] = [];
  const writing: { bytes: number; landed: Promise<void> }[] = [];
  let writingBytes = 0;
  const settle = async () => {
    const { chunk, sha256, writes } = done.shift()!;
    await writes;
    if (sha256 !== chunk.sha256)
      throw new ChunkMismatch(
        `chunk at ${chunk.offset} of ${shard.file}: sha256 ${sha256}, manifest ${chunk.sha256}`,
      );
    st.verified = chunk.offset + chunk.sizeBytes;
    opts.onVerified?.(shard.file, st.verified);
  };
  try {
    for await (const p of stream as AsyncIterable<l0.v1.WeightPiece>) {
      idle.refresh();
      const data = p.data;
      if (Number(p.offset) !== pos) throw new ChunkMismatch(`piece at ${Number(p.offset)}, expected ${pos}`);
      if (pos + data.length > shard.sizeBytes) throw new ChunkMismatch(`piece runs past the shard's end`);
      opts.metrics.bytes.inc({ direction: "received" }, data.length);
      const landed = writeAll(fh, data, pos);
      landed.catch(() => undefined); // awaited through its chunk; a failure must not go unhandled meanwhile
      writing.push({ bytes: data.length, landed });
      writingBytes += data.length;
      let used = 0;
      while (used < data.length) {
        const chunk = shard.chunks[ci]!;
        cur ??= { hash: createHash("sha256"), filled: 0, writes: [] };
        const take = Math.min(data.length - used, chunk.sizeBytes - cur.filled);
        cur.hash.update(data.subarray(used, used + take));
        cur.writes.push(landed);
        cur.filled += take;
        used += take;
        pos += take;
        if (cur.filled === chunk.sizeBytes) {
          const writes = Promise.all(cur.writes).then(() => undefined);
          writes.catch(() => undefined); // awaited (and thrown) by settle; unhandled meanwhile would crash
          done.push({ chunk, sha256: cur.hash.digest("hex"), writes });
          cur = null;
          ci++;
        }
      }
      while (done.length > 1) await settle();
      // Bounded memory: wait for the oldest writes when too many received bytes are unwritten.
      while (writingBytes > WRITE_WINDOW) {
        const w = writing.shift()!;
        await w.landed;
        writingBytes -= w.bytes;
      }
    }
    while (done.length > 0) await settle();
  } catch (err) {
    stream.cancel();
    if (err instanceof ChunkMismatch) throw err;
    if (stalled) throw new L0Error("DeadlineExceeded", `no data for ${idleMs} ms from ${source.label}`);
    throw fromServiceError(err);
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener("abort", onAbort);
    // Writes still running (of a chunk not verified yet) land before the caller pulls the same
    // range again, so a late write of bad bytes cannot overwrite good ones.
    await Promise.allSettled(writing.map((w) => w.landed));
  }
  if (st.verified < shard.sizeBytes)
    throw new L0Error("Unavailable", `stream from ${source.label} ended at ${pos} of ${shard.sizeBytes}`);
}
