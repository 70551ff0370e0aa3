// A weight service on a real loopback gRPC server over a temp export dir, for the tests.
import type * as grpc from "@grpc/grpc-js";
import { rm } from "node:fs/promises";
import { startServer, type StartedServer } from "../../lib/grpc.js";
import { silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { type WeightsClient } from "../../lib/proto.js";
import { EngineRegistry } from "../../images/trainer/weights/engines.js";
import { weightsMetrics, type WeightsMetrics } from "../../lib/weights/metrics.js";
import { WeightService } from "../../images/trainer/weights/service.js";
import { VersionStore } from "../../images/trainer/weights/store.js";
import { WEIGHTS_SERVICE } from "../../lib/weights/stream.js";
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
  close(): Promise<void>;
}

export async function startHarness(
  opts: { fanout?: number; keep?: number; wrap?: (h: grpc.UntypedServiceImplementation) => void } = {},
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
  const service = new WeightService({
    store,
    token: TOKEN,
    logger,
    metrics,
    fanout: opts.fanout ?? 2,
    registry: engines,
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
    close: async () => {
      client.close();
      store.close();
      await server.stop(100);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
