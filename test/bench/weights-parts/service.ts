// The weight bench's service: the weight service over an export dir on loopback, with its bulk
// channel (what a sidecar pulls from), counting the bytes it sends (the trainer pod's egress).
import { EngineRegistry } from "../../../images/trainer/weights/engines.js";
import { StoreRanges, WeightService } from "../../../images/trainer/weights/service.js";
import { VersionStore } from "../../../images/trainer/weights/store.js";
import { startServer } from "../../../lib/grpc.js";
import { silentLogger } from "../../../lib/log.js";
import { createRegistry } from "../../../lib/metrics.js";
import { startBulkServer } from "../../../lib/weights/bulk.js";
import { weightsMetrics } from "../../../lib/weights/metrics.js";

export interface Service {
  address: string;
  /** host:port of its bulk channel. */
  bulk: string;
  /** Weight bytes this service (the trainer pod) has sent. */
  sent(): Promise<number>;
  store: VersionStore;
  engines: EngineRegistry;
  stop(): Promise<void>;
}

export async function startService(dir: string, token: string, fanout: number): Promise<Service> {
  const logger = silentLogger();
  const engines = new EngineRegistry({ logger });
  const store = new VersionStore({ dir, logger, keep: 100 });
  await store.scan();
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = weightsMetrics(registry);
  const ranges = new StoreRanges(store, metrics);
  const bulk = await startBulkServer({ source: ranges, token, logger, host: "127.0.0.1", port: 0 });
  const service = new WeightService({
    store,
    token,
    logger,
    metrics,
    fanout,
    registry: engines,
    ranges,
    bulkPort: bulk.port,
  });
  const server = await startServer((s) => service.addToServer(s), { host: "127.0.0.1", port: 0 });
  const sent = async () =>
    Number(/l0_weights_bytes_total\{direction="sent"\} (\d+)/.exec(await registry.metrics())?.[1] ?? 0);
  return {
    address: server.address,
    bulk: `127.0.0.1:${bulk.port}`,
    sent,
    store,
    engines,
    stop: async () => {
      await Promise.all([server.stop(100), bulk.close()]);
    },
  };
}
