// The weight service as a part of another program (the trainer's loop, `l0 local`, `l0 weights`):
// store + service + gRPC server in one call, and `publish`, the step the loop runs after
// ExportWeights in strict on-policy mode: make the version visible now and wait until the
// engines serve it, failing with a condition reason instead of hanging.
import { type Registry } from "prom-client";
import { L0Error } from "../../../lib/errors.js";
import { startServer } from "../../../lib/grpc.js";
import { startBulkServer } from "../../../lib/weights/bulk.js";
import { type RunTls } from "../../../lib/tls.js";
import { type Logger } from "../../../lib/log.js";
import { EngineRegistry, type WeightsHubHook } from "./engines.js";
import { weightsMetrics } from "../../../lib/weights/metrics.js";
import { StoreRanges, WeightService } from "./service.js";
import { VersionStore } from "./store.js";

export interface EmbedOptions {
  /** Directory the learner exports into (`<dir>/<version>/`). */
  dir: string;
  token: string;
  logger: Logger;
  registry: Registry;
  host?: string;
  /** 0 = any free port. */
  port: number;
  /** The bulk channel's port (lib/weights/bulk.ts; 0 = any free port); unset = no bulk channel. */
  bulkPort?: number;
  keep?: number;
  fanout?: number;
  pollIntervalMs?: number;
  /** The run's TLS material: the service then speaks mutual TLS (lib/tls.ts). */
  tls?: RunTls;
}

export interface PublishOptions {
  timeoutMs: number;
  /** Engines that must serve the version (the inference replicas). */
  minEngines: number;
  signal?: AbortSignal;
}

export interface EmbeddedWeights {
  service: WeightService;
  store: VersionStore;
  /** The hub hook: which version each engine serves; wait for all. */
  engines: WeightsHubHook;
  /** host:port sidecars dial. */
  address: string;
  port: number;
  /** The bulk channel's port on the same host; 0 = none. */
  bulkPort: number;
  /**
   * After ExportWeights(version): scans now (no poll delay), then waits until `minEngines` engines
   * serve it. Throws L0Error with reason "WeightExportMissing", "WeightSyncTimeout",
   * "EngineDegraded", "EngineAhead" (an engine serves a newer version than the newest published)
   * or "Aborted", and a message naming the engines behind or ahead.
   */
  publish(version: number, opts: PublishOptions): Promise<void>;
  close(): Promise<void>;
}

export async function startWeightService(o: EmbedOptions): Promise<EmbeddedWeights> {
  const engines = new EngineRegistry({ logger: o.logger });
  const store = new VersionStore({
    dir: o.dir,
    logger: o.logger,
    keep: o.keep,
    isNeeded: (v) => engines.targets().has(v),
  });
  await store.scan();
  store.start(o.pollIntervalMs ?? 1000);
  const metrics = weightsMetrics(o.registry);
  const ranges = new StoreRanges(store, metrics);
  const bulk =
    o.bulkPort === undefined
      ? null
      : await startBulkServer({
          source: ranges,
          token: o.token,
          logger: o.logger,
          host: o.host,
          port: o.bulkPort,
          tls: o.tls,
        });
  const service = new WeightService({
    store,
    token: o.token,
    logger: o.logger,
    metrics,
    fanout: o.fanout,
    registry: engines,
    ranges,
    bulkPort: bulk?.port ?? 0,
  });
  const server = await startServer((s) => service.addToServer(s), { host: o.host, port: o.port, tls: o.tls });
  return {
    service,
    store,
    engines,
    address: server.address,
    port: server.port,
    bulkPort: bulk?.port ?? 0,
    publish: async (version, p) => {
      await store.scan();
      if ((store.latest()?.version ?? 0) < version)
        throw new L0Error(
          "FailedPrecondition",
          `weights v${version} are not in ${o.dir} (missing or rejected: see the weights log); newest is v${store.latest()?.version ?? 0}`,
          { reason: "WeightExportMissing" },
        );
      const r = await engines.awaitAllServe(version, { ...p, newest: true });
      if (!r.ok)
        throw new L0Error(
          r.reason === "WeightSyncTimeout" ? "DeadlineExceeded" : "FailedPrecondition",
          r.message,
          { reason: r.reason },
        );
    },
    close: async () => {
      store.close();
      await Promise.all([server.stop(2000), bulk?.close()]);
    },
  };
}
