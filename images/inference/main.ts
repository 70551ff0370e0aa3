// `l0 sidecar`: wires the sidecar, its peer server and /metrics, and runs until SIGTERM.
import { hostname } from "node:os";
import { loadConfig, redact } from "../../lib/config.js";
import { startServer } from "../../lib/grpc.js";
import { readTlsDir } from "../../lib/tls.js";
import { createLogger } from "../../lib/log.js";
import { createRegistry, serveProbes } from "../../lib/metrics.js";
import { createShutdown } from "../../lib/shutdown.js";
import { readSecretFile } from "../../lib/secrets.js";
import { startBulkServer } from "../../lib/weights/bulk.js";
import { HashPool, defaultThreads } from "../../lib/weights/hash-pool.js";
import { weightsMetrics } from "../../lib/weights/metrics.js";
import { SIDECAR_CONFIG, SIDECAR_ENV_PREFIX } from "./config.js";
import { engineMetricsRoute } from "./engine-metrics.js";
import { createEngine } from "./engines.js";
import { PeerService, PeerStore } from "./peer.js";
import { weightsClient } from "./puller.js";
import { Sidecar } from "./sidecar.js";

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(SIDECAR_CONFIG, { flags, env, envPrefix: SIDECAR_ENV_PREFIX });
  const engineId = cfg.engineId || hostname();
  const logger = createLogger({
    component: "sidecar",
    level: cfg.logLevel,
    format: cfg.logFormat,
    fields: { engine: engineId },
  });
  const token = readSecretFile(cfg.tokenFile, "--token-file (L0_SIDECAR_TOKEN_FILE)");
  const tls = readTlsDir(cfg.tlsDir, "--tls-dir (L0_SIDECAR_TLS_DIR)");
  const apiKey = cfg.engineApiKeyFile
    ? readSecretFile(cfg.engineApiKeyFile, "--engine-api-key-file (L0_SIDECAR_ENGINE_API_KEY_FILE)")
    : undefined;
  const registry = createRegistry({ labels: { component: "sidecar" } });
  const metrics = weightsMetrics(registry);
  const peers = new PeerStore();
  const shutdown = createShutdown({ logger });
  const peerService = new PeerService({ store: peers, token, logger, metrics });
  const peerServer = await startServer((s) => peerService.addToServer(s), {
    host: cfg.host,
    port: cfg.peerPort,
    tls,
  });
  shutdown.add("peers", () => peerServer.stop());
  const peerBulk = await startBulkServer({
    source: peerService,
    token,
    logger,
    host: cfg.host,
    port: cfg.peerBulkPort,
    tls,
  });
  shutdown.add("peer bulk", () => peerBulk.close());
  const peerAddress = cfg.peerAddress || (env.POD_IP ? `${env.POD_IP}:${peerServer.port}` : "");
  const service = weightsClient(cfg.weightsAddress, tls);
  const hashPool = new HashPool(cfg.hashThreads || defaultThreads());
  shutdown.add("hash pool", () => hashPool.close());
  const sidecar = new Sidecar({
    clientFor: (address) => weightsClient(address, tls),
    engineId,
    root: cfg.root,
    service,
    token,
    engine: createEngine({ kind: cfg.engine, url: cfg.engineUrl, apiKey, timeoutMs: cfg.engineTimeout }),
    peers,
    logger,
    metrics,
    peerAddress,
    peerBulkPort: peerBulk.port,
    serviceAddress: cfg.weightsAddress,
    baseModelDir: cfg.baseModelDir || undefined,
    reportIntervalMs: cfg.reportInterval,
    engineWaitMs: cfg.engineWait,
    pull: { streams: cfg.pullStreams || defaultThreads(), hashPool, transport: cfg.transport, tls },
  });
  const probes = await serveProbes({
    registry,
    host: cfg.host,
    port: cfg.metricsPort,
    readiness: () => sidecar.readiness(),
    extra: engineMetricsRoute({ engineUrl: cfg.engineUrl }),
  });
  shutdown.add("probes", () => probes.close());
  logger.info("sidecar started", {
    peerAddress: peerAddress || "(serves no peers)",
    peerBulkPort: peerBulk.port,
    metricsPort: probes.port,
    config: redact(SIDECAR_CONFIG, cfg),
    pullStreams: cfg.pullStreams || defaultThreads(),
    hashThreads: hashPool.threads,
  });
  await sidecar.run(shutdown.signal);
}
