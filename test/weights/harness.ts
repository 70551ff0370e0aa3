// A weight service on a real loopback gRPC server over a temp export dir, for the tests; with
// `bulk`, its bulk channel on a real loopback socket too (plain, or mutual TLS with `bulk.tls`).
import type * as grpc from "@grpc/grpc-js";
import { rm } from "node:fs/promises";
import { startServer, type StartedServer } from "../../lib/grpc.js";
import { silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { type WeightsClient } from "../../lib/proto.js";
import { EngineRegistry } from "../../images/trainer/weights/engines.js";
import { weightsMetrics, type WeightsMetrics } from "../../lib/weights/metrics.js";
import { StoreRanges, WeightService } from "../../images/trainer/weights/service.js";
import { VersionStore } from "../../images/trainer/weights/store.js";
import { type RunTls } from "../../lib/tls.js";
import { startBulkServer } from "../../lib/weights/bulk.js";
import { type RangeSource, WEIGHTS_SERVICE } from "../../lib/weights/stream.js";
import { weightsClient } from "../../images/inference/puller.js";
import { tempDir } from "./fixtures.js";

export const TOKEN = "test-run-token";

export interface Harness {
  dir: string;
  store: VersionStore;
  service: WeightService;
  engines: EngineRegistry;
  server: StartedServer;
  client: WeightsClient;
  metrics: WeightsMetrics;
  registry: ReturnType<typeof createRegistry>;
  /** host:port of the bulk channel; "" without `bulk`. */
  bulkAddress: string;
  close(): Promise<void>;
}

export interface HarnessBulk {
  tls?: RunTls;
  /** Wraps what the bulk channel serves (to watch or tamper with it). */
  wrap?: (source: RangeSource) => RangeSource;
}

export async function startHarness(
  opts: {
    fanout?: number;
    keep?: number;
    wrap?: (h: grpc.UntypedServiceImplementation) => void;
    bulk?: HarnessBulk;
    /** The bulk port Plan advertises for the service, instead of the harness's own. */
    advertiseBulkPort?: number;
  } = {},
): Promise<Harness> {
  const dir = await tempDir();
  const logger = silentLogger();
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = weightsMetrics(registry);
  const engines = new EngineRegistry({ logger });
  const store = new VersionStore({
    dir,
    logger,
    keep: opts.keep ?? 1,
    isNeeded: (v) => engines.targets().has(v),
  });
  const ranges = new StoreRanges(store, metrics);
  const b = opts.bulk;
  const bulk = b
    ? await startBulkServer({
        source: b.wrap ? b.wrap(ranges) : ranges,
        token: TOKEN,
        logger,
        host: "127.0.0.1",
        port: 0,
        tls: b.tls,
      })
    : null;
  const service = new WeightService({
    store,
    token: TOKEN,
    logger,
    metrics,
    fanout: opts.fanout ?? 2,
    registry: engines,
    ranges,
    bulkPort: opts.advertiseBulkPort ?? bulk?.port ?? 0,
  });
  const server = await startServer(
    (s) => {
      const handlers = service.handlers();
      opts.wrap?.(handlers);
      s.addService(WEIGHTS_SERVICE, handlers);
    },
    { host: "127.0.0.1", port: 0 },
  );
  const client = weightsClient(server.address);
  return {
    dir,
    store,
    service,
    engines,
    server,
    client,
    metrics,
    registry,
    bulkAddress: bulk ? `127.0.0.1:${bulk.port}` : "",
    close: async () => {
      client.close();
      store.close();
      await server.stop(100);
      await bulk?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
