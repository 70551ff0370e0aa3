// `l0 worker`: the AgentWorkerPool pod's process. Reads its config and the run token file,
// prepares the sandbox (failing closed in strict mode), warms the kernel pool, serves /metrics
// and /episodes, and runs K episodes at a time until SIGTERM drains it.
import { readSecretFile } from "../../lib/secrets.js";
import { readTlsDir } from "../../lib/tls.js";
import { hostname } from "node:os";
import { loadConfig, redact, type ConfigOf } from "../../lib/config.js";
import { L0Error, invalidField, isL0Error } from "../../lib/errors.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { createRegistry, serveProbes } from "../../lib/metrics.js";
import { readTrainingRun } from "../../lib/run-config.js";
import { createShutdown } from "../../lib/shutdown.js";
import { runEpisode } from "./agent/episode.js";
import { WORKER_CONFIG, WORKER_ENV_PREFIX } from "./config.js";
import { EngineClient } from "./engine.js";
import { HubClient } from "./hub.js";
import { type WorkerMetrics, createWorkerMetrics } from "./metrics.js";
import { type SandboxHost, prepareSandbox } from "./sandbox/host.js";
import { MemoryGuard } from "./sandbox/memory.js";
import { KernelPool } from "./sandbox/pool.js";
import { HttpSearch, LocalCorpus, NoTools, type ToolBackend } from "./tools.js";
import { Worker } from "./worker.js";

type Config = ConfigOf<typeof WORKER_CONFIG>;

/** The search/read backend the flags name (`l0 eval` builds the same one). */
export function buildTools(
  cfg: Pick<Config, "searchBackend" | "searchCorpus" | "searchUrl" | "searchKeyFile">,
): ToolBackend {
  switch (cfg.searchBackend) {
    case "local":
      if (!cfg.searchCorpus)
        throw invalidField(
          "--search-corpus (L0_WORKER_SEARCH_CORPUS)",
          "is required with --search-backend local",
        );
      return LocalCorpus.fromFile(cfg.searchCorpus);
    case "http":
      if (!/^https?:\/\//.test(cfg.searchUrl))
        throw invalidField(
          "--search-url (L0_WORKER_SEARCH_URL)",
          "must be an http(s) URL with --search-backend http",
        );
      return new HttpSearch({
        url: cfg.searchUrl,
        apiKey: cfg.searchKeyFile
          ? readSecretFile(cfg.searchKeyFile, "--search-key-file (L0_WORKER_SEARCH_KEY_FILE)")
          : "",
        timeoutMs: 15_000,
      });
    default:
      return new NoTools();
  }
}

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(WORKER_CONFIG, { flags, env, envPrefix: WORKER_ENV_PREFIX });
  const workerId = cfg.workerId || hostname();
  const logger = workerLogger(cfg, workerId);
  const token = readSecretFile(cfg.tokenFile, "--token-file (L0_WORKER_TOKEN_FILE)");
  const tools = buildTools(cfg);
  const registry = createRegistry({ labels: { component: "worker" } });
  const metrics = createWorkerMetrics(registry);
  const { host, pool, guard } = startSandbox(cfg, logger, metrics);
  const tls = readTlsDir(cfg.tlsDir, "--tls-dir (L0_WORKER_TLS_DIR)");
  const hub = new HubClient({ address: cfg.hub, token, timeoutMs: cfg.hubTimeout, tls });
  const worker = buildWorker(cfg, { workerId, logger, metrics, pool, tools, hub });
  // The drain gets the grace period; the other hooks a little room after it.
  const shutdown = createShutdown({ logger, graceMs: cfg.grace + 10_000 });
  const probes = await serveProbes({
    registry,
    host: cfg.host,
    port: cfg.metricsPort,
    readiness: () =>
      worker.draining ? "draining" : worker.connected ? null : "rollout hub not reachable yet",
    extra: (req, res) => {
      if ((req.url ?? "").split("?")[0] !== "/episodes") return false;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ active: worker.active, capacity: cfg.episodes, draining: worker.draining }) + "\n",
      );
      return true;
    },
  });
  shutdown.add("probes", () => probes.close());
  shutdown.add("hub client", () => hub.close());
  shutdown.add("kernels", () => pool.close());
  shutdown.add("memory guard", () => guard.stop());
  shutdown.add("worker", () => worker.drain(cfg.grace));
  await pool.fill();
  if (pool.idle === 0) {
    // Fail fast: a worker that cannot start kernels would only turn tasks into failures.
    await probes.close();
    throw new L0Error("FailedPrecondition", "the sandbox could not start any kernel (see the errors above)");
  }
  guard.start();
  worker.start();
  logger.info("worker started", {
    metricsPort: probes.port,
    config: redact(WORKER_CONFIG, cfg),
    sandbox: { mode: cfg.sandboxMode, cgroup: host.cgroups.version, weaknesses: host.weaknesses },
  });
}

function workerLogger(cfg: Config, workerId: string): Logger {
  // Tasks carry their agent settings; the run file, when given, is checked and names the run.
  const run = cfg.runConfig ? readTrainingRun(cfg.runConfig) : null;
  return createLogger({
    component: "worker",
    level: cfg.logLevel,
    format: cfg.logFormat,
    fields: {
      worker: workerId,
      ...(run ? { run: `${run.metadata?.namespace ?? "default"}/${run.metadata?.name}` } : {}),
    },
  });
}

/** The settings startSandbox reads (`l0 eval` passes its own, taken from WORKER_CONFIG). */
export type SandboxConfig = Pick<
  Config,
  | "cpuSeconds"
  | "memoryMib"
  | "fileSizeMib"
  | "openFiles"
  | "maxProcesses"
  | "diskMib"
  | "sandboxMode"
  | "uidBase"
  | "uidRange"
  | "warmKernels"
  | "episodes"
  | "memoryHeadroomMib"
>;

/** The sandbox host (fails closed in strict mode), the warm pool and the memory guard over it. */
export function startSandbox(
  cfg: SandboxConfig,
  logger: Logger,
  metrics: WorkerMetrics,
): { host: SandboxHost; pool: KernelPool; guard: MemoryGuard } {
  const limits = {
    cpuSeconds: cfg.cpuSeconds,
    memoryBytes: cfg.memoryMib * 2 ** 20,
    fileSizeBytes: cfg.fileSizeMib * 2 ** 20,
    openFiles: cfg.openFiles,
    processes: cfg.maxProcesses,
    workdirBytes: cfg.diskMib * 2 ** 20,
  };
  let host: SandboxHost;
  try {
    host = prepareSandbox(
      {
        mode: cfg.sandboxMode,
        limits,
        uidBase: cfg.uidBase,
        uidRange: cfg.uidRange,
        // Warm kernels, running ones, and replacements for kernels that died mid-episode.
        maxKernels: (cfg.warmKernels || cfg.episodes) + 2 * cfg.episodes,
      },
      logger,
    );
  } catch (err) {
    // This machine cannot give the chosen sandbox (no bwrap, no pids cgroup in strict mode): its
    // configuration, exit 2, not a crash to retry.
    if (isL0Error(err, "FailedPrecondition"))
      throw new L0Error("InvalidArgument", `--sandbox-mode ${cfg.sandboxMode}: ${err.message}`, {
        reason: "SandboxUnavailable",
      });
    throw err;
  }
  const pool = new KernelPool({
    host,
    size: cfg.warmKernels || cfg.episodes,
    logger,
    onStart: (s) => metrics.sandboxStart.observe(s),
  });
  const guard = new MemoryGuard({
    kernels: () => pool.live(),
    headroomBytes: cfg.memoryHeadroomMib * 2 ** 20,
    logger,
    intervalMs: cfg.memoryHeadroomMib > 0 ? 500 : 0,
  });
  return { host, pool, guard };
}

function buildWorker(
  cfg: Config,
  d: {
    workerId: string;
    logger: Logger;
    metrics: WorkerMetrics;
    pool: KernelPool;
    tools: ToolBackend;
    hub: HubClient;
  },
): Worker {
  const engine = new EngineClient({
    baseUrl: cfg.engineUrl,
    timeoutMs: cfg.engineTimeout,
    attempts: cfg.engineAttempts,
    backoffMs: 500,
    maxConcurrent: cfg.engineConcurrency,
    onRequest: (endpoint, s, ok) =>
      d.metrics.llmRequest.observe({ endpoint, result: ok ? "ok" : "error" }, s),
  });
  const episode = {
    kernels: d.pool,
    engine,
    tools: d.tools,
    metrics: d.metrics,
    logger: d.logger,
    workerId: d.workerId,
    observationChars: cfg.observationChars,
    maxEpisodeSeconds: cfg.wallSeconds,
  };
  return new Worker(
    {
      workerId: d.workerId,
      episodes: cfg.episodes,
      heartbeatMs: cfg.heartbeat,
      leaseWaitMs: cfg.leaseWait,
      backoffMs: cfg.reconnectBackoff,
      backoffMaxMs: cfg.reconnectBackoffMax,
      submitAttempts: cfg.submitAttempts,
    },
    {
      hub: d.hub,
      metrics: d.metrics,
      logger: d.logger,
      run: (task, ctl) => runEpisode(task, episode, ctl),
    },
  );
}
