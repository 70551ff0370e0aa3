// Server side of Pull, shared by the weight service and by sidecars serving peers: checks the
// requested range against the manifest, then streams it from the file in pieces, one read
// ahead of the socket at most (it waits for the stream's 'drain'), so memory stays bounded by
// a few pieces whatever the model size.
import { open } from "node:fs/promises";
import type * as grpc from "@grpc/grpc-js";
import { L0Error, invalidField } from "../errors.js";
import { checkToken, toServiceError } from "../grpc.js";
import { type Logger, errorFields } from "../log.js";
import { type l0, WeightsService } from "../proto.js";
import { type Manifest, type Shard, shardOf } from "./manifest.js";

/** Bytes reserved before a piece's data for its protobuf header (tag + varint, twice). */
const HEADROOM = 16;
/** Pieces whose buffer has HEADROOM bytes of ours before the data (allocated by pumpRange). */
const withHeadroom = new WeakSet<Uint8Array>();

function pieceHeader(offset: number, length: number): number[] {
  const out: number[] = [];
  const varint = (n: number) => {
    while (n > 0x7f) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
  };
  if (offset > 0) {
    out.push(0x08); // field 1, varint
    varint(offset);
  }
  if (length > 0) {
    out.push(0x12); // field 2, length-delimited
    varint(length);
  }
  return out;
}

/**
 * WeightPiece without copying the data when pumpRange left room for the header in front of it
 * (the generated serializer copies it twice, which at GB/s is most of the sender's work).
 * Wire-identical to the generated encoding.
 */
export function serializePiece(m: l0.v1.IWeightPiece): Buffer {
  const data = m.data ?? new Uint8Array(0);
  const head = pieceHeader(Number(m.offset ?? 0), data.length);
  if (withHeadroom.has(data) && data.byteOffset >= head.length) {
    const start = data.byteOffset - head.length;
    const out = Buffer.from(data.buffer, start, head.length + data.length);
    for (let i = 0; i < head.length; i++) out[i] = head[i]!;
    return out;
  }
  return Buffer.concat([Buffer.from(head), data]);
}

/** The Weights service definition with the one-copy piece serializer (servers of Pull use it). */
export const WEIGHTS_SERVICE = {
  ...WeightsService,
  pull: { ...WeightsService.pull, responseSerialize: serializePiece },
} as unknown as grpc.ServiceDefinition;

export const DEFAULT_PIECE_BYTES = 1 << 20;
export const MAX_PIECE_BYTES = 4 << 20;

export interface ByteRange {
  shard: Shard;
  start: number;
  end: number;
  pieceBytes: number;
}

/** Pure: the byte range a PullRequest asks for, or an error naming the bad field. */
export function resolveRange(manifest: Manifest, req: l0.v1.IPullRequest): ByteRange {
  const file = req.shard ?? "";
  if (!file) throw invalidField("shard", "is required");
  const shard = shardOf(manifest, file);
  if (!shard)
    throw new L0Error("NotFound", `shard: version ${manifest.version} has no shard ${JSON.stringify(file)}`, {
      reason: "UnknownShard",
    });
  const start = Number(req.offset ?? 0);
  if (start > shard.sizeBytes)
    throw invalidField("offset", `${start} is past the end of ${file} (${shard.sizeBytes} bytes)`);
  const length = Number(req.length ?? 0);
  const end = length === 0 ? shard.sizeBytes : start + length;
  if (end > shard.sizeBytes)
    throw invalidField(
      "length",
      `offset + length = ${end} is past the end of ${file} (${shard.sizeBytes} bytes)`,
    );
  const asked = Number(req.pieceBytes ?? 0);
  const pieceBytes = asked === 0 ? DEFAULT_PIECE_BYTES : Math.min(MAX_PIECE_BYTES, Math.max(4096, asked));
  return { shard, start, end, pieceBytes };
}

export interface PumpOptions {
  path: string;
  start: number;
  end: number;
  pieceBytes: number;
  /** Resolves once [.., end) is readable; a relaying peer waits for bytes it is still receiving. */
  waitFor?: (end: number, signal: AbortSignal) => Promise<void>;
  onSent?: (bytes: number) => void;
}

/** Where pumpRange puts the pieces of a range: a gRPC Pull stream or a bulk socket (bulk.ts). */
export interface PieceOut {
  /** Takes a piece; `done` runs once its buffer may be reused. False: wait for `drained`. */
  write(offset: number, data: Buffer, done: () => void): boolean;
  /** Resolves on the transport's 'drain', or when `signal` aborts. */
  drained(signal: AbortSignal): Promise<void>;
  /** Aborts once the receiver is gone (cancelled, closed). */
  readonly gone: AbortSignal;
}

/** What serves the bytes of a PullRequest (token already checked): the weight service, or a peer. */
export interface RangeSource {
  serveRange(req: l0.v1.IPullRequest, out: PieceOut): Promise<void>;
}

/** A gRPC Pull stream as a PieceOut (pieces keep room for their header: see serializePiece). */
export function grpcOut(call: grpc.ServerWritableStream<l0.v1.PullRequest, l0.v1.IWeightPiece>): PieceOut {
  const gone = new AbortController();
  const onGone = () => gone.abort();
  call.once("cancelled", onGone);
  call.once("close", onGone);
  return {
    write: (offset, data, done) => {
      withHeadroom.add(data);
      return call.write({ offset, data }, done);
    },
    drained: (signal) => drained(call, signal),
    gone: gone.signal,
  };
}

/** The Pull handler of a RangeSource: checks the token, serves the range, ends or fails the call. */
export function pullHandler(
  source: RangeSource,
  token: string,
  logger: Logger,
): (call: grpc.ServerWritableStream<l0.v1.PullRequest, l0.v1.IWeightPiece>) => void {
  return (call) =>
    void (async () => {
      try {
        checkToken(call.metadata, token);
        await source.serveRange(call.request, grpcOut(call));
        call.end();
      } catch (err) {
        failStream(call, err, logger);
      }
    })();
}

/** Streams [start, end) of a file to `out`, honouring backpressure. Does not end the stream. */
export async function pumpRange(out: PieceOut, opts: PumpOptions): Promise<void> {
  const signal = out.gone;
  const fh = await open(opts.path, "r");
  // Read buffers are reused: grpc-js copies each message into its own frame when it serializes
  // it, and a socket is done with a buffer once its write callback has run, so a piece's buffer
  // is free again then (fresh 1 MiB buffers per piece cost page faults and garbage collection at
  // GB/s). At most POOL pieces are between the file and the transport.
  const free: Buffer[] = [];
  let allocated = 0;
  let returned: (() => void) | null = null;
  const give = (buf: Buffer) => {
    free.push(buf);
    returned?.();
  };
  try {
    let pos = opts.start;
    while (pos < opts.end && !signal.aborted) {
      const n = Math.min(opts.pieceBytes, opts.end - pos);
      if (opts.waitFor) await opts.waitFor(pos + n, signal);
      if (free.length === 0 && allocated >= POOL) await pieceReturned(signal, (r) => (returned = r));
      if (signal.aborted) break;
      let whole = free.pop();
      if (!whole || whole.length < HEADROOM + n) {
        whole = Buffer.allocUnsafeSlow(HEADROOM + opts.pieceBytes);
        allocated++;
      }
      // Room in front for the header, so serializePiece need not copy the data.
      const data = whole.subarray(HEADROOM, HEADROOM + n);
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(data, got, n - got, pos + got);
        if (bytesRead === 0)
          throw new L0Error("Internal", `${opts.path}: file ended at ${pos + got}, expected ${opts.end}`);
        got += bytesRead;
      }
      const ok = out.write(pos, data, () => give(whole));
      pos += n;
      opts.onSent?.(n);
      if (!ok && !signal.aborted) await out.drained(signal);
    }
  } finally {
    await fh.close();
  }
}

/** Pieces of one Pull between the file and grpc-js (each at most MAX_PIECE_BYTES). */
const POOL = 4;

function pieceReturned(signal: AbortSignal, register: (r: (() => void) | null) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      register(null);
      signal.removeEventListener("abort", done);
      resolve();
    };
    register(done);
    signal.addEventListener("abort", done, { once: true });
  });
}

export function drained(stream: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    stream.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Rejects a streaming call with the one error mapping. */
export function failStream(
  call: grpc.ServerWritableStream<unknown, unknown>,
  err: unknown,
  logger: Logger,
): void {
  if (!(err instanceof L0Error)) logger.error("unhandled error in weights stream", errorFields(err));
  call.emit("error", toServiceError(err));
}
