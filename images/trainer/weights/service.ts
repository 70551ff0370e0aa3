// The weight service (trainer pod, beside the hub): Latest, Watch, Pull, Plan and Report over
// the versions in a VersionStore. Server lifecycle lives with the caller (`addToServer`).
import type * as grpc from "@grpc/grpc-js";
import { L0Error, invalidField } from "../../../lib/errors.js";
import { checkToken, unary } from "../../../lib/grpc.js";
import { type Logger, errorFields } from "../../../lib/log.js";
import { l0, type WeightsHandlers } from "../../../lib/proto.js";
import { EngineRegistry, type EngineWeightState } from "./engines.js";
import { FanoutPlanner } from "./fanout.js";
import { toProto } from "../../../lib/weights/manifest.js";
import { type WeightsMetrics } from "../../../lib/weights/metrics.js";
import {
  failStream,
  type PieceOut,
  pullHandler,
  pumpRange,
  type RangeSource,
  resolveRange,
  WEIGHTS_SERVICE,
} from "../../../lib/weights/stream.js";
import { type VersionStore } from "./store.js";

export interface WeightServiceOptions {
  store: VersionStore;
  token: string;
  logger: Logger;
  metrics: WeightsMetrics;
  /** Children per node of the fan-out tree; 0 = no fan-out, everyone pulls from the service. */
  fanout?: number;
  registry?: EngineRegistry;
  /** What Pull serves (default: the store's versions); the bulk channel serves the same. */
  ranges?: RangeSource;
  /** Port of this service's bulk channel (lib/weights/bulk.ts), told to pullers by Plan; 0 = none. */
  bulkPort?: number;
}

const STATE: Record<number, EngineWeightState | undefined> = {
  [l0.v1.EngineWeightState.ENGINE_WEIGHT_STATE_SERVING]: "Serving",
  [l0.v1.EngineWeightState.ENGINE_WEIGHT_STATE_SYNCING]: "Syncing",
  [l0.v1.EngineWeightState.ENGINE_WEIGHT_STATE_DEGRADED]: "Degraded",
};

export class WeightService {
  /** The hub hook: engines' served versions and the wait for all of them. */
  readonly engines: EngineRegistry;
  readonly #store: VersionStore;
  readonly #token: string;
  readonly #logger: Logger;
  readonly #metrics: WeightsMetrics;
  readonly #planner: FanoutPlanner | null;
  readonly #bulkPort: number;
  readonly #ranges: RangeSource;

  constructor(opts: WeightServiceOptions) {
    this.#store = opts.store;
    this.#token = opts.token;
    this.#logger = opts.logger;
    this.#metrics = opts.metrics;
    this.#bulkPort = opts.bulkPort ?? 0;
    this.#ranges = opts.ranges ?? new StoreRanges(opts.store, opts.metrics);
    const fanout = opts.fanout ?? 2;
    this.#planner = fanout > 0 ? new FanoutPlanner(fanout) : null;
    this.engines = opts.registry ?? new EngineRegistry({ logger: opts.logger });
    const latest = this.#store.latest();
    if (latest) this.#metrics.version.set({ role: "exported" }, latest.version);
    this.#store.onNewest((e) => {
      this.#metrics.version.set({ role: "exported" }, e.version);
      this.#planner?.forgetBefore(e.version);
    });
  }

  addToServer(server: grpc.Server): void {
    server.addService(WEIGHTS_SERVICE, this.handlers());
  }

  handlers(): WeightsHandlers {
    const ctx = { token: this.#token, logger: this.#logger };
    return {
      latest: unary(ctx, "Latest", () => {
        const e = this.#store.latest();
        if (!e) throw new L0Error("NotFound", "no weights exported yet", { reason: "NoVersion" });
        return { version: e.version, manifest: toProto(e.manifest) };
      }),
      watch: (call) => this.#watch(call),
      pull: pullHandler(this.#ranges, this.#token, this.#logger),
      plan: unary(ctx, "Plan", (req: l0.v1.PlanRequest) => {
        if (!req.engineId) throw invalidField("engine_id", "is required");
        const version = Number(req.version);
        this.#store.get(version);
        const service = { serviceBulkPort: this.#bulkPort };
        if (!this.#planner)
          return { sourceAddress: "", sourceEngineId: "", sourceBulkPort: this.#bulkPort, ...service };
        const live = new Set(this.engines.engines().map((e) => e.engineId));
        const a = this.#planner.plan(
          version,
          req.engineId,
          req.peerAddress,
          (id) => live.has(id),
          req.peerBulkPort,
        );
        this.#logger.debug("fan-out plan", {
          version,
          engine: req.engineId,
          source: a.sourceEngineId || "service",
        });
        return { ...a, sourceBulkPort: a.sourceAddress ? a.sourceBulkPort : this.#bulkPort, ...service };
      }),
      report: unary(ctx, "Report", (req: l0.v1.ReportRequest) => {
        if (!req.engineId) throw invalidField("engine_id", "is required");
        const state = STATE[req.state];
        if (!state) throw invalidField("state", `must be SERVING, SYNCING or DEGRADED, got ${req.state}`);
        this.engines.report({
          engineId: req.engineId,
          version: Number(req.version),
          state,
          targetVersion: Number(req.targetVersion),
          detail: req.detail,
        });
        return {};
      }),
    };
  }

  #watch(call: grpc.ServerWritableStream<l0.v1.WatchRequest, l0.v1.IVersionAnnouncement>): void {
    try {
      checkToken(call.metadata, this.#token);
    } catch (err) {
      return failStream(call, err, this.#logger);
    }
    let last = Number(call.request.afterVersion);
    const send = (version: number) => {
      if (version <= last) return;
      last = version;
      try {
        call.write({ version, manifest: toProto(this.#store.get(version).manifest) });
      } catch (err) {
        this.#logger.warn("weights announcement failed", { version, ...errorFields(err) });
      }
    };
    const latest = this.#store.latest();
    if (latest) send(latest.version);
    const off = this.#store.onNewest((e) => send(e.version));
    const end = () => off();
    call.once("cancelled", end);
    call.once("close", end);
  }
}

/** The bytes the weight service serves, over Pull and the bulk channel: the versions in its store. */
export class StoreRanges implements RangeSource {
  readonly #store: VersionStore;
  readonly #metrics: WeightsMetrics;

  constructor(store: VersionStore, metrics: WeightsMetrics) {
    this.#store = store;
    this.#metrics = metrics;
  }

  /** The token already checked; the version is kept while it runs. */
  async serveRange(req: l0.v1.IPullRequest, out: PieceOut): Promise<void> {
    const version = Number(req.version ?? 0);
    const entry = this.#store.get(version);
    const release = this.#store.pin(version);
    try {
      const r = resolveRange(entry.manifest, req);
      await pumpRange(out, {
        path: `${entry.dir}/${r.shard.file}`,
        start: r.start,
        end: r.end,
        pieceBytes: r.pieceBytes,
        onSent: (n) => this.#metrics.bytes.inc({ direction: "sent" }, n),
      });
    } finally {
      release();
    }
  }
}
