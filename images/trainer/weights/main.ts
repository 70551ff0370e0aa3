// `l0 weights`: the weight service as its own process. The hub may instead embed
// WeightService and read its `engines` hook directly (see images/inference/README.md).
import { readFileSync } from "node:fs";
import { loadConfig, redact } from "../../../lib/config.js";
import { invalidField } from "../../../lib/errors.js";
import { startServer } from "../../../lib/grpc.js";
import { createLogger } from "../../../lib/log.js";
import { createRegistry, serveProbes } from "../../../lib/metrics.js";
import { createShutdown } from "../../../lib/shutdown.js";
import { WEIGHTS_CONFIG, WEIGHTS_ENV_PREFIX } from "./cli.js";
import { EngineRegistry } from "./engines.js";
import { weightsMetrics } from "./metrics.js";
import { WeightService } from "./service.js";
import { VersionStore } from "./store.js";

/** Reads a token file; the error names the flag. */
export function readTokenFile(path: string, flag: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw invalidField(flag, `cannot read ${path}: ${(err as Error).message}`);
  }
  if (!token) throw invalidField(flag, `${path} is empty`);
  return token;
}

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(WEIGHTS_CONFIG, { flags, env, envPrefix: WEIGHTS_ENV_PREFIX });
  const logger = createLogger({ component: "weights", level: cfg.logLevel, format: cfg.logFormat });
  const token = readTokenFile(cfg.tokenFile, "--token-file (L0_WEIGHTS_TOKEN_FILE)");
  const registry = createRegistry({ labels: { component: "weights" } });
  const metrics = weightsMetrics(registry);
  const engines = new EngineRegistry({ logger });
  const store = new VersionStore({
    dir: cfg.dir,
    logger,
    keep: cfg.keep,
    isNeeded: (v) => engines.targets().has(v),
  });
  await store.scan();
  store.start(cfg.pollInterval);
  const service = new WeightService({ store, token, logger, metrics, fanout: cfg.fanout, registry: engines });
  const shutdown = createShutdown({ logger });
  const probes = await serveProbes({ registry, host: cfg.host, port: cfg.metricsPort });
  shutdown.add("probes", () => probes.close());
  shutdown.add("store", () => store.close());
  const server = await startServer((s) => service.addToServer(s), { host: cfg.host, port: cfg.port });
  shutdown.add("grpc", () => server.stop());
  logger.info("weights listening", {
    port: server.port,
    metricsPort: probes.port,
    versions: store.versions(),
    config: redact(WEIGHTS_CONFIG, cfg),
  });
}
