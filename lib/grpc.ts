// gRPC plumbing shared by every service and client: run-token auth, the one mapping from
// domain errors to status codes, typed unary handlers and calls with deadlines, and server
// start/stop. Services themselves are classes with `addToServer(server)`.
import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { l0 } from "../gen/proto/l0.js";
import { type ErrorKind, L0Error } from "./errors.js";
import { type Logger, errorFields, silentLogger } from "./log.js";
import { type RunTls, serverCredentials } from "./tls.js";

/** Default cap on one message, each way. Explicit so a hostile peer cannot make us buffer more. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const ERROR_DETAIL_TRAILER = "l0-error-bin";

const CODE_OF: Record<ErrorKind, grpc.status> = {
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  NotFound: grpc.status.NOT_FOUND,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  Unauthenticated: grpc.status.UNAUTHENTICATED,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  Unavailable: grpc.status.UNAVAILABLE,
  ResourceExhausted: grpc.status.RESOURCE_EXHAUSTED,
  DeadlineExceeded: grpc.status.DEADLINE_EXCEEDED,
  Internal: grpc.status.INTERNAL,
};
const KIND_OF = new Map<grpc.status, ErrorKind>(Object.entries(CODE_OF).map(([k, v]) => [v, k as ErrorKind]));

/** Domain error -> gRPC status. Anything that is not an L0Error is INTERNAL with no detail leaked. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof L0Error) {
    const metadata = new grpc.Metadata();
    const detail = l0.v1.ErrorDetail.encode({ reason: err.reason, violations: err.violations }).finish();
    metadata.set(ERROR_DETAIL_TRAILER, Buffer.from(detail));
    return { code: CODE_OF[err.kind], details: err.message, metadata };
  }
  return { code: grpc.status.INTERNAL, details: "internal error" };
}

/** gRPC error from a call -> domain error, keeping field violations when the peer sent them. */
export function fromServiceError(err: unknown): L0Error {
  const se = err as Partial<grpc.ServiceError>;
  if (typeof se?.code !== "number") return new L0Error("Internal", String(err));
  const kind = KIND_OF.get(se.code) ?? (se.code === grpc.status.CANCELLED ? "Unavailable" : "Internal");
  const raw = se.metadata?.get(ERROR_DETAIL_TRAILER)[0];
  let reason: string | undefined;
  let violations: { field: string; description: string }[] = [];
  if (raw instanceof Buffer) {
    try {
      const d = l0.v1.ErrorDetail.decode(raw);
      reason = d.reason || undefined;
      violations = d.violations.map((v) => ({ field: v.field ?? "", description: v.description ?? "" }));
    } catch {
      // A malformed trailer must not hide the status itself.
    }
  }
  return new L0Error(kind, se.details ?? se.message ?? "", { reason, violations });
}

/** Metadata carrying the run token. */
export function tokenMetadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

/** Throws Unauthenticated unless the call carries `Bearer <token>`; constant-time compare. */
export function checkToken(metadata: grpc.Metadata, token: string): void {
  const got = metadata.get("authorization")[0];
  checkBearer(typeof got === "string" ? got : "", token);
}

/** Throws Unauthenticated unless `value` is `Bearer <token>` (gRPC metadata, the weights bulk request). */
export function checkBearer(value: string, token: string): void {
  const want = Buffer.from(`Bearer ${token}`);
  const have = Buffer.from(value);
  if (have.length !== want.length || !timingSafeEqual(have, want)) {
    throw new L0Error("Unauthenticated", "missing or wrong run token (authorization: Bearer <token>)");
  }
}

export interface HandlerContext {
  token: string;
  logger?: Logger;
}

/**
 * Wraps an async function as a grpc-js unary handler: checks the run token, maps thrown
 * domain errors to status codes, and logs unexpected ones (which reach the peer as INTERNAL).
 */
export function unary<Req, Res>(
  ctx: HandlerContext,
  method: string,
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  const logger = ctx.logger ?? silentLogger();
  return (call, callback) => {
    let result: Promise<Res>;
    try {
      checkToken(call.metadata, ctx.token);
      result = Promise.resolve(fn(call.request, call));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (res) => callback(null, res),
      (err: unknown) => {
        if (!(err instanceof L0Error))
          logger.error("unhandled error in gRPC handler", { method, ...errorFields(err) });
        callback(toServiceError(err) as grpc.ServiceError, null);
      },
    );
  };
}

export interface CallOptions {
  token: string;
  /** Deadline for the call, ms from now. Every call has one. */
  timeoutMs: number;
}

type UnaryMethod<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

/** Promise form of a unary call, with the run token and a deadline; errors come back as L0Error. */
export function call<Req, Res>(
  method: UnaryMethod<Req, Res>,
  client: grpc.Client,
  req: Req,
  opts: CallOptions,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(
      client,
      req,
      tokenMetadata(opts.token),
      { deadline: Date.now() + opts.timeoutMs },
      (err, res) => {
        if (err) reject(fromServiceError(err));
        else resolve(res as Res);
      },
    );
  });
}

export function channelOptions(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): grpc.ChannelOptions {
  return {
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
  };
}

export interface StartedServer {
  server: grpc.Server;
  port: number;
  address: string;
  /** Graceful stop, forced after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a grpc-js server on host:port (0 = a free port) with explicit message limits; with
 * `tls`, mutual TLS with the run's certificate (lib/tls.ts), else plaintext.
 */
export async function startServer(
  register: (server: grpc.Server) => void,
  opts: { host?: string; port: number; maxMessageBytes?: number; tls?: RunTls },
): Promise<StartedServer> {
  const server = new grpc.Server(channelOptions(opts.maxMessageBytes));
  register(server);
  const host = opts.host ?? "0.0.0.0";
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${opts.port}`, serverCredentials(opts.tls), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  return {
    server,
    port,
    address,
    stop: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
