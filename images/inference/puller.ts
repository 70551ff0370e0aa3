// Pulls one version's shards into a staging directory: hashes each piece as it arrives and writes
// it in place, compares each chunk's hash with the manifest once its last piece is in, and on a
// bad chunk, a cut or a stalled stream pulls again from the first byte not yet verified (resume),
// moving from a failing peer to the weight service. Several shards may be pulled at once, one
// Pull stream each (`streams`); chunks are hashed and written on the event loop or by a HashPool's
// worker threads (lib/weights/sink.ts). Memory: the pieces whose writes are still running (at
// most ~16 MiB per stream), or the pool's slots.
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { L0Error } from "../../lib/errors.js";
import { channelOptions, fromServiceError, tokenMetadata } from "../../lib/grpc.js";
import { type Logger, errorFields } from "../../lib/log.js";
import { type l0, WeightsClient } from "../../lib/proto.js";
import { clientCredentials, type RunTls } from "../../lib/tls.js";
import { type HashPool } from "../../lib/weights/hash-pool.js";
import { type Manifest, type Shard } from "../../lib/weights/manifest.js";
import { type WeightsMetrics } from "../../lib/weights/metrics.js";
import { bulkPull } from "../../lib/weights/bulk.js";
import { UnansweredBulkPorts } from "../../lib/weights/bulk-ports.js";
import { ChunkMismatch, ShardSink } from "../../lib/weights/sink.js";

/**
 * Client for the weight service or a peer, with a receive window large enough for bulk data;
 * mutual TLS with the run's material when given (lib/tls.ts).
 */
export function weightsClient(address: string, tls?: RunTls): WeightsClient {
  const { credentials, options } = clientCredentials(tls);
  return new WeightsClient(address, credentials, {
    ...channelOptions(),
    ...options,
    // grpc-js defaults to HTTP/2's 64 KiB window, which caps a stream far below the link.
    "grpc-node.flow_control_window": 16 << 20,
  });
}

export interface PullSource {
  client: WeightsClient;
  /** "service" or the peer's engine id, for logs. */
  label: string;
  /** host:port of the source's bulk channel (lib/weights/bulk.ts), when it advertises one. */
  bulk?: string;
}

/** How shard bytes travel: bulk when the source advertises it (auto), always gRPC Pull, or bulk only. */
export const TRANSPORTS = ["auto", "grpc", "bulk"] as const;
export type Transport = (typeof TRANSPORTS)[number];

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
  /** Shards pulled at once, each on its own Pull stream (default 1). */
  streams?: number;
  /** Worker threads that hash and write received chunks; none: on this thread. */
  hashPool?: HashPool | null;
  /** Default "auto". */
  transport?: Transport;
  /** The run's TLS material, for bulk connections (gRPC clients carry their own). */
  tls?: RunTls;
  /** Deadline to connect to a bulk port (lib/weights/bulk.ts BULK_CONNECT_TIMEOUT_MS). */
  bulkConnectTimeoutMs?: number;
  /**
   * Bulk ports that did not answer lately, shared by the pulls of one process so a silent port
   * costs one deadline per retry period, not one per version; default: this pull's own.
   */
  unanswered?: UnansweredBulkPorts;
}

/** What a sidecar sets once for all its pulls. */
export type PullTuning = Pick<
  PullVersionOptions,
  | "pieceBytes"
  | "idleTimeoutMs"
  | "maxAttempts"
  | "streams"
  | "hashPool"
  | "transport"
  | "tls"
  | "bulkConnectTimeoutMs"
  | "unanswered"
>;

/** What the lanes of one pull share: the source now, and the bulk ports that did not answer lately. */
interface Route {
  source: PullSource;
  noBulk: UnansweredBulkPorts;
}

/** Pure: the bulk address to pull from, or null for gRPC Pull. */
export function bulkAddress(
  transport: Transport,
  source: PullSource,
  noBulk: { has(address: string): boolean },
): string | null {
  if (transport === "grpc") return null;
  if (transport === "bulk") {
    if (!source.bulk)
      throw new L0Error("FailedPrecondition", `transport bulk: ${source.label} advertises no bulk port`, {
        reason: "NoBulkPort",
      });
    return source.bulk;
  }
  return source.bulk && !noBulk.has(source.bulk) ? source.bulk : null;
}

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

/**
 * The bulk port of a source never answered (transport auto): the next attempts at the same source
 * go over Pull; the source itself has not failed.
 */
class BulkNoAnswer extends Error {
  constructor(
    readonly bulk: string,
    readonly error: unknown,
  ) {
    super(`bulk ${bulk} does not answer: ${(error as Error).message}`);
  }
}

const FATAL = new Set(["NotFound", "InvalidArgument", "Unauthenticated", "FailedPrecondition"]);

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

/**
 * Pulls every shard of the version, `streams` shards at a time (largest first, so the streams
 * end together). The first shard to fail stops the others and fails the pull.
 */
export async function pullVersion(opts: PullVersionOptions): Promise<void> {
  // Once the peer fails, the rest of the version comes from the service.
  const from: Route = { source: opts.primary, noBulk: opts.unanswered ?? new UnansweredBulkPorts() };
  const queue = [...opts.manifest.shards].sort((a, b) => b.sizeBytes - a.sizeBytes);
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  let failed: { err: unknown } | null = null;
  const lane = async () => {
    for (let shard = queue.shift(); shard && !signal.aborted; shard = queue.shift()) {
      try {
        await pullShard(opts, shard, from, signal);
      } catch (err) {
        failed ??= { err };
        stop.abort();
      }
    }
  };
  const lanes = Math.max(1, Math.min(opts.streams ?? 1, queue.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failed) throw (failed as { err: unknown }).err;
  if (signal.aborted) throw new L0Error("Unavailable", "pull aborted");
}

async function pullShard(
  opts: PullVersionOptions,
  shard: Shard,
  from: Route,
  signal: AbortSignal,
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
  /** Bulk ports that did not answer this shard, each tried again over Pull once for free. */
  const overPull = new Set<string>();
  try {
    if (shard.sizeBytes === 0) opts.onVerified?.(shard.file, 0);
    while (st.verified < shard.sizeBytes) {
      try {
        await pullRange(opts, { source, noBulk: from.noBulk }, fh, shard, st, signal);
      } catch (caught) {
        if (signal.aborted) throw new L0Error("Unavailable", "pull aborted");
        if (caught instanceof BulkNoAnswer && !overPull.has(caught.bulk)) {
          overPull.add(caught.bulk); // the same source again, over Pull, at once
          continue;
        }
        const err = caught instanceof BulkNoAnswer ? caught.error : caught;
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
        await sleep(Math.min(2000, 25 * 2 ** attempt), signal);
      }
    }
  } finally {
    await fh.close();
  }
}

/** The pieces of one range, over either transport. */
interface PieceStream {
  pieces: AsyncIterable<Pick<l0.v1.WeightPiece, "offset" | "data">>;
  /** False while a bulk server has not answered yet (a connection problem, not an error of it). */
  readonly answered: boolean;
  cancel(): void;
}

function grpcPull(source: PullSource, req: l0.v1.IPullRequest, token: string): PieceStream {
  const stream = source.client.pull(req, tokenMetadata(token));
  return {
    pieces: stream as AsyncIterable<l0.v1.WeightPiece>,
    answered: true,
    cancel: () => stream.cancel(),
  };
}

/**
 * One stream (bulk or gRPC Pull) from st.verified to the end of the shard; advances st.verified
 * chunk by chunk. A bulk port that never answers (refused, filtered, a TLS failure) sends the
 * next attempts at this source over gRPC (transport auto).
 */
async function pullRange(
  opts: PullVersionOptions,
  route: Route,
  fh: FileHandle,
  shard: Shard,
  st: { verified: number },
  signal: AbortSignal,
): Promise<void> {
  const { source } = route;
  const transport = opts.transport ?? "auto";
  const bulk = bulkAddress(transport, source, route.noBulk);
  const req = { version: opts.manifest.version, shard: shard.file, offset: st.verified };
  const stream: PieceStream = bulk
    ? bulkPull(
        bulk,
        { ...req, puller: opts.pullerId },
        { token: opts.token, tls: opts.tls, connectTimeoutMs: opts.bulkConnectTimeoutMs },
      )
    : grpcPull(source, { ...req, pullerId: opts.pullerId, pieceBytes: opts.pieceBytes ?? 0 }, opts.token);
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  let stalled = false;
  const idle = setTimeout(() => ((stalled = true), stream.cancel()), idleMs);
  const onAbort = () => stream.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  const sink = new ShardSink({
    fh,
    shard,
    from: st.verified,
    pool: opts.hashPool,
    onVerified: (end) => {
      st.verified = end;
      opts.onVerified?.(shard.file, end);
    },
  });
  try {
    for await (const p of stream.pieces) {
      idle.refresh();
      if (Number(p.offset) !== sink.position)
        throw new ChunkMismatch(`piece at ${Number(p.offset)}, expected ${sink.position}`);
      opts.metrics.bytes.inc({ direction: "received" }, p.data.length);
      await sink.push(p.data);
    }
    await sink.finish();
  } catch (err) {
    stream.cancel();
    const e =
      err instanceof ChunkMismatch
        ? err
        : stalled
          ? new L0Error("DeadlineExceeded", `no data for ${idleMs} ms from ${source.label}`)
          : err instanceof L0Error
            ? err
            : fromServiceError(err);
    if (bulk && !stream.answered && transport === "auto" && !signal.aborted) {
      route.noBulk.add(bulk);
      opts.logger.warn("weights bulk port does not answer; pulling over gRPC", {
        source: source.label,
        bulk,
        ...errorFields(e),
      });
      throw new BulkNoAnswer(bulk, e);
    }
    throw e;
  } finally {
    clearTimeout(idle);
    signal.removeEventListener("abort", onAbort);
    // Writes still running (of a chunk not verified yet) land before the caller pulls the same
    // range again, so a late write of bad bytes cannot overwrite good ones.
    await sink.drain();
  }
  if (st.verified < shard.sizeBytes)
    throw new L0Error(
      "Unavailable",
      `stream from ${source.label} ended at ${sink.position} of ${shard.sizeBytes}`,
    );
}
