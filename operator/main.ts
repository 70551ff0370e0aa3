// The operator program: loads its config, connects with a kubeconfig (or in-cluster), serves
// /healthz, /readyz and /metrics, campaigns for the leader Lease and runs the reconcilers until SIGTERM.
import { existsSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Counter } from "prom-client";
import { loadConfig, redact } from "../lib/config.js";
import { L0Error } from "../lib/errors.js";
import { createLogger } from "../lib/log.js";
import { createRegistry, serveProbes } from "../lib/metrics.js";
import { createShutdown } from "../lib/shutdown.js";
import { OPERATOR_CONFIG } from "./config.js";
import { BacklogRecommender } from "./autoscaler/recommender.js";
import { GrpcStatsSource } from "./autoscaler/stats-source.js";
import { Manager } from "./manager.js";
import { RestKubeApi } from "./runtime/kube.js";
import { HubStats } from "./hub-stats.js";
import { grpcHubStats } from "./trainingrun/hub.js";

/**
 * The cluster to reconcile: --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the pod's
 * in-cluster account. With none of them client-node would fall back to http://localhost:8080 and
 * fail deep in the first list call; say so at start instead, as a configuration error (exit 2).
 */
export function loadKubeConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  home = homedir(),
): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (env.KUBECONFIG || existsSync(join(home, ".kube", "config")) || env.KUBERNETES_SERVICE_HOST)
    kc.loadFromDefault();
  else
    throw new L0Error(
      "InvalidArgument",
      "no Kubernetes cluster to connect to: pass --kubeconfig (L0_OPERATOR_KUBECONFIG) or set KUBECONFIG, " +
        "or run the operator in a pod (KUBERNETES_SERVICE_HOST is not set)",
      { reason: "NoCluster" },
    );
  return kc;
}

/** Runs until a signal; `flags` are commander's parsed options (environment fills the rest). */
export async function runOperator(flags: Record<string, unknown>): Promise<void> {
  const config = loadConfig(OPERATOR_CONFIG, { flags, envPrefix: "L0_OPERATOR_" });
  const logger = createLogger({
    component: "operator",
    level: config.logLevel,
    format: config.logFormat,
  });
  logger.info("starting", { config: redact(OPERATOR_CONFIG, config) });
  const shutdown = createShutdown({ logger });
  const registry = createRegistry({ labels: { component: "operator" } });
  const kubeRequests = new Counter({
    name: "l0_operator_kube_requests_total",
    help: "Requests to the Kubernetes API by method (GET, POST, PUT, PATCH, DELETE, WATCH).",
    labelNames: ["method"],
    registers: [registry],
  });
  const api = new RestKubeApi({
    kubeConfig: loadKubeConfig(config.kubeconfig),
    onRequest: (method) => kubeRequests.inc({ method }),
  });
  // One Stats client for the runs' status and the autoscaler.
  const hubClient = new HubStats();
  const hub = grpcHubStats(hubClient);
  const statsSource = new GrpcStatsSource(hubClient);
  const identity = `${hostname()}-${process.pid}`;
  const manager = new Manager({
    api,
    logger,
    registry,
    hub,
    makeRecommender: (resolveHub) =>
      new BacklogRecommender({ source: statsSource, resolveHub, registry, logger }),
    namespace: config.namespace,
    resyncMs: config.resync,
    concurrency: config.concurrency,
    statsIntervalMs: config.statsInterval,
    images: {
      trainer: config.defaultTrainerImage,
      worker: config.defaultWorkerImage,
      sidecar: config.defaultSidecarImage,
      pullSecrets: config.defaultImagePullSecrets
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    },
    leaderElection: config.leaderElect
      ? {
          namespace: config.leaseNamespace,
          name: config.leaseName,
          identity,
          leaseDurationMs: config.leaseDuration,
          renewDeadlineMs: config.renewDeadline,
          retryPeriodMs: config.retryPeriod,
        }
      : undefined,
    onLostLeadership: () => {
      logger.error("lost the leader lease; exiting so a fresh process campaigns");
      void shutdown.run("LeaderLost").then(() => process.exit(1));
    },
  });
  const probes = await serveProbes({
    registry,
    port: config.metricsPort,
    readiness: () => manager.readiness(),
  });
  shutdown.add("probes", () => probes.close());
  shutdown.add("hub clients", () => {
    hubClient.close();
  });
  await manager.start();
  shutdown.add("manager", () => manager.stop());
  logger.info("running", { identity, metrics: probes.url, leaderElection: config.leaderElect });
}
