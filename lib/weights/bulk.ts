// The bulk channel for shard bytes: what Pull streams (the same RangeSource, so the same checks,
// the same relaying of a verified prefix, the same byte counts) over a bare TCP socket, or a TLS
// one with the run's mutual TLS when the run has it (lib/tls.ts), without HTTP/2's 16 KiB frames
// and their per-frame JS on both ends (docs/weights.md). gRPC stays the control channel: Plan
// tells a puller the bulk ports, and the puller resumes from its verified prefix as over Pull.
//
// One request per connection:
//   client: one line of JSON, at most MAX_REQUEST_BYTES with its "\n":
//           {"v":1,"authorization":"Bearer <run token>","version":N,"shard":"<file>","offset":N,"puller":"<id>"}
//   server: one line of JSON, then
//           {"ok":true,"offset":N}                          the raw bytes [offset, end of shard), close
//           {"error":{"kind":"NotFound","reason":"...","message":"..."}}                        close
// A failure after the first byte (a relaying peer lost its source) cuts the connection: the
// client resumes from its verified prefix, as after a cut Pull.
import net from "node:net";
import tls from "node:tls";
import { type ErrorKind, L0Error, invalidField } from "../errors.js";
import { checkBearer } from "../grpc.js";
import { type Logger, errorFields } from "../log.js";
import { type RunTls, tlsConnectOptions, tlsServerOptions } from "../tls.js";
import { drained, MAX_PIECE_BYTES, type PieceOut, type RangeSource } from "./stream.js";

export const BULK_PROTOCOL = 1;
/** Largest request line and largest answer line, "\n" included. */
export const MAX_REQUEST_BYTES = 4096;
/**
 * A connection whose request has not arrived and been authorized by then is closed: an absolute
 * deadline, so a client trickling a byte now and then does not hold it open.
 */
export const REQUEST_TIMEOUT_MS = 10_000;
/** After its answer (an error) or its last byte, a connection the client has not closed by then is destroyed. */
export const LINGER_MS = 5000;
/**
 * Connections served at once; beyond that a connection is answered Unavailable
 * (TooManyConnections) and the client retries. A server has ~2 per relaying peer and stream
 * (`--fanout` x `--pull-streams`), the service up to one per sidecar and stream without fan-out.
 */
export const MAX_CONNECTIONS = 1024;
/**
 * A bulk client that is not connected by then (TCP, and the TLS handshake with TLS) gives up: a
 * filtered port drops packets, and would otherwise cost the puller's whole idle timeout. The
 * answer line is not under this deadline: a relaying peer sends it with the first piece, which it
 * may still be receiving.
 */
export const BULK_CONNECT_TIMEOUT_MS = 5000;

export interface BulkRequest {
  authorization: string;
  version: number;
  shard: string;
  offset: number;
  puller: string;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Pure: the request line (without its "\n"), or an InvalidArgument naming the bad field. */
export function parseRequest(line: string): BulkRequest {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw invalidField("request", "is not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o))
    throw invalidField("request", "must be a JSON object");
  if (o.v !== BULK_PROTOCOL) throw invalidField("v", `must be ${BULK_PROTOCOL}, got ${JSON.stringify(o.v)}`);
  if (typeof o.authorization !== "string") throw invalidField("authorization", "must be a string");
  if (!isCount(o.version) || o.version === 0) throw invalidField("version", "must be a positive integer");
  if (typeof o.shard !== "string" || o.shard === "")
    throw invalidField("shard", "must be a non-empty string");
  if (!isCount(o.offset)) throw invalidField("offset", "must be a non-negative integer");
  const puller = typeof o.puller === "string" ? o.puller : "";
  return { authorization: o.authorization, version: o.version, shard: o.shard, offset: o.offset, puller };
}

/**
 * Pure: the answer line: the offset the bytes start at, or the L0Error the server answered;
 * throws Unavailable when the line is no answer of this protocol (not JSON, neither ok nor error).
 */
export function parseAnswer(line: string, from: string): { offset: number } | { error: L0Error } {
  let o: { ok?: unknown; offset?: unknown; error?: { kind?: unknown; reason?: unknown; message?: unknown } };
  try {
    o = JSON.parse(line) as typeof o;
  } catch {
    throw new L0Error("Unavailable", `bulk ${from}: answer is not JSON`);
  }
  if (o?.ok === true && isCount(o.offset)) return { offset: o.offset };
  const e = o?.error;
  if (typeof e !== "object" || e === null)
    throw new L0Error("Unavailable", `bulk ${from}: malformed answer ${line.slice(0, 200)}`);
  const kind = (typeof e.kind === "string" ? e.kind : "Internal") as ErrorKind;
  const message = typeof e.message === "string" ? e.message : "malformed bulk answer";
  return {
    error: new L0Error(kind, message, { reason: typeof e.reason === "string" ? e.reason : undefined }),
  };
}

const answerLine = (o: unknown) => JSON.stringify(o) + "\n";

export interface BulkServer {
  port: number;
  /**
   * Stops taking connections; destroys the open ones, or with `graceful` resolves once they have
   * closed on their own (their deadlines included).
   */
  close(o?: { graceful?: boolean }): Promise<void>;
}

export interface BulkServerOptions {
  source: RangeSource;
  token: string;
  logger: Logger;
  host?: string;
  /** 0 = any free port. */
  port: number;
  /** The run's TLS material: then a TLS server requiring a client certificate of the run's CA. */
  tls?: RunTls;
  /** Default REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /** Default LINGER_MS. */
  lingerMs?: number;
  /** Default MAX_CONNECTIONS. */
  maxConnections?: number;
}

export async function startBulkServer(o: BulkServerOptions): Promise<BulkServer> {
  const open = new Set<net.Socket>();
  const max = o.maxConnections ?? MAX_CONNECTIONS;
  const onSocket = (sock: net.Socket) => {
    open.add(sock);
    sock.once("close", () => open.delete(sock));
    sock.on("error", () => undefined); // a peer gone mid-write: 'close' follows
    if (open.size <= max) return void serveOne(sock, o);
    sock.resume(); // its request is not read: drained, so the close sends no reset before the answer
    const message = `bulk: ${max} connections open, the most this server takes`;
    sock.end(answerLine({ error: { kind: "Unavailable", reason: "TooManyConnections", message } }));
    destroyLater(sock, o.lingerMs ?? LINGER_MS);
  };
  const server = o.tls ? tls.createServer(tlsServerOptions(o.tls), onSocket) : net.createServer(onSocket);
  // Beyond twice the bound (handshakes in flight, clients that ignore the answer) Node drops
  // connections as it accepts them, before any TLS work.
  server.maxConnections = 2 * max;
  server.on("tlsClientError", (err) => o.logger.debug("bulk TLS handshake refused", errorFields(err)));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host ?? "0.0.0.0", () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: (c = {}) =>
      new Promise<void>((resolve) => {
        if (!c.graceful) for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads the request line; rejects with InvalidArgument when it is too long or the peer leaves. */
function readRequest(sock: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const finish = (err: Error | null, line = "") => {
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.off("close", onEnd);
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const nl = got.indexOf(10);
      if (nl >= 0 && nl < MAX_REQUEST_BYTES) return finish(null, got.subarray(0, nl).toString("utf8"));
      if (got.length >= MAX_REQUEST_BYTES)
        finish(invalidField("request", `longer than ${MAX_REQUEST_BYTES} bytes without a newline`));
    };
    const onEnd = () => finish(invalidField("request", "connection ended before a full request line"));
    sock.on("data", onData);
    sock.once("end", onEnd);
    sock.once("close", onEnd); // destroyed (the request timeout, a reset): settle, do not leak
  });
}

/** A bulk socket as a PieceOut: the answer line goes out with the first piece. */
function socketOut(sock: net.Socket): PieceOut & { started: boolean } {
  const gone = new AbortController();
  sock.once("close", () => gone.abort());
  const out = {
    started: false,
    gone: gone.signal,
    write: (offset: number, data: Buffer, done: () => void) => {
      if (!out.started) {
        out.started = true;
        sock.write(answerLine({ ok: true, offset }));
      }
      return sock.write(data, () => done());
    },
    drained: (signal: AbortSignal) => drained(sock, signal),
  };
  return out;
}

/** Destroys the socket `ms` from now unless it closes first: a client that never closes holds none. */
function destroyLater(sock: net.Socket, ms: number): void {
  const t = setTimeout(() => sock.destroy(), ms);
  sock.once("close", () => clearTimeout(t));
}

async function serveOne(sock: net.Socket, o: BulkServerOptions): Promise<void> {
  const lingerMs = o.lingerMs ?? LINGER_MS;
  const deadline = setTimeout(() => sock.destroy(), o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
  sock.once("close", () => clearTimeout(deadline));
  const out = socketOut(sock);
  try {
    const req = parseRequest(await readRequest(sock));
    checkBearer(req.authorization, o.token);
    // Authorized: the range may take its time (a relaying peer waits for bytes it is receiving);
    // the client's own idle timeout, and its close, end it.
    clearTimeout(deadline);
    await o.source.serveRange(
      {
        version: req.version,
        shard: req.shard,
        offset: req.offset,
        pullerId: req.puller,
        pieceBytes: MAX_PIECE_BYTES,
      },
      out,
    );
    if (!out.started) sock.write(answerLine({ ok: true, offset: req.offset })); // an empty range
    sock.end(() => destroyLater(sock, lingerMs)); // once the last byte is with the kernel
  } catch (err) {
    clearTimeout(deadline);
    if (out.started || sock.destroyed) {
      sock.destroy(); // mid-stream: the cut tells the client to resume
      return;
    }
    if (!(err instanceof L0Error)) o.logger.error("unhandled error in weights bulk", errorFields(err));
    const e = err instanceof L0Error ? err : new L0Error("Internal", "internal error");
    sock.end(answerLine({ error: { kind: e.kind, reason: e.reason, message: e.message } }));
    destroyLater(sock, lingerMs);
  }
}

export interface BulkStream {
  /** The bytes from the asked offset on, in the pieces the socket delivers. */
  pieces: AsyncIterable<{ offset: number; data: Buffer }>;
  /** True once the server answered (anything before that is a connection problem). */
  readonly answered: boolean;
  cancel(): void;
}

/** "host:port" (the host may be a bracketed IPv6 address). */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535)
    throw invalidField("address", `${JSON.stringify(address)} is not host:port`);
  return { host: address.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port };
}

/**
 * Pure: the bulk channel at `port` on `address`'s host; undefined when either is unknown (0, "")
 * or the address is not a plain host:port (no port, a gRPC target such as "dns:///h:1"): then the
 * source is pulled over gRPC, which dials what this cannot parse.
 */
export function bulkAt(address: string | undefined, port: number): string | undefined {
  if (!address || !port) return undefined;
  let host: string;
  try {
    host = splitAddress(address).host;
  } catch {
    return undefined;
  }
  const bracketed = /^\[.*\]:\d+$/.test(address);
  if (host.includes("/") || (host.includes(":") && !bracketed)) return undefined;
  return `${bracketed ? `[${host}]` : host}:${port}`;
}

/** One bulk pull of a shard from `offset` to its end. Errors are L0Errors (Unavailable for the link). */
export function bulkPull(
  address: string,
  req: { version: number; shard: string; offset: number; puller: string },
  o: { token: string; tls?: RunTls; connectTimeoutMs?: number },
): BulkStream {
  const { host, port } = splitAddress(address);
  const sock = o.tls ? tls.connect({ host, port, ...tlsConnectOptions(o.tls) }) : net.connect({ host, port });
  const connectMs = o.connectTimeoutMs ?? BULK_CONNECT_TIMEOUT_MS;
  const connecting = setTimeout(
    () => sock.destroy(new L0Error("Unavailable", `bulk ${address}: not connected within ${connectMs} ms`)),
    connectMs,
  );
  sock.once(o.tls ? "secureConnect" : "connect", () => clearTimeout(connecting));
  sock.once("close", () => clearTimeout(connecting));
  sock.write(answerLine({ v: BULK_PROTOCOL, authorization: `Bearer ${o.token}`, ...req }));
  const st = { answered: false };
  async function* pieces(): AsyncGenerator<{ offset: number; data: Buffer }> {
    let head: Buffer | null = Buffer.alloc(0);
    let pos = req.offset;
    try {
      for await (const d of sock as AsyncIterable<Buffer>) {
        let data = d;
        if (head) {
          head = Buffer.concat([head, d]);
          const nl = head.indexOf(10);
          if (nl < 0) {
            if (head.length >= MAX_REQUEST_BYTES)
              throw new L0Error("Unavailable", `bulk ${address}: answer line too long`);
            continue;
          }
          const answer = parseAnswer(head.subarray(0, nl).toString("utf8"), address);
          // An error answered is an answer: it gets the handling of its kind, not a fallback.
          st.answered = true;
          if ("error" in answer) throw answer.error;
          if (answer.offset !== req.offset)
            throw new L0Error(
              "Unavailable",
              `bulk ${address}: answered offset ${answer.offset}, asked ${req.offset}`,
            );
          data = head.subarray(nl + 1);
          head = null;
          if (data.length === 0) continue;
        }
        yield { offset: pos, data };
        pos += data.length;
      }
    } catch (err) {
      if (err instanceof L0Error) throw err;
      throw new L0Error("Unavailable", `bulk ${address}: ${(err as Error).message}`);
    } finally {
      sock.destroy();
    }
    if (head) throw new L0Error("Unavailable", `bulk ${address}: closed before answering`);
  }
  return {
    pieces: pieces(),
    get answered() {
      return st.answered;
    },
    cancel: () => sock.destroy(),
  };
}
