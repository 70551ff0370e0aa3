// Peer fan-out, serving side: a sidecar serves Pull of the versions it holds to the peers the
// weight service sends to it, relaying bytes as soon as they are verified (it need not hold the
// whole version first), so a tree of sidecars moves a version in about the time of one hop.
import * as grpc from "@grpc/grpc-js";
import { L0Error } from "../../lib/errors.js";
import { type Logger } from "../../lib/log.js";
import { type l0 } from "../../lib/proto.js";
import { type Manifest } from "../../lib/weights/manifest.js";
import { type WeightsMetrics } from "../../lib/weights/metrics.js";
import {
  type PieceOut,
  pullHandler,
  pumpRange,
  type RangeSource,
  resolveRange,
  WEIGHTS_SERVICE,
} from "../../lib/weights/stream.js";

interface Held {
  manifest: Manifest;
  dir: string;
  verified: Map<string, number>;
  failed: L0Error | null;
}

/** The versions a sidecar holds (complete or still arriving) and how far each shard is verified. */
export class PeerStore {
  readonly #held = new Map<number, Held>();
  readonly #waiters = new Set<() => void>();

  begin(manifest: Manifest, dir: string): void {
    this.#held.set(manifest.version, { manifest, dir, verified: new Map(), failed: null });
  }

  verified(version: number, shard: string, end: number): void {
    const h = this.#held.get(version);
    if (!h) return;
    h.verified.set(shard, end);
    this.#wake();
  }

  /** The version's files moved (staging -> final); later pulls open them there. */
  moved(version: number, dir: string): void {
    const h = this.#held.get(version);
    if (h) h.dir = dir;
  }

  /** The pull failed: peers waiting on it go to the service instead. */
  fail(version: number, reason: string): void {
    const h = this.#held.get(version);
    if (!h) return;
    h.failed = new L0Error("Unavailable", `peer lost v${version}: ${reason}`, { reason: "PeerFailed" });
    this.#wake();
  }

  drop(version: number): void {
    this.fail(version, "version dropped");
    this.#held.delete(version);
  }

  holds(): number[] {
    return [...this.#held.keys()];
  }

  get(version: number): Held {
    const h = this.#held.get(version);
    if (!h)
      throw new L0Error("NotFound", `this peer does not hold v${version}`, { reason: "UnknownVersion" });
    if (h.failed) throw h.failed;
    return h;
  }

  /** Resolves once shard bytes [0, end) are verified here. */
  waitFor(version: number, shard: string, end: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let h: Held;
        try {
          h = this.get(version);
        } catch (err) {
          return finish(err as Error);
        }
        if ((h.verified.get(shard) ?? -1) >= end) finish(null);
        else if (signal.aborted) finish(new L0Error("Unavailable", "peer pull cancelled"));
      };
      const finish = (err: Error | null) => {
        this.#waiters.delete(check);
        signal.removeEventListener("abort", check);
        if (err) reject(err);
        else resolve();
      };
      this.#waiters.add(check);
      signal.addEventListener("abort", check, { once: true });
      check();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

const unimplemented = (name: string) => (_call: unknown, callback?: grpc.sendUnaryData<unknown>) => {
  const err = {
    code: grpc.status.UNIMPLEMENTED,
    details: `${name} is served by the weight service, not by peers`,
  };
  if (callback) callback(err as grpc.ServiceError, null);
};

/** The Weights service as a peer serves it: Pull only. */
export class PeerService implements RangeSource {
  readonly #store: PeerStore;
  readonly #token: string;
  readonly #logger: Logger;
  readonly #metrics: WeightsMetrics;

  constructor(opts: { store: PeerStore; token: string; logger: Logger; metrics: WeightsMetrics }) {
    this.#store = opts.store;
    this.#token = opts.token;
    this.#logger = opts.logger;
    this.#metrics = opts.metrics;
  }

  addToServer(server: grpc.Server): void {
    server.addService(WEIGHTS_SERVICE, {
      latest: unimplemented("Latest"),
      plan: unimplemented("Plan"),
      report: unimplemented("Report"),
      watch: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        call.emit("error", {
          code: grpc.status.UNIMPLEMENTED,
          details: "Watch is served by the weight service",
        }),
      pull: pullHandler(this, this.#token, this.#logger),
    });
  }

  /** The bytes of a Pull (gRPC or bulk), the token already checked: up to the verified prefix, following it. */
  async serveRange(req: l0.v1.IPullRequest, out: PieceOut): Promise<void> {
    const version = Number(req.version ?? 0);
    const held = this.#store.get(version);
    const r = resolveRange(held.manifest, req);
    // Wait for the first piece before opening: the file may not exist yet.
    const first = Math.min(r.end, r.start + r.pieceBytes);
    if (r.end > r.start) await this.#store.waitFor(version, r.shard.file, first, out.gone);
    const pump = () =>
      pumpRange(out, {
        path: `${this.#store.get(version).dir}/${r.shard.file}`,
        start: r.start,
        end: r.end,
        pieceBytes: r.pieceBytes,
        waitFor: (end, signal) => this.#store.waitFor(version, r.shard.file, end, signal),
        onSent: (n) => this.#metrics.bytes.inc({ direction: "sent" }, n),
      });
    // The version may move from staging into place between the lookup and the open (nothing
    // was sent then): look it up again once.
    await pump().catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return pump();
      throw err;
    });
  }
}
