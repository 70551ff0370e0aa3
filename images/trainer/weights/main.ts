// `l0 weights`: the weight service as its own process. The trainer may instead embed it
// (embed.ts `startWeightService`) and use its `engines` hook and `publish` directly.
import { readSecretFile } from "../../../lib/secrets.js";
import { loadConfig, redact } from "../../../lib/config.js";
import { createLogger } from "../../../lib/log.js";
import { createRegistry, serveProbes } from "../../../lib/metrics.js";
import { createShutdown } from "../../../lib/shutdown.js";
import { readTlsDir } from "../../../lib/tls.js";
import { WEIGHTS_CONFIG, WEIGHTS_ENV_PREFIX } from "./config.js";
import { startWeightService } from "./embed.js";

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(WEIGHTS_CONFIG, { flags, env, envPrefix: WEIGHTS_ENV_PREFIX });
  const logger = createLogger({ component: "weights", level: cfg.logLevel, format: cfg.logFormat });
  const token = readSecretFile(cfg.tokenFile, "--token-file (L0_WEIGHTS_TOKEN_FILE)");
  const tls = readTlsDir(cfg.tlsDir, "--tls-dir (L0_WEIGHTS_TLS_DIR)");
  const registry = createRegistry({ labels: { component: "weights" } });
  const shutdown = createShutdown({ logger });
  const probes = await serveProbes({ registry, host: cfg.host, port: cfg.metricsPort });
  shutdown.add("probes", () => probes.close());
  const w = await startWeightService({
    dir: cfg.dir,
    token,
    logger,
    registry,
    host: cfg.host,
    port: cfg.port,
    bulkPort: cfg.bulkPort,
    keep: cfg.keep,
    fanout: cfg.fanout,
    pollIntervalMs: cfg.pollInterval,
    tls,
  });
  shutdown.add("weights", () => w.close());
  logger.info("weights listening", {
    port: w.port,
    bulkPort: w.bulkPort,
    tls: tls !== undefined,
    metricsPort: probes.port,
    versions: w.store.versions(),
    config: redact(WEIGHTS_CONFIG, cfg),
  });
}
