// `l0 hub`: the trainer pod's rollout hub process. Reads the TrainingRun and the token file,
// loads the datasets, resumes from the checkpoint in --state-dir, serves Rollout over gRPC and
// /metrics, and (with --drive standalone) steps through batches without a learner.
import { readSecretFile } from "../../../lib/secrets.js";
import { loadConfig, redact } from "../../../lib/config.js";
import { startServer } from "../../../lib/grpc.js";
import { readTlsDir } from "../../../lib/tls.js";
import { createLogger } from "../../../lib/log.js";
import { createRegistry, serveProbes } from "../../../lib/metrics.js";
import { readTrainingRun } from "../../../lib/run-config.js";
import { createShutdown } from "../../../lib/shutdown.js";
import { checkpointPath, readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { HUB_CONFIG, HUB_ENV_PREFIX } from "./config.js";
import { loadRunDatasets } from "./dataset.js";
import { driveStandalone } from "./driver.js";
import { Hub } from "./hub.js";
import { RolloutServer } from "./service.js";
import { hubSettings } from "./settings.js";

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(HUB_CONFIG, { flags, env, envPrefix: HUB_ENV_PREFIX });
  const logger = createLogger({ component: "hub", level: cfg.logLevel, format: cfg.logFormat });
  const token = readSecretFile(cfg.tokenFile, "--token-file (L0_HUB_TOKEN_FILE)");
  const tls = readTlsDir(cfg.tlsDir, "--tls-dir (L0_HUB_TLS_DIR)");
  const run = readTrainingRun(cfg.runConfig);
  const settings = hubSettings(run);
  const { train, eval: evalDs } = loadRunDatasets(settings.dataset, cfg.runConfig);
  const cpPath = cfg.stateDir ? checkpointPath(cfg.stateDir) : null;
  const resume = cpPath ? readCheckpoint(cpPath) : null;
  const registry = createRegistry({ labels: { component: "hub" } });
  const hub = new Hub({
    settings,
    train,
    eval: evalDs,
    registry,
    logger: logger.child({ run: `${settings.run.namespace}/${settings.run.name}` }),
    leaseTimeoutMs: cfg.leaseTimeout,
    maxAttempts: cfg.maxAttempts,
    backoffBaseMs: cfg.retryBackoff,
    backoffMaxMs: cfg.retryBackoffMax,
    resume,
  });
  hub.start();
  const save = (): void => {
    if (cpPath) writeCheckpoint(cpPath, hub.snapshot());
  };
  const shutdown = createShutdown({ logger });
  let listening = false;
  const probes = await serveProbes({
    registry,
    host: cfg.host,
    port: cfg.metricsPort,
    readiness: () => (listening ? null : "rollout gRPC server not listening yet"),
  });
  shutdown.add("probes", () => probes.close());
  shutdown.add("checkpoint", save);
  shutdown.add("hub", () => hub.stop());
  const server = await startServer((s) => new RolloutServer(hub, { token, logger }).addToServer(s), {
    host: cfg.host,
    port: cfg.port,
    maxMessageBytes: cfg.maxMessageBytes,
    tls,
  });
  listening = true;
  shutdown.add("grpc", async () => {
    listening = false;
    await server.stop();
  });
  logger.info("hub listening", {
    port: server.port,
    metricsPort: probes.port,
    config: redact(HUB_CONFIG, cfg),
    questions: train.questions.length,
    skippedLines: train.errors.length,
    resumedStep: resume?.step ?? null,
  });
  if (cfg.drive === "standalone") {
    await driveStandalone(hub, {
      signal: shutdown.signal,
      logger,
      hasEval: evalDs !== undefined,
      saveCheckpoint: save,
    });
  }
}
