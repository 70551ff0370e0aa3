// `l0 operator`: loads its config, connects with a kubeconfig (or in-cluster), serves /healthz,
// /readyz and /metrics, campaigns for the leader Lease and runs the reconcilers until SIGTERM.
import { hostname } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { type Command } from "commander";
import { Counter } from "prom-client";
import { addOptions, defineConfig, loadConfig, redact } from "../lib/config.js";
import { createLogger, LOG_LEVELS } from "../lib/log.js";
import { createRegistry, serveProbes } from "../lib/metrics.js";
import { createShutdown } from "../lib/shutdown.js";
import { runMain } from "../cli/run.js";
import { Manager } from "./manager.js";
import { RestKubeApi } from "./runtime/kube.js";
import { grpcHubStats } from "./trainingrun/hub.js";

export const OPERATOR_CONFIG = defineConfig({
  kubeconfig: {
    type: "string",
    description: "kubeconfig file; unset = in-cluster config, else $KUBECONFIG or ~/.kube/config",
  },
  namespace: { type: "string", description: "Watch only this namespace (default: all namespaces)" },
  metricsPort: {
    type: "int",
    default: 8080,
    min: 0,
    max: 65535,
    description: "Port of /metrics, /healthz and /readyz",
  },
  leaderElect: {
    type: "bool",
    default: true,
    description: "Campaign for the leader Lease (one active replica)",
  },
  leaseNamespace: {
    type: "string",
    default: "l0-system",
    description: "Namespace of the leader Lease (the operator's own)",
  },
  leaseName: { type: "string", default: "l0-operator", description: "Name of the leader Lease" },
  leaseDuration: { type: "duration", default: "15s", description: "How long a lease holds without renewal" },
  renewDeadline: {
    type: "duration",
    default: "10s",
    description: "Leader gives up after failing to renew this long",
  },
  retryPeriod: {
    type: "duration",
    default: "2s",
    description: "Interval of lease renewals and takeover attempts",
  },
  resync: {
    type: "duration",
    default: "10m",
    description: "Re-reconcile every object this often (no writes when nothing changed)",
  },
  concurrency: {
    type: "int",
    default: 4,
    min: 1,
    max: 64,
    description: "Concurrent reconciles per controller",
  },
  statsInterval: {
    type: "duration",
    default: "15s",
    description: "How often a running run's hub Stats are read",
  },
  logLevel: { type: "enum", values: LOG_LEVELS, default: "info", description: "Log level" },
  logFormat: { type: "enum", values: ["json", "pretty", "auto"], default: "auto", description: "Log format" },
});

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault(); // in-cluster when KUBERNETES_SERVICE_HOST is set and no kubeconfig exists
  return kc;
}

export function register(program: Command): void {
  const cmd = program
    .command("operator")
    .description("Run the Kubernetes operator (TrainingRun, AgentWorkerPool)");
  addOptions(cmd, OPERATOR_CONFIG, "L0_OPERATOR_");
  cmd.action((flags: Record<string, unknown>) =>
    runMain("operator", async () => {
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
      const hub = grpcHubStats();
      const identity = `${hostname()}-${process.pid}`;
      const manager = new Manager({
        api,
        logger,
        registry,
        hub,
        namespace: config.namespace,
        resyncMs: config.resync,
        concurrency: config.concurrency,
        statsIntervalMs: config.statsInterval,
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
      shutdown.add("hub clients", () => hub.close());
      await manager.start();
      shutdown.add("manager", () => manager.stop());
      logger.info("running", { identity, metrics: probes.url, leaderElection: config.leaderElect });
    }),
  );
}
